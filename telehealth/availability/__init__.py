"""Specialists' availability: weekly rules, exceptions, generated slots, slot search."""

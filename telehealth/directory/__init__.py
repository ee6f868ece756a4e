"""Facilities, practitioners and patients."""

"""Telehealth: remote consults between commune/district clinics and provincial specialists."""

from __future__ import annotations

__version__ = "0.1.0"

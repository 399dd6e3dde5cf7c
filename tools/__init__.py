"""Maintenance tools of the course repository (not part of the installed package)."""

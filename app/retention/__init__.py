"""Retention: what the agency may keep, and for how long (its gallringsbeslut)."""

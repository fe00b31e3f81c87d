"""Survival: the Cox model and its record influence on a worker."""

"""Figures computed from the warehouse: the care metrics (care.py)."""

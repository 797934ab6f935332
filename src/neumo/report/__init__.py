"""Figures (matplotlib, Agg) and the lab report (self-contained HTML + JSON)."""

"""Outcomes analytics engine for ketamine chronic-pain programs (no Streamlit here)."""

__version__ = "0.1.0"

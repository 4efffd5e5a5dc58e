"""Streamlit helpers shared by the pages: context, filters, theme, formatting."""

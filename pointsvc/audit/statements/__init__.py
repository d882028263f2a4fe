"""Audit: monthly statements."""

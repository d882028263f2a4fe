"""Audit: appeals."""

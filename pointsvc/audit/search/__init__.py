"""Audit: search."""

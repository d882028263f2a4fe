"""Audit: privacy."""

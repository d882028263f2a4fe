"""Audit: actions."""

"""Audit: anomalies."""

"""Bare baselines measured in the same run as the service."""

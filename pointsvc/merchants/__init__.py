"""Merchants: applications, approval, suspension, profiles and their operators."""

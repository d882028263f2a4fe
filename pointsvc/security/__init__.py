"""Passwords, tokens, and the one module that decides who may do what."""

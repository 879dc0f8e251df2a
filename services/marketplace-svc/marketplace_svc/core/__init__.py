"""Configuration and domain helpers."""

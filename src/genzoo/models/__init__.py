"""Families: one module (or small package) per model; each registers itself."""

"""Makes the shipped JSON Schema importable as package data."""

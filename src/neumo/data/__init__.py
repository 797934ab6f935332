"""Seeded data generators and loaders (randomness always from an explicit seed)."""

"""Deterministic simulator for the PBFT replica (pure: virtual clock, seeded scheduler)."""

"""Venue adapters. Each package implements :class:`engine.venue.Adapter` for one venue."""

"""Venue adapters. Each package implements :class:`adapters.base.Adapter` for one venue."""

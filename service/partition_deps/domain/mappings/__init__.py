"""Partition mappings: one module per kind, each with an upstream and a downstream direction."""

"""Partition mappings, each with an upstream and a downstream direction: the kinds as values
(kinds.py), their rules by family (basic.py: identity, all, last, specific, static;
time_window.py; multi.py), the engine that dispatches to them, Dagster's inference of the
mapping in force (inference.py) and the sets they consume and produce (keysets.py)."""

"""Declarative automation, Dagster-exact: conditions, the facts they read, their evaluation."""

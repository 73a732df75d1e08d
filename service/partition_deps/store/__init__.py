"""Postgres storage: migrations, definitions, dynamic partitions, events. psycopg 3 only."""

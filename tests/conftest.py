"""Shared fixtures: one real Postgres (embedded, pgserver) per test session, migrated once.

Never a mock: store and API tests run against this server. Each test isolates itself in its own
namespace (see `namespace`), so tests need no cleanup between them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from partition_deps.store.database import EmbeddedPostgres, migrate

# One fixed Hypothesis profile, so CI runs are comparable; PD_HYPOTHESIS_EXAMPLES scales it.
settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("PD_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: DATABASE_URL if the environment gives one, else an embedded one."""
    external = os.environ.get("PD_TEST_DATABASE_URL")
    if external:
        migrate(external)
        yield external
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    try:
        migrate(server.url)
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"

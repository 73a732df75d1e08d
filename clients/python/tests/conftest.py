"""The live server under test comes from PD_ADDR, its bearer token from PD_TOKEN
(scripts/client_tests.sh starts one with auth on).

Without PD_ADDR the live tests skip on a developer's machine and fail in CI (CI=true), where a
skipped interop test would hide a broken runner.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from partition_deps_client import Client


@pytest.fixture(scope="session")
def address() -> str:
    value = os.environ.get("PD_ADDR", "")
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail("PD_ADDR is not set: CI must run these tests against a live server")
        pytest.skip("PD_ADDR is not set; start a server and set PD_ADDR=host:port")
    return value


@pytest.fixture(scope="session")
def token() -> str | None:
    return os.environ.get("PD_TOKEN") or None


@pytest.fixture
def client(address: str, token: str | None) -> Iterator[Client]:
    with Client(address, token=token) as pd:
        yield pd


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    return f"py-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"

"""A real server with its HTTP listener and bearer tokens on, over the session database."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from partition_deps.api.auth import TokenTable
from partition_deps.server import Server
from partition_deps.store.database import PoolSettings
from tests.api.conftest import serving

TOKEN_ALL = "web-token-all"
TOKEN_A = "web-token-a"
NAMESPACE_A = "web-a"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: Any


@pytest.fixture(scope="session")
def web_server(database_url: str) -> Iterator[Server]:
    with serving(
        database_url,
        pool=PoolSettings(min_size=1, max_size=4),
        workers=8,
        tokens=TokenTable({TOKEN_ALL: ["*"], TOKEN_A: [NAMESPACE_A]}),
        http_listen="127.0.0.1:0",
    ) as server:
        yield server


@pytest.fixture(scope="session")
def base_url(web_server: Server) -> str:
    assert web_server.http is not None
    return f"http://127.0.0.1:{web_server.http.port}"


def post(
    url: str,
    body: object,
    token: str | None = TOKEN_ALL,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    """POSTs `body` (JSON unless bytes) with plain urllib; an HTTP error is a Reply too."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return _reply(answer.status, answer.headers.get_content_type(), answer.read())
    except urllib.error.HTTPError as error:
        return _reply(error.code, error.headers.get_content_type(), error.read())


def materializations(
    namespace: str, asset_key: str, partition_keys: Iterable[str], event_time: str, prefix: str
) -> dict[str, Any]:
    """A ReportEvents request in JSON: a materialization of each partition key of `asset_key`
    at `event_time`, its idempotency key `prefix` and the partition key."""
    return {
        "namespace": namespace,
        "events": [
            {
                "idempotency_key": f"{prefix}{key}",
                "event_time": event_time,
                "materialization": {"asset_key": asset_key, "partition_key": key},
            }
            for key in partition_keys
        ],
    }


def _reply(status: int, content_type: str, raw: bytes) -> Reply:
    return Reply(
        status, content_type, json.loads(raw) if content_type == "application/json" else raw
    )


def program_env(folder: Path) -> dict[str, str]:
    """An environment whose `partition-deps` program (in `folder`) runs this checkout's code."""
    program = folder / "partition-deps"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m partition_deps.cli "$@"\n')
    program.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "service"),
    }

"""Three server processes on the session database behind client-side round robin, mixed
writes and read-your-writes reads, one server killed (SIGKILL) midway (bench/round_robin.py
runs the same load longer and prints its figures)."""

from __future__ import annotations

import grpc

from bench.round_robin import run


def test_a_killed_server_loses_no_acknowledged_write_and_no_answer_is_too_old(
    database_url: str,
) -> None:
    outcome = run(database_url, workers=6, operations=600)

    assert outcome.succeeded >= 600
    assert outcome.unstored == 0
    assert outcome.too_old == []
    # Only the calls in flight on the killed server fail, and only as UNAVAILABLE.
    assert set(outcome.failures) <= {grpc.StatusCode.UNAVAILABLE}
    assert len(outcome.failures) <= 6 * 2

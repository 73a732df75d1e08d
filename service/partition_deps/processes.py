"""`serve --processes N`: N serving processes on one port (SO_REUSEPORT), one supervisor.

The supervisor starts the embedded Postgres if there is one, then forks the serving processes
before any grpc or psycopg object exists in it (forking after grpcio started its threads is
unsafe). Each child is a complete server (`Server`) with its own pool, definitions
cache, response memo and health service; the kernel spreads connections, not calls, over them.

- Health: each child answers for itself and is SERVING once its own database preparation is
  done; probes land on any child, as calls do.
- Shutdown: SIGTERM/SIGINT to the supervisor is forwarded to every child, which stops
  gracefully (NOT_SERVING, then in-flight calls within the grace period); the supervisor waits
  for all of them, then stops the embedded Postgres.
- A child that dies makes the supervisor stop the others and exit 1: the orchestrator that
  restarts a crashed single-process server restarts this one the same way.
- Metrics: child i serves them on the metrics port + i (scrape each).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time

from partition_deps.server import Config, serve_until_stopped, stop_on_signals
from partition_deps.store.database import EmbeddedPostgres

logger = logging.getLogger(__name__)


def _child_config(config: Config, index: int, url: str) -> Config:
    metrics = config.metrics_listen
    if metrics is not None:
        host, _, port = metrics.rpartition(":")
        metrics = f"{host}:{int(port) + index}" if int(port) else metrics
    return dataclasses.replace(config, database_url=url, reuse_port=True, metrics_listen=metrics)


def serve_processes(config: Config, count: int) -> int:
    """Run `count` serving processes until SIGTERM/SIGINT; returns the exit status."""
    _, _, port = config.listen.rpartition(":")
    if port == "0":
        raise SystemExit("--processes needs a fixed port in --listen (the processes share it)")
    embedded = None
    if config.database_url is None:
        embedded = EmbeddedPostgres(config.data_dir)
        logger.info("embedded postgres started", extra={"data_dir": str(config.data_dir)})
    url = config.database_url or (embedded.url if embedded else "")

    stop_requested = stop_on_signals()
    children: dict[int, int] = {}  # pid -> index
    status = 0
    try:
        for index in range(count):
            pid = os.fork()
            if pid == 0:  # the child: never returns into the supervisor's code
                code = 1
                try:
                    code = serve_until_stopped(_child_config(config, index, url), supervised=True)
                except BaseException:
                    logger.exception("serving process failed", extra={"index": index})
                finally:
                    os._exit(code)  # skip the supervisor's atexit hooks (embedded Postgres)
            children[pid] = index
        logger.info("processes started", extra={"pids": sorted(children)})
        while not stop_requested.wait(0.2):
            exited = _reap(children)
            if exited:
                logger.error("serving process exited", extra={"pids": exited})
                status = 1
                break
    finally:
        _stop_children(children, config.grace_seconds + 10)
        if embedded is not None:
            embedded.stop()
    logger.info("stopped")
    return status


def _stop_children(children: dict[int, int], timeout: float) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while children:
        if _reap(children):
            continue
        if time.monotonic() > deadline:
            for late in children:
                logger.warning("serving process killed after the grace period", extra={"pid": late})
                with contextlib.suppress(ProcessLookupError):
                    os.kill(late, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _reap(children: dict[int, int]) -> list[int]:
    """Forget (and return) the children that have exited; only ours are waited for (the
    embedded Postgres may be a child too)."""
    exited = []
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.pop(pid)
            exited.append(pid)
    return exited

"""Command line: `partition-deps serve`, `migrate` and `compact` run and look after the service;
`namespaces`, `apply`, `assets`, `events`, `upstream`, `downstream`, `staleness` and `plan` call
it (a gRPC client, see client/commands.py for their exit codes).

Every server flag has an environment variable; a flag wins over its variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

from partition_deps import logs, tracing
from partition_deps.api.auth import TokenTable
from partition_deps.api.limits import MAX_RUN_LEASE
from partition_deps.client import commands as client_commands
from partition_deps.server import Config, TlsFiles, serve_until_stopped
from partition_deps.store.compaction import compact
from partition_deps.store.database import EmbeddedPostgres, PoolSettings, migrate, open_pool

logger = logging.getLogger("partition_deps.cli")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partition-deps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=client_commands.EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=version("partition-deps"))
    commands = parser.add_subparsers(dest="command", required=True)
    client_commands.add_commands(commands)
    for name, help_text in (
        ("serve", "run the gRPC server"),
        ("migrate", "apply database migrations and exit"),
        ("compact", "delete superseded events older than the retention (store/compaction.py)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--database-url",
            default=os.environ.get("DATABASE_URL"),
            help="Postgres URL (env DATABASE_URL); unset: embedded Postgres in --data-dir",
        )
        command.add_argument(
            "--data-dir",
            type=Path,
            default=Path(_env("PD_DATA_DIR", "data/pg")),
            help="embedded Postgres data folder (env PD_DATA_DIR, default ./data/pg)",
        )
        command.add_argument(
            "--log-level", default=_env("PD_LOG_LEVEL", "INFO"), help="env PD_LOG_LEVEL"
        )
    commands.choices["compact"].add_argument(
        "--retention-hours",
        type=float,
        default=float(_env("PD_RETENTION_HOURS", "720")),
        help="keep every event stored within this many hours; longer than any client retries"
        " a batch and than the longest interval between automation ticks (env"
        " PD_RETENTION_HOURS, default 720: 30 days)",
    )
    serve = commands.choices["serve"]
    serve.add_argument(
        "--listen", default=_env("PD_LISTEN", "127.0.0.1:50051"), help="env PD_LISTEN"
    )
    serve.add_argument(
        "--pool-size",
        type=int,
        default=int(_env("PD_POOL_SIZE", "10")),
        help="most database connections (env PD_POOL_SIZE)",
    )
    serve.add_argument(
        "--grace-seconds",
        type=float,
        default=float(_env("PD_GRACE_SECONDS", "10")),
        help="time to finish in-flight calls on SIGTERM (env PD_GRACE_SECONDS)",
    )
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=int(_env("PD_MAX_MESSAGE_BYTES", str(4 * 1024 * 1024))),
        help="largest request or response; larger requests get RESOURCE_EXHAUSTED",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(_env("PD_WORKERS", "16")),
        help="threads serving calls (env PD_WORKERS)",
    )
    serve.add_argument(
        "--metrics-listen",
        default=os.environ.get("PD_METRICS_LISTEN") or None,
        help="host:port of a Prometheus /metrics endpoint, e.g. 127.0.0.1:9464 "
        "(env PD_METRICS_LISTEN); unset: no metrics",
    )
    serve.add_argument(
        "--http-listen",
        default=os.environ.get("PD_HTTP_LISTEN") or None,
        help="host:port of the HTTP listener: Connect JSON calls and the status page, e.g. "
        "127.0.0.1:8080 (env PD_HTTP_LISTEN); unset: no HTTP",
    )
    serve.add_argument(
        "--automation-histories",
        type=int,
        default=int(_env("PD_AUTOMATION_HISTORIES", "32")),
        help="namespaces whose automation event history is kept in memory between ticks; 0:"
        " none, each tick reads its namespace's events from the start (env"
        " PD_AUTOMATION_HISTORIES)",
    )
    serve.add_argument(
        "--read-database-url",
        action="append",
        default=None,
        help="a streaming replica of --database-url for the read RPCs (staleness, plans, runs"
        " in progress); repeat for several (env PD_READ_DATABASE_URLS, space-separated)."
        " Writes stay on the primary, as do reads whose min_* the replicas have not reached",
    )
    serve.add_argument(
        "--replica-wait-seconds",
        type=float,
        default=float(_env("PD_REPLICA_WAIT_SECONDS", "0.2")),
        help="how long a read waits for a replica to replay up to its min_event_position or"
        " min_generation before the primary answers it (env PD_REPLICA_WAIT_SECONDS)",
    )
    serve.add_argument(
        "--health-listen",
        default=os.environ.get("PD_HEALTH_LISTEN") or None,
        help="host:port of a plaintext listener serving only grpc.health.v1, for probes when "
        "the main port needs TLS, e.g. 127.0.0.1:50052 (env PD_HEALTH_LISTEN); unset: none",
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=int(_env("PD_PROCESSES", "1")),
        help="serving processes sharing the port (SO_REUSEPORT), under one supervisor; "
        "needs a fixed port (env PD_PROCESSES)",
    )
    serve.add_argument(
        "--memo-entries",
        type=int,
        default=int(_env("PD_MEMO_ENTRIES", "4096")),
        help="serialized answers of stored queries kept in memory; 0: none (env PD_MEMO_ENTRIES)",
    )
    serve.add_argument(
        "--state-cache-rows",
        type=int,
        default=int(_env("PD_STATE_CACHE_ROWS", "500000")),
        help="rows of latest state kept in memory for staleness of large assets (about 350"
        " bytes each); 0: none (env PD_STATE_CACHE_ROWS)",
    )
    serve.add_argument(
        "--run-lease-seconds",
        type=float,
        default=float(_env("PD_RUN_LEASE_SECONDS", "3600")),
        help="how long a run holds its targets after it started or after its latest heartbeat,"
        " when its RunStarted gives no lease; at most 30 days (env PD_RUN_LEASE_SECONDS)",
    )
    serve.add_argument(
        "--tokens-file",
        type=Path,
        default=None,
        help='bearer tokens, JSON {"token": ["namespace", ...]} ("*": all namespaces); '
        "env PD_TOKENS_FILE, or the JSON itself in PD_TOKENS; unset: auth off",
    )
    for flag, env, meaning in (
        ("--tls-cert", "PD_TLS_CERT", "server certificate chain (PEM); with --tls-key: TLS"),
        ("--tls-key", "PD_TLS_KEY", "server private key (PEM)"),
        ("--tls-client-ca", "PD_TLS_CLIENT_CA", "CA (PEM) clients must present a cert of: mTLS"),
    ):
        serve.add_argument(
            flag,
            type=Path,
            default=Path(os.environ[env]) if os.environ.get(env) else None,
            help=f"{meaning} (env {env})",
        )
    return parser


def _tokens(tokens_file: Path | None) -> TokenTable | None:
    try:
        return TokenTable.configured(tokens_file)
    except (OSError, ValueError) as error:
        raise SystemExit(f"bearer tokens: {error}") from None


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise SystemExit("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise SystemExit("--tls-cert and --tls-key go together")
    return TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca)


def _run_lease_seconds(seconds: float) -> float:
    if not 0 < seconds <= MAX_RUN_LEASE.total_seconds():
        raise SystemExit(
            f"--run-lease-seconds must be above 0 and at most {MAX_RUN_LEASE.days} days"
        )
    return seconds


def _compact(url: str, retention_hours: float) -> None:
    if retention_hours < 0:
        raise SystemExit("--retention-hours must not be negative")
    pool = open_pool(url, PoolSettings(min_size=1, max_size=1))
    try:
        done = compact(pool, timedelta(hours=retention_hours))
    finally:
        pool.close()
    logger.info("compacted", extra=dataclasses.asdict(done))


def _read_database_urls(args: argparse.Namespace) -> tuple[str, ...]:
    urls = args.read_database_url or os.environ.get("PD_READ_DATABASE_URLS", "").split()
    if urls and not args.database_url:
        raise SystemExit("--read-database-url needs --database-url (the primary)")
    return tuple(urls)


def _replica_wait_seconds(seconds: float) -> float:
    if not 0 <= seconds <= 60:
        raise SystemExit("--replica-wait-seconds must be between 0 and 60")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in client_commands.COMMANDS:
        return client_commands.run(args)
    logs.configure(args.log_level)
    if args.command in ("migrate", "compact"):
        embedded = None if args.database_url else EmbeddedPostgres(args.data_dir)
        try:
            url = args.database_url or (embedded.url if embedded else "")
            if args.command == "migrate":
                logger.info("migrated", extra={"applied": migrate(url)})
            else:
                _compact(url, args.retention_hours)
        finally:
            if embedded is not None:
                embedded.stop()
        return 0

    config = Config(
        listen=args.listen,
        database_url=args.database_url,
        data_dir=args.data_dir,
        pool=PoolSettings(min_size=min(2, args.pool_size), max_size=args.pool_size),
        grace_seconds=args.grace_seconds,
        max_message_bytes=args.max_message_bytes,
        workers=args.workers,
        tokens=_tokens(args.tokens_file),
        tls=_tls(args),
        metrics_listen=args.metrics_listen,
        http_listen=args.http_listen,
        health_listen=args.health_listen,
        memo_entries=args.memo_entries,
        state_cache_rows=args.state_cache_rows,
        run_lease_seconds=_run_lease_seconds(args.run_lease_seconds),
        automation_histories=max(0, args.automation_histories),
        read_database_urls=_read_database_urls(args),
        replica_wait_seconds=_replica_wait_seconds(args.replica_wait_seconds),
    )
    try:
        tracing.exporter_names()  # refuse a bad OTEL_TRACES_EXPORTER before anything starts
    except ValueError as error:
        raise SystemExit(f"tracing: {error}") from None
    if args.processes > 1:
        from partition_deps.processes import serve_processes

        return serve_processes(config, args.processes)
    return serve_until_stopped(config)


if __name__ == "__main__":
    sys.exit(main())

"""Command line: `partition-deps serve`, `migrate` and `compact` run and look after the service;
`namespaces`, `apply`, `assets`, `events`, `upstream`, `downstream`, `staleness` and `plan` call
it (a gRPC client, see client/commands.py for their exit codes).

Every server flag has an environment variable (options.py); a flag wins over its variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

from partition_deps import logs, options, tracing
from partition_deps.api.auth import TokenTable
from partition_deps.api.limits import MAX_RUN_LEASE
from partition_deps.client import commands as client_commands
from partition_deps.server import Config, TlsFiles, serve_until_stopped
from partition_deps.store.compaction import compact
from partition_deps.store.database import EmbeddedPostgres, PoolSettings, migrate, open_pool

logger = logging.getLogger("partition_deps.cli")


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
        for option in options.of_command(name):
            option.add_to(command)
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
    urls = tuple(args.read_database_url or ())
    if urls and not args.database_url:
        raise SystemExit("--read-database-url needs --database-url (the primary)")
    return urls


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
        pool=PoolSettings(
            min_size=min(options.DEFAULTS.pool.min_size, args.pool_size), max_size=args.pool_size
        ),
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

"""The options of `serve`, `migrate` and `compact`, each with its environment variable, default
and meaning, in one place: cli.py builds its argparse options from them and
scripts/gen_config_table.py writes the README's Configuration table from them.

A default that is a field of `Config` (server.py) is read from there, so the dataclass, the
command line and the README cannot disagree. A flag wins over its variable; an empty variable
counts as unset.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partition_deps.api.limits import MAX_RUN_LEASE
from partition_deps.server import EXIT_MARGIN_SECONDS, Config

DEFAULTS = Config()
SERVE = ("serve",)
EVERY_COMMAND = ("serve", "migrate", "compact")


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    # Markdown, as the README's table shows it; --help shows it without the markup.
    meaning: str
    # None: unset, and `unset` says what that means.
    default: object = None
    unset: str = ""
    # Reads the flag's and the variable's text.
    kind: Callable[[str], object] = str
    # Said of the variable after its name.
    env_note: str = ""
    # The README's section that says more (the table only).
    see: str = ""
    # Given once per value; the variable holds its values space-separated.
    repeatable: bool = False
    commands: tuple[str, ...] = SERVE

    def environment_default(self, environ: Mapping[str, str] = os.environ) -> object:
        """The default, or the variable's value when it is set."""
        value = environ.get(self.env)
        if not value:
            return self.default
        if self.repeatable:
            return [self.kind(item) for item in value.split()]
        return self.kind(value)

    def default_markdown(self) -> str:
        if self.default is None:
            return self.unset
        if isinstance(self.default, float):
            return f"`{self.default:g}`"
        return f"`{self.default}`"

    def help(self) -> str:
        default = self.default_markdown()
        if self.default is not None:
            default = f"default {default}"
        repeatable = "repeatable; " if self.repeatable else ""
        text = f"{self.meaning} ({repeatable}env {self.env}{self.env_note}; {default})"
        return text.replace("`", "").replace("**", "").replace("%", "%%")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            type=self.kind,
            default=self.environment_default(),
            action=_RepeatedReplacingDefault if self.repeatable else "store",
            help=self.help(),
        )


class _RepeatedReplacingDefault(argparse.Action):
    """Collects each use of a repeatable flag; the first use drops the default (the
    variable's values) instead of adding to it, as a flag wins over its variable."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, self.dest)
        earlier = [] if given is self.default else list(given)
        setattr(namespace, self.dest, [*earlier, values])


OPTIONS = (
    Option("--listen", "PD_LISTEN", "gRPC address", DEFAULTS.listen),
    Option(
        "--database-url",
        "DATABASE_URL",
        "Postgres URL",
        unset="unset: an embedded Postgres 16 in `--data-dir`",
        commands=EVERY_COMMAND,
    ),
    Option(
        "--data-dir",
        "PD_DATA_DIR",
        "embedded Postgres data folder; a server killed with -9 leaves nothing that outlives"
        " the next graceful stop, and a server whose embedded Postgres dies exits with status 1"
        " (for a supervisor to restart it)",
        DEFAULTS.data_dir,
        kind=Path,
        commands=EVERY_COMMAND,
    ),
    Option(
        "--pool-size",
        "PD_POOL_SIZE",
        "most database connections",
        DEFAULTS.pool.max_size,
        kind=int,
    ),
    Option("--workers", "PD_WORKERS", "threads serving calls", DEFAULTS.workers, kind=int),
    Option(
        "--grace-seconds",
        "PD_GRACE_SECONDS",
        "time for in-flight calls on SIGTERM; calls still running then are cancelled, and the"
        f" process exits (status 1) at most {EXIT_MARGIN_SECONDS:g} s later whatever their"
        " handlers do",
        DEFAULTS.grace_seconds,
        kind=float,
    ),
    Option(
        "--max-message-bytes",
        "PD_MAX_MESSAGE_BYTES",
        "largest request or response; larger requests get RESOURCE_EXHAUSTED",
        DEFAULTS.max_message_bytes,
        kind=int,
    ),
    Option(
        "--log-level",
        "PD_LOG_LEVEL",
        "level of the structured (JSON) logs on stderr",
        "INFO",
        commands=EVERY_COMMAND,
    ),
    Option(
        "--tokens-file",
        "PD_TOKENS_FILE",
        'bearer tokens, JSON `{"token": ["namespace", ...]}` (`"*"`: every namespace)',
        unset="unset: **auth off**",
        kind=Path,
        env_note=", or `PD_TOKENS` (the JSON itself)",
        see="Security",
    ),
    Option(
        "--tls-cert",
        "PD_TLS_CERT",
        "server certificate chain (PEM); with `--tls-key`: TLS",
        unset="unset: plaintext",
        kind=Path,
    ),
    Option(
        "--tls-key",
        "PD_TLS_KEY",
        "server private key (PEM); with `--tls-cert`: TLS",
        unset="unset: plaintext",
        kind=Path,
    ),
    Option(
        "--tls-client-ca",
        "PD_TLS_CLIENT_CA",
        "CA (PEM) that signs client certificates: mutual TLS (clients without one are refused)",
        unset="unset: no client certificates",
        kind=Path,
    ),
    Option(
        "--health-listen",
        "PD_HEALTH_LISTEN",
        "`host:port` of a plaintext listener serving only `grpc.health.v1` (same statuses as"
        " the main port), for probes that cannot speak the main port's TLS: the image's"
        " `HEALTHCHECK` probes it on loopback, the Helm chart and the Kubernetes example give it"
        " a port of its own for the kubelet's gRPC probes",
        unset="unset: none (the image: `127.0.0.1:50052`)",
    ),
    Option(
        "--metrics-listen",
        "PD_METRICS_LISTEN",
        "`host:port` of a Prometheus endpoint (HTTP `/metrics`), e.g. `127.0.0.1:9464`",
        unset="unset: **no metrics**",
        see="Metrics",
    ),
    Option(
        "--http-listen",
        "PD_HTTP_LISTEN",
        "`host:port` of the HTTP listener, e.g. `127.0.0.1:8080`: every unary RPC as JSON"
        " (Connect protocol) and the status page, under the same bearer tokens",
        unset="unset: **no HTTP**",
        see="JSON over HTTP",
    ),
    Option(
        "--processes",
        "PD_PROCESSES",
        "serving processes sharing the gRPC port (`SO_REUSEPORT`) under one supervisor; needs a"
        " fixed port",
        1,
        kind=int,
    ),
    Option(
        "--memo-entries",
        "PD_MEMO_ENTRIES",
        "serialized answers of stored up/downstream queries kept per process (LRU, also at most"
        " 64 MiB; answers over 1 MiB are not kept); `0`: none",
        DEFAULTS.memo_entries,
        kind=int,
    ),
    Option(
        "--run-lease-seconds",
        "PD_RUN_LEASE_SECONDS",
        "how long a run holds its targets after its RunStarted and after each heartbeat, when"
        f" the RunStarted gives no `lease` (at most {MAX_RUN_LEASE.days} days)",
        DEFAULTS.run_lease_seconds,
        kind=float,
        see="Runs and leases",
    ),
    Option(
        "--state-cache-rows",
        "PD_STATE_CACHE_ROWS",
        "rows of latest state each process keeps in memory (about 350 bytes a row, so about"
        f" {DEFAULTS.state_cache_rows * 350 // 1_000_000} MB at the default) so that staleness"
        " of large assets compares them there, caught up on every answer; least recently used"
        " namespaces go first; `0`: none (each large answer then reads its own copy)",
        DEFAULTS.state_cache_rows,
        kind=int,
    ),
    Option(
        "--automation-histories",
        "PD_AUTOMATION_HISTORIES",
        "namespaces whose automation event history each process keeps in memory between ticks;"
        " `0`: none (each tick reads its namespace's events from the start)",
        DEFAULTS.automation_histories,
        kind=int,
    ),
    Option(
        "--read-database-url",
        "PD_READ_DATABASE_URLS",
        "a streaming replica of `--database-url` for GetStaleness, PlanRuns and ListRuns;"
        " writes, definitions and kept answer pages stay on the primary; a read whose"
        " `min_event_position` / `min_generation` a replica has not replayed goes to the"
        " primary; a replica that is down is skipped and its health name (`read-replica-1`,"
        " ...) is NOT_SERVING",
        unset="unset: every read on the primary",
        env_note=" (space-separated)",
        see="docs/scaling.md",
        repeatable=True,
    ),
    Option(
        "--replica-wait-seconds",
        "PD_REPLICA_WAIT_SECONDS",
        "how long a read waits for a replica to replay up to its `min_*` before the primary"
        " answers it",
        DEFAULTS.replica_wait_seconds,
        kind=float,
    ),
    Option(
        "--retention-hours",
        "PD_RETENTION_HOURS",
        "keep every event stored within this many hours; longer than any client retries a"
        " batch and than the longest interval between automation ticks",
        720.0,
        kind=float,
        commands=("compact",),
    ),
)


def of_command(command: str) -> list[Option]:
    return [option for option in OPTIONS if command in option.commands]

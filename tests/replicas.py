"""A real streaming replica of an embedded Postgres, for read-replica tests.

The standby is made with `pg_basebackup -R` from the Postgres binaries pgserver ships and runs
as the same system user as its primary, listening on a socket in its own data folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg

from partition_deps.store.database import EmbeddedPostgres
from tests.live import eventually


def _binaries() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH  # embedded Postgres only

    return Path(POSTGRES_BIN_PATH)


def _socket_folder(url: str) -> str:
    return parse_qs(urlparse(url).query)["host"][0]


class StreamingReplica:
    """A hot standby of `primary` in `folder`; `start()`, `stop()`, replay pause/resume."""

    def __init__(self, primary: EmbeddedPostgres, folder: Path) -> None:
        self.folder = folder.resolve()
        self._primary_url = primary.url
        # pgserver runs Postgres as its own user when we are root; the standby must too.
        self._user = "pgserver" if os.geteuid() == 0 else None
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, mode=0o700)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            "pg_basebackup",
            "-D", str(self.folder),
            "-h", _socket_folder(primary.url),
            "-U", "postgres",
            "-X", "stream",
            "-R",  # standby.signal and primary_conninfo: start as a streaming standby
        )  # fmt: skip
        # The copy holds the primary's socket lock, handle list and log: not the standby's.
        for leftover in (".s.PGSQL.5432.lock", ".handle_pids.json", "log"):
            (self.folder / leftover).unlink(missing_ok=True)
        self.url = f"postgresql://postgres:@/postgres?host={self.folder}"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(_binaries() / program), *args],
            check=True,
            capture_output=True,
            user=self._user,
            timeout=120,
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.folder), "-w", "-l", str(self.folder / "log"),
            "-o", f'-h "" -k {self.folder}', "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown; the data folder stays, so `start()` brings the standby back."""
        self._run("pg_ctl", "-D", str(self.folder), "-w", "-m", "fast", "stop")

    def pause_replay(self) -> None:
        """WAL still arrives, none is applied: reads see the state of the pause."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            # Pause is requested, then reached: wait until replay has really stopped.
            eventually(lambda: _one(conn, "SELECT pg_get_wal_replay_pause_state() = 'paused'"))

    def resume_replay(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def catch_up(self) -> None:
        """Return once the standby has replayed everything the primary had committed.

        Polled with one short statement at a time: a statement that lasts while replay
        removes row versions its snapshot could see is cancelled by the standby ("conflict
        with recovery"), which a server-side wait loop, holding one snapshot, ran into."""
        with psycopg.connect(self._primary_url, autocommit=True) as primary:
            lsn = _one(primary, "SELECT pg_current_wal_lsn()::text")
        with psycopg.connect(self.url, autocommit=True) as conn:
            replayed = f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
            eventually(lambda: _one(conn, replayed) is True, seconds=120)


def _one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]

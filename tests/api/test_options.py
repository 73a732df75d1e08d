"""The command line's options (options.py): Config's defaults, environment variables, flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from partition_deps import cli, options
from partition_deps.server import Config


@pytest.fixture
def no_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for option in options.OPTIONS:
        monkeypatch.delenv(option.env, raising=False)
    return monkeypatch


def test_serve_defaults_are_configs(no_variables: pytest.MonkeyPatch) -> None:
    args = cli._parser().parse_args(["serve"])
    config = Config()
    assert (args.listen, args.data_dir, args.workers) == (
        config.listen,
        config.data_dir,
        config.workers,
    )
    assert (args.pool_size, args.run_lease_seconds) == (
        config.pool.max_size,
        config.run_lease_seconds,
    )
    assert (args.database_url, args.read_database_url, args.tls_cert) == (None, None, None)


def test_a_variable_sets_the_default_and_a_flag_wins(no_variables: pytest.MonkeyPatch) -> None:
    no_variables.setenv("PD_POOL_SIZE", "3")
    no_variables.setenv("PD_TLS_CERT", "/etc/cert.pem")
    no_variables.setenv("PD_LISTEN", "")  # empty: unset
    args = cli._parser().parse_args(["serve"])
    assert (args.pool_size, args.tls_cert, args.listen) == (
        3,
        Path("/etc/cert.pem"),
        Config().listen,
    )
    assert cli._parser().parse_args(["serve", "--pool-size", "7"]).pool_size == 7


def test_repeated_flags_replace_the_variables_values(no_variables: pytest.MonkeyPatch) -> None:
    no_variables.setenv("PD_READ_DATABASE_URLS", "postgresql://a postgresql://b")
    parse = cli._parser().parse_args
    assert parse(["serve"]).read_database_url == ["postgresql://a", "postgresql://b"]
    repeated = parse(["serve", "--read-database-url", "x", "--read-database-url", "y"])
    assert repeated.read_database_url == ["x", "y"]

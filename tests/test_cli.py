"""The command-line contract (secrets_init/cli.py), run as a real process."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from testing import process
from testing.process import ROOT, child_env, run
from tests.binary.conftest import BINARY, require_binary

OPTIONS = [
    "--log-level",
    "--log-format",
    "--provider",
    "--wait-all",
    "--signal-mode",
    "--rewrite",
    "--timeout",
    "--expand-json",
    "--google-project",
    "--secrets-dir",
    "--interactive",
    "--check",
    "--version",
    "--help",
    "copy DEST_DIR",
]


@pytest.mark.parametrize("args", [[], ["--"], ["--log-level", "debug"]], ids=repr)
def test_no_command_is_a_usage_error_with_status_2(args: list[str]) -> None:
    result = run(args)
    assert result.returncode == 2
    assert "missing COMMAND" in result.stderr.splitlines()[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-flag", "--", "true"],
        ["--log-level", "loud", "--", "true"],
        ["--rewrite", "TERM", "--", "true"],
        ["--rewrite", "TERM:NOPE", "--", "true"],
        ["--timeout", "soon", "--", "true"],
    ],
    ids=lambda args: args[0] + (f"={args[1]}" if args[1] != "--" else ""),
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    assert run(args).returncode == 2


def test_a_bad_environment_setting_is_a_usage_error_that_names_it() -> None:
    result = run(["--", "true"], env=child_env(SECRETS_INIT_WAIT_ALL="maybe"))
    assert result.returncode == 2
    assert "SECRETS_INIT_WAIT_ALL" in result.stderr


@pytest.mark.parametrize("option", OPTIONS)
def test_help_lists_every_option(option: str) -> None:
    result = run(["--help"])
    assert result.returncode == 0
    assert option in result.stdout


@pytest.mark.binary
def test_the_binary_prints_the_modules_help() -> None:
    require_binary()
    [frozen, module] = [
        subprocess.run(
            argv, capture_output=True, text=True, env=child_env(), timeout=30, check=False
        )
        for argv in ([str(BINARY), "--help"], [sys.executable, "-m", "secrets_init", "--help"])
    ]
    assert frozen.returncode == module.returncode == 0
    assert frozen.stdout == module.stdout


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout.startswith("secrets-init 0.")
    assert "boto3" in result.stdout


def test_copy_puts_an_identical_executable_in_place(tmp_path: Path) -> None:
    result = run(["copy", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "secrets-init"
    assert stat.S_IMODE(copied.stat().st_mode) == 0o755
    binary = process.binary()
    # `python -m secrets_init`: the running file is the package's __main__.py
    original = Path(binary) if binary else ROOT / "secrets_init" / "__main__.py"
    assert copied.read_bytes() == original.read_bytes()


def test_copy_to_a_missing_directory_fails_naming_it(tmp_path: Path) -> None:
    missing = run(["copy", str(tmp_path / "nope")])
    assert missing.returncode == 1
    assert "nope" in missing.stderr


def test_json_logs_are_one_valid_object_per_line() -> None:
    result = run(["--log-format", "json", "--log-level", "debug", "--", "sh", "-c", "exit 7"])
    assert result.returncode == 7
    lines = result.stderr.splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"level", "msg", "time"} <= record.keys()
        assert record["level"] == "debug"


def test_the_environment_sets_options() -> None:
    result = run(["--", "true"], env=child_env(SECRETS_INIT_LOG_LEVEL="debug"))
    assert "debug" in result.stderr
    as_json = run(
        ["--", "true"],
        env=child_env(SECRETS_INIT_LOG_LEVEL="debug", SECRETS_INIT_LOG_FORMAT="json"),
    )
    assert as_json.stderr
    assert all(json.loads(line)["level"] == "debug" for line in as_json.stderr.splitlines())


def test_flags_win_over_the_environment() -> None:
    result = run(
        ["--log-level", "error", "--", "true"], env=child_env(SECRETS_INIT_LOG_LEVEL="debug")
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_options_without_double_dash_and_compat_flags() -> None:
    result = run(["-i", "--provider", "aws", "sh", "-c", "echo $0 $1", "a", "b"])
    assert result.returncode == 0
    assert result.stdout.split() == ["a", "b"]

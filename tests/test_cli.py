"""The command-line contract, run as a real process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import clean_env, secrets_init_argv

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


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*secrets_init_argv(), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(**env),
    )


def test_no_command_is_a_usage_error_with_status_2() -> None:
    for args in ([], ["--"], ["--log-level", "debug"]):
        result = run(*args)
        assert result.returncode == 2
        assert "missing COMMAND" in result.stderr.splitlines()[0]
        assert result.stdout == ""


def test_bad_options_are_usage_errors() -> None:
    assert run("--no-such-flag", "--", "true").returncode == 2
    assert run("--log-level", "loud", "--", "true").returncode == 2
    assert run("--rewrite", "TERM", "--", "true").returncode == 2
    assert run("--rewrite", "TERM:NOPE", "--", "true").returncode == 2
    assert run("--timeout", "soon", "--", "true").returncode == 2
    bad_env = run("--", "true", SECRETS_INIT_WAIT_ALL="maybe")
    assert bad_env.returncode == 2
    assert "SECRETS_INIT_WAIT_ALL" in bad_env.stderr


def test_help_lists_every_option() -> None:
    result = run("--help")
    assert result.returncode == 0
    for option in OPTIONS:
        assert option in result.stdout
    module = subprocess.run(
        [sys.executable, "-m", "secrets_init", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert module.stdout == result.stdout or os.environ.get("SECRETS_INIT_BIN")


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("secrets-init 0.")
    assert "boto3" in result.stdout


def test_copy_puts_an_identical_executable_in_place(tmp_path: Path) -> None:
    result = run("copy", str(tmp_path))
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "secrets-init"
    assert stat.S_IMODE(copied.stat().st_mode) == 0o755
    if os.environ.get("SECRETS_INIT_BIN"):
        assert copied.read_bytes() == Path(os.environ["SECRETS_INIT_BIN"]).read_bytes()
    else:  # `python -m secrets_init`: the running file is the package's __main__.py
        main_file = Path(__file__).resolve().parent.parent / "secrets_init" / "__main__.py"
        assert copied.read_bytes() == main_file.read_bytes()
    missing = run("copy", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert "nope" in missing.stderr


def test_json_logs_are_one_valid_object_per_line() -> None:
    result = run("--log-format", "json", "--log-level", "debug", "--", "sh", "-c", "exit 7")
    assert result.returncode == 7
    lines = result.stderr.splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"level", "msg", "time"} <= record.keys()
        assert record["level"] == "debug"


def test_environment_sets_options_and_flags_win() -> None:
    quiet = run("--", "true", SECRETS_INIT_LOG_LEVEL="debug")
    assert "debug" in quiet.stderr
    flagged = run("--log-level", "error", "--", "true", SECRETS_INIT_LOG_LEVEL="debug")
    assert flagged.stderr == ""
    as_json = run("--", "true", SECRETS_INIT_LOG_LEVEL="debug", SECRETS_INIT_LOG_FORMAT="json")
    assert all(json.loads(line)["level"] == "debug" for line in as_json.stderr.splitlines())


def test_options_without_double_dash_and_compat_flags() -> None:
    result = run("-i", "--provider", "aws", "sh", "-c", "echo $0 $1", "a", "b")
    assert result.returncode == 0
    assert result.stdout.split() == ["a", "b"]


def test_check_with_no_references_succeeds_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run("--check", "--", "touch", str(marker))
    assert result.returncode == 0
    assert not marker.exists()

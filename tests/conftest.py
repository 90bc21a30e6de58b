"""Shared fixtures: how to run secrets-init for real, as a process and as PID 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.google.fake_secretmanager import FakeSecretManager

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"


def secrets_init_argv() -> list[str]:
    """The command under test: the module, or the frozen binary named by SECRETS_INIT_BIN."""
    binary = os.environ.get("SECRETS_INIT_BIN")
    if binary:
        return [binary]
    return [sys.executable, "-m", "secrets_init"]


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment, so references from the developer's shell never leak in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
    }
    env.update(extra)
    return env


@dataclass
class Observed:
    """One run of secrets-init: its status and output, and what its program saw."""

    returncode: int
    seen: dict[str, str | None] | None  # the program's view of the variables; None: never ran
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """secrets-init's error lines, without the `secrets-init: error: ` prefix."""
        prefix = "secrets-init: error: "
        return [line[len(prefix) :] for line in self.stderr.splitlines() if line.startswith(prefix)]


_UNSHARE_OK: bool | None = None


def unshare_available() -> bool:
    global _UNSHARE_OK
    if _UNSHARE_OK is None:
        if shutil.which("unshare") is None:
            _UNSHARE_OK = False
        else:
            probe = subprocess.run(
                ["unshare", "--fork", "--pid", "--mount-proc", "sh", "-c", "echo $$"],
                capture_output=True,
                text=True,
                check=False,
            )
            _UNSHARE_OK = probe.returncode == 0 and probe.stdout.strip() == "1"
    return _UNSHARE_OK


def require_pid_namespace() -> None:
    """Skip where unshare is not permitted, but never under CI=true: CI must exercise PID 1."""
    if unshare_available():
        return
    reason = (
        "unshare --fork --pid --mount-proc is not permitted here (needs root or user namespaces)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def as_pid1(argv: Sequence[str]) -> list[str]:
    require_pid_namespace()
    return ["unshare", "--fork", "--pid", "--mount-proc", "--kill-child", *argv]


@pytest.fixture
def si() -> list[str]:
    return secrets_init_argv()


@pytest.fixture
def gsm() -> Iterator[FakeSecretManager]:
    """A fresh fake Google Secret Manager on loopback (tests/google/fake_secretmanager.py)."""
    from tests.google.fake_secretmanager import FakeSecretManager

    with FakeSecretManager() as fake:
        yield fake


def gsm_env(fake: FakeSecretManager, **variables: str) -> dict[str, str]:
    return clean_env(SECRETMANAGER_EMULATOR_HOST=fake.address, **variables)

"""Nothing secrets-init itself prints ever contains a secret value, and PID 1 never holds one."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing import process
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.process import run

REF = "gcp:secretmanager:projects/proj-1/secrets/"
VALUES = {
    "plain": "Zq7-plain-Secret-Value-91x",
    "json": json.dumps({"password": "Zq7-json-Password-42y", "other": "Zq7-json-Other-17z"}),
    "unicode": "Zq7-ünïcødé-Sécret-33w",
}
FORBIDDEN = [
    "Zq7-plain-Secret-Value-91x",
    "Zq7-json-Password-42y",
    "Zq7-json-Other-17z",
    "Zq7-ünïcødé-Sécret-33w",
    VALUES["json"],
]


def forbidden_forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), raw.hex(), repr(raw)[2:-1]]


def assert_no_secret(*outputs: str) -> None:
    text = "\n".join(outputs)
    for value in FORBIDDEN:
        for form in forbidden_forms(value):
            assert form not in text, f"secret leaked in the form {form[:6]}…"


@pytest.fixture
def stocked(gsm: FakeSecretManager) -> FakeSecretManager:
    for name, value in VALUES.items():
        gsm.add_secret("proj-1", name, value)
    gsm.add_secret("proj-1", "binary", b"\xff\xfe Zq7-plain-Secret-Value-91x")
    gsm.add_secret("proj-1", "badcrc", VALUES["plain"], crc=12345)
    gsm.fail_always("PERMISSION_DENIED", secret="denied")
    return gsm


GOOD = {
    "A": REF + "plain",
    "B": REF + "json#password",
    "C": REF + "unicode",
    "D": REF + "json",
    "E": REF + "plain?destination=tempfile",
}
BAD = {
    "F": REF + "json#missing",
    "G": REF + "binary",
    "H": REF + "badcrc",
    "I": REF + "denied",
    "J": REF + "plain?destination=/nonexistent-dir/x",
    "K": REF + "plain#key",
}


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_success_and_every_failure_path_print_no_value(
    stocked: FakeSecretManager, level: str, fmt: str
) -> None:
    options = ["--log-level", level, "--log-format", fmt]
    ok = run([*options, "--", "true"], env=gsm_env(stocked, **GOOD))
    assert ok.returncode == 0, ok.stderr
    failed = run([*options, "--", "true"], env=gsm_env(stocked, **GOOD, **BAD))
    assert failed.returncode == 1
    named = {variable for variable in BAD if f"{variable}: " in failed.stderr}
    assert named == set(BAD)
    assert_no_secret(ok.stdout, ok.stderr, failed.stdout, failed.stderr)


def test_check_prints_names_references_and_status_only(stocked: FakeSecretManager) -> None:
    ok = run(["--check", "--log-level", "debug"], env=gsm_env(stocked, **GOOD))
    assert ok.returncode == 0
    assert sorted(line.split()[0] for line in ok.stdout.splitlines()) == sorted(GOOD)
    assert all(line.endswith(" ok") for line in ok.stdout.splitlines())
    failed = run(
        ["--check", "--log-level", "debug", "--", "true"], env=gsm_env(stocked, **GOOD, **BAD)
    )
    assert failed.returncode == 1
    lines = {line.split()[0]: line for line in failed.stdout.splitlines()}
    assert set(lines) == set(GOOD) | set(BAD)
    assert all(" error: " in lines[v] for v in BAD)
    assert all(lines[v].endswith(" ok") for v in GOOD)
    assert_no_secret(ok.stdout, ok.stderr, failed.stdout, failed.stderr)


def test_an_unexpected_exception_prints_one_line_and_no_traceback(
    stocked: FakeSecretManager,
) -> None:
    # With stdout closed, --check cannot write its report: an error nobody planned for.
    result = subprocess.run(
        [*process.command(), "--check", "--log-level", "debug"],
        env=gsm_env(stocked, **GOOD),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("secrets-init: error: internal error: ")
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stderr)


SCAN_PID1 = r"""
import os, sys
from testing.supervised import readable_memory  # found through the PYTHONPATH child_env sets
# The needles come from a file: on the command line they would be in PID 1's own argv.
needles = open(sys.argv[1], "rb").read().split(b"\n")
environ = open("/proc/1/environ", "rb").read()
found_env = [n.decode() for n in needles if n in environ]
memory = readable_memory(1)
found_mem = [n.decode() for n in needles if n in memory]
print("environ-has-ref", b"gcp:secretmanager:" in environ)
print("env", sorted(set(found_env)))
print("mem", sorted(set(found_mem)))
print("mine", os.environ["A"].encode() == needles[0])
"""


@pytest.mark.pid1
def test_pid1_environ_and_memory_hold_references_never_values(
    stocked: FakeSecretManager, tmp_path: Path
) -> None:
    needles = tmp_path / "needles"
    needles.write_bytes("\n".join(FORBIDDEN[:4]).encode())
    result = run(
        ["--", sys.executable, "-c", SCAN_PID1, str(needles)],
        env=gsm_env(stocked, **GOOD),
        pid1=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "environ-has-ref True",
        "env []",
        "mem []",
        "mine True",
    ]


def test_resolved_values_reach_the_program_exactly(
    stocked: FakeSecretManager, tmp_path: Path
) -> None:
    program = "import os; print(os.environ['A'], os.environ['B'], os.environ['C'], sep='|')"
    result = run(["--", sys.executable, "-c", program], env=gsm_env(stocked, **GOOD))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "|".join(
        ["Zq7-plain-Secret-Value-91x", "Zq7-json-Password-42y", "Zq7-ünïcødé-Sécret-33w"]
    )

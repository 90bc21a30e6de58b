"""What PID 1 imports, measured on a real run rather than promised in comments.

PID 1 lives as long as the container, so every module it imports is memory
and start-up time paid for the container's whole life, and an SDK in it would
be an SDK next to the program for that whole life. The run below is a real
`secrets-init -- true`; the parent records `sys.modules` just before it exits,
which is everything the supervisor ever imported (the forked child's imports
are its own and vanish with the exec).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from testing.fake_secretmanager import FakeSecretManager

ROOT = Path(__file__).resolve().parent.parent

# Standard-library modules that PID 1 must not carry: each costs start-up time
# and resident memory (dataclasses pulls in inspect, typing and ast; enum and
# signal build enums at import; ctypes is ~4 ms; collections, which collections.abc
# imports, is ~1 ms, so annotations' types are imported only for type checkers).
HEAVY = ("dataclasses", "typing", "enum", "signal", "ctypes", "inspect", "logging", "argparse")
HEAVY += ("collections", "types", "hashlib", "hmac", "random", "tempfile", "shutil")
SDKS = ("boto3", "botocore", "grpc", "google", "urllib3", "requests", "cryptography")

# Runs as the supervisor: writes WRITTEN (an expression) to argv[1] in the
# process that called main() (not in its forked children) at the moment it exits.
# Only os, sys and IMPORTS: the recorder must not add modules of its own (json
# alone would bring enum and re).
_RECORDING = """
import IMPORTS
parent = os.getpid()
real_exit = os._exit
def recording_exit(status):
    if os.getpid() == parent:
        with open(sys.argv[1], "w") as out:
            out.write(WRITTEN)
    real_exit(status)
os._exit = recording_exit
from secrets_init.cli import main
main(sys.argv[2:])
"""


def _recorder(written: str, imports: str = "os, sys") -> str:
    return _RECORDING.replace("IMPORTS", imports).replace("WRITTEN", written)


# sys.modules, as PID 1 has them at its exit.
_RECORDER = _recorder('"\\n".join(sorted(sys.modules))')

REFERENCES = {
    "DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    "PARAM": "arn:aws:ssm:us-east-1:123456789012:parameter/app/key",
    "KEY": "gcp:secretmanager:projects/p/secrets/key?destination=tempfile",
}


def pid1_modules(tmp_path: Path, env: dict[str, str], *argv: str) -> tuple[int, set[str]]:
    record = tmp_path / "modules.json"
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", "HOME": "/"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", _RECORDER, str(record), *argv],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert record.exists(), done.stderr
    return done.returncode, set(record.read_text().split())


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no-references"),
        # No endpoint and no credentials: the child fails to resolve, which is
        # exactly when a careless PID 1 would have imported a provider to say why.
        pytest.param(
            {**REFERENCES, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
            id="references",
        ),
    ],
)
def test_pid1_imports_no_sdk_no_provider_and_no_heavy_module(
    tmp_path: Path, env: dict[str, str]
) -> None:
    status, modules = pid1_modules(tmp_path, env, "--timeout", "3", "--", "true")
    assert status == (0 if not env else 1)
    assert "secrets_init.supervisor" in modules  # it really supervised
    heavy = sorted(modules & set(HEAVY))
    assert heavy == [], f"PID 1 imported {heavy}"
    sdks = sorted(m for m in modules if m.split(".")[0] in SDKS)
    assert sdks == [], f"PID 1 imported {sdks}"
    parsing = sorted(
        m
        for m in modules
        if m.startswith(("secrets_init.providers", "secrets_init.references"))
        or m in ("secrets_init.environment", "secrets_init.check")
    )
    assert parsing == [], f"PID 1 imported the parsing and fetching modules {parsing}"
    # Spawned with nothing to resolve: nothing of the forked child's way is loaded either,
    # nor `__future__` (see secrets_init/cli.py).
    forked_only = {"select", "secrets_init.child", "secrets_init.terminal", "__future__"}
    assert "secrets_init.program" in modules
    assert (modules & forked_only == set()) == (not env), sorted(modules & forked_only)


def test_the_recorder_sees_what_pid1_imports(tmp_path: Path) -> None:
    """The check above can fail: a supervisor that imports an SDK is caught."""
    sitecustomize = tmp_path / "site" / "sitecustomize.py"
    sitecustomize.parent.mkdir()
    sitecustomize.write_text("import dataclasses, botocore\n")
    record = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", _RECORDER, str(record), "--", "true"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join([str(sitecustomize.parent), str(ROOT)]),
            "HOME": "/",
        },
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        check=True,
    )
    modules = set(record.read_text().split())
    assert {"dataclasses", "botocore"} <= modules


# Whether the cyclic garbage collector is on, and how many objects it keeps frozen.
_GC_RECORDER = _recorder('f"{gc.isenabled()} {gc.get_freeze_count()}"', "gc, os, sys")


@pytest.mark.parametrize("argv", [["--", "true"], ["--check"]], ids=["supervising", "check"])
def test_garbage_collection_is_off_only_for_the_start(tmp_path: Path, argv: list[str]) -> None:
    """Start-up runs without the cyclic collector (secrets_init.cli); it must be back on
    afterwards, or every reference cycle PID 1 makes in the container's life would stay.
    A supervisor froze what start-up built, at the fork: never walked again."""
    record = tmp_path / "gc.txt"
    done = subprocess.run(
        [sys.executable, "-S", "-c", _GC_RECORDER, str(record), *argv],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", "HOME": "/"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    enabled, frozen = record.read_text().split()
    assert enabled == "True"
    if argv[0] == "--":
        assert int(frozen) > 1000


def test_pid1_imports_stay_light_through_refreshes(tmp_path: Path, gsm: FakeSecretManager) -> None:
    """With --refresh, PID 1 forks a refresh child each interval; the fetching, the digests
    (hmac, hashlib) and the sockets' enums stay in those children."""
    gsm.add_secret("proj-1", "a", "a-1")
    gsm.add_secret("proj-1", "b", "b-1")
    # -S keeps site's own imports (enum, re) out; the SDKs are found through PYTHONPATH.
    purelib = sysconfig.get_paths()["purelib"]
    env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), purelib]),
        "SECRETMANAGER_EMULATOR_HOST": gsm.address,
        "A": "gcp:secretmanager:projects/proj-1/secrets/a",
        "B": "gcp:secretmanager:projects/proj-1/secrets/b?destination=tempfile",
    }
    status, modules = pid1_modules(tmp_path, env, "--refresh", "1s", "--", "sleep", "3.5")
    assert status == 0
    assert gsm.calls >= 2 * 3  # two secrets: the first resolution and two refreshes or more
    assert "secrets_init.rotation" in modules  # it really refreshed
    heavy = sorted(
        modules & {*HEAVY, "hmac", "hashlib", "socket", "random", "secrets_init.refresh"}
    )
    assert heavy == [], f"PID 1 imported {heavy}"
    sdks = sorted(m for m in modules if m.split(".")[0] in SDKS)
    assert sdks == [], f"PID 1 imported {sdks}"

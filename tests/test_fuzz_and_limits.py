"""Arbitrary provider answers and large inputs: resolved correctly or refused clearly,
never a traceback, never a program started with half an environment."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secrets_init import values
from tests.conftest import gsm_env, secrets_init_argv
from tests.google.fake_secretmanager import FakeSecretManager

REF = "gcp:secretmanager:projects/proj-1/secrets/"
# The program writes its environment as JSON of hex, so any bytes survive the trip.
DUMP = (
    "import json, os, sys; "
    "json.dump({k.hex(): v.hex() for k, v in os.environb.items()}, sys.stdout)"
)


@pytest.fixture(scope="module")
def shared_gsm() -> Iterator[FakeSecretManager]:
    from tests.google.fake_secretmanager import FakeSecretManager

    with FakeSecretManager() as fake:
        yield fake


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5).map(
        lambda d: json.dumps(d).encode()
    ),
    st.just(b"{not json"),
)


def expected_value(payload: bytes, key: str | None) -> bytes | None:
    """What the program must see, or None where secrets-init must refuse."""
    try:
        value = payload if key is None else values.select_json_key(payload, key)
        values.check_environment_value("V", value)
    except values.ValueProblem:
        return None
    return value


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=payloads,
    key=st.one_of(st.none(), st.sampled_from(["k", "a", ""])),
    plain=st.binary(max_size=50),
)
def test_arbitrary_payloads_resolve_or_fail_cleanly(
    shared_gsm: FakeSecretManager, payload: bytes, key: str | None, plain: bytes
) -> None:
    number = shared_gsm.add_secret("proj-1", "fuzz", payload)
    reference = f"{REF}fuzz/versions/{number}" + (f"#{key}" if key else "")
    env = {k.encode(): v.encode() for k, v in gsm_env(shared_gsm, V=reference).items()}
    env[b"PLAIN"] = plain.replace(b"\0", b"")
    result = subprocess.run(
        [*secrets_init_argv(), "--", sys.executable, "-c", DUMP],
        env=env,
        capture_output=True,
        timeout=60,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr
    expected = expected_value(payload, key or None)
    if expected is None:
        assert result.returncode == 1, stderr
        assert result.stdout == b""  # the program never started
        assert stderr.startswith(f"secrets-init: error: V: {reference}: ")
    else:
        assert result.returncode == 0, stderr
        seen = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(result.stdout).items()}
        assert seen[b"V"] == expected
        assert seen[b"PLAIN"] == env[b"PLAIN"]


def test_a_thousand_references_a_64k_value_and_over_128k_of_environment(
    shared_gsm: FakeSecretManager,
) -> None:
    big = b"x" * (64 * 1024)
    shared_gsm.add_secret("proj-1", "big", big)
    for index in range(50):
        shared_gsm.add_secret("proj-1", f"s{index}", f"value-{index}")
    variables = {f"V{i:04d}": f"{REF}s{i % 50}" for i in range(1000)}
    variables["BIG"] = REF + "big"
    variables["BIG2"] = REF + "big"  # with BIG, over 128 KiB of environment in all
    program = (
        "import os; print(len(os.environ['BIG']), os.environ['V0999'], os.environ['V0000'], "
        "sum(len(k) + len(v) + 2 for k, v in os.environb.items()) > 128 * 1024)"
    )
    result = subprocess.run(
        [*secrets_init_argv(), "--", sys.executable, "-c", program],
        env=gsm_env(shared_gsm, **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(len(big)), "value-49", "value-0", "True"]


def test_a_value_over_the_kernel_limit_is_refused_by_name(
    shared_gsm: FakeSecretManager, tmp_path: Path
) -> None:
    shared_gsm.add_secret("proj-1", "huge", b"y" * (128 * 1024))
    marker = tmp_path / "started"
    result = subprocess.run(
        [*secrets_init_argv(), "--", "touch", str(marker)],
        env=gsm_env(shared_gsm, HUGE=REF + "huge"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert not marker.exists()
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"secrets-init: error: HUGE: {REF}huge: ")
    assert "limit" in first and "?destination=" in first
    as_file = subprocess.run(
        [*secrets_init_argv(), "--", "sh", "-c", 'wc -c < "$HUGE"'],
        env=gsm_env(shared_gsm, HUGE=REF + "huge?destination=tempfile"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_file.returncode == 0, as_file.stderr
    assert as_file.stdout.strip() == str(128 * 1024)

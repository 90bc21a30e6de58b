"""Turning fetched bytes into what the program receives (secrets_init/values.py).

By example, then end to end: arbitrary provider answers and large inputs are
resolved correctly or refused clearly, never with a traceback, never with a
program started with half an environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secrets_init import values
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.process import run

# -- by example -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("text", b"text"), (None, b""), (5, b"5"), (1.5, b"1.5"), (True, b"true"),
     ([1, "a"], b'[1,"a"]'), ({"x": {"y": None}}, b'{"x":{"y":null}}'), ("é", "é".encode())],
)  # fmt: skip
def test_json_key_conversions(stored: object, expected: bytes) -> None:
    payload = json.dumps({"key": stored, "other": "must-not-leak"}).encode()
    assert values.select_json_key(payload, "key") == expected


def test_missing_json_key_names_the_key_not_the_others() -> None:
    payload = json.dumps({"user": "u", "pw": "hunter2"}).encode()
    with pytest.raises(values.UnusableValueError) as problem:
        values.select_json_key(payload, "password")
    message = str(problem.value)
    assert "'password'" in message
    assert "pw" not in message.replace("password", "") and "hunter2" not in message


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]"], ids=["not-json", "not-an-object"])
def test_a_key_of_something_that_is_not_a_json_object_is_refused(payload: bytes) -> None:
    with pytest.raises(values.UnusableValueError):
        values.select_json_key(payload, "k")


DEEP = b"[" * 100_000 + b"]" * 100_000
TOO_DEEP = "secret is JSON nested too deeply to read"


@pytest.mark.parametrize(
    ("payload", "cause"),
    [(b'{"k": ' + DEEP + b"}", TOO_DEEP), (DEEP, TOO_DEEP),
     (b'{"k": ' + b"9" * 5000 + b"}", "secret is JSON with an integer longer than 4300 digits")],
    ids=["deep-object", "deep-array", "huge-integer"],
)  # fmt: skip
def test_json_that_python_cannot_read_is_refused_with_what_is_wrong(
    payload: bytes, cause: str
) -> None:
    with pytest.raises(values.UnusableValueError) as problem:
        values.select_json_key(payload, "k")
    assert str(problem.value) == cause


def test_expand_json_takes_deep_json_that_is_no_object_as_one_value() -> None:
    assert values.expand_object(DEEP) is None
    with pytest.raises(values.UnusableValueError):
        values.expand_object(b' {"k": ' + DEEP + b"}")


# -- end to end, against the fake Google Secret Manager --------------------------

REF = "gcp:secretmanager:projects/proj-1/secrets/"
# The program writes its environment as JSON of hex, so any bytes survive the trip.
DUMP = (
    "import json, os, sys; "
    "json.dump({k.hex(): v.hex() for k, v in os.environb.items()}, sys.stdout)"
)


@pytest.fixture(scope="module")
def shared_gsm() -> Iterator[FakeSecretManager]:
    with FakeSecretManager() as fake:
        yield fake


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = ["k", "a"]  # what the references ask for; the documents mostly have them
payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda others, key, value: json.dumps({**others, key: value}).encode(),
        st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        st.sampled_from(KEYS),
        json_values,
    ),
    st.just(b"{not json"),
)


def as_environment_text(value: object) -> bytes | None:
    """A JSON value as the README says the program gets it; None: it cannot be UTF-8."""
    if value is None:
        text = ""
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    else:  # arrays and objects: compact JSON, non-ASCII as it is
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return None


def expected_value(payload: bytes, key: str | None) -> bytes | None:
    """What the program must see, or None where secrets-init must refuse.

    Written from the documented rules, not with secrets_init.values: the whole
    secret as it is, or the key's value of a JSON object; refused when it holds
    a NUL byte, is not UTF-8, or "V=value" would pass Linux's 128 KiB limit.
    """
    value: bytes | None = payload
    if key is not None:
        try:
            document = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(document, dict) or key not in document:
            return None
        value = as_environment_text(document[key])
    if value is None or b"\0" in value:
        return None
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(b"V=") + len(value) + 1 > 32 * 4096:
        return None
    return value


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=payloads,
    key=st.one_of(st.none(), st.sampled_from([*KEYS, ""])),
    plain=st.binary(max_size=50),
)
def test_arbitrary_payloads_resolve_or_fail_cleanly(
    shared_gsm: FakeSecretManager, payload: bytes, key: str | None, plain: bytes
) -> None:
    number = shared_gsm.add_secret("proj-1", "fuzz", payload)
    reference = f"{REF}fuzz/versions/{number}" + (f"#{key}" if key else "")
    env = {k.encode(): v.encode() for k, v in gsm_env(shared_gsm, V=reference).items()}
    env[b"PLAIN"] = plain.replace(b"\0", b"")
    result = run(["--", sys.executable, "-c", DUMP], env=env)
    stderr = result.stderr
    assert "Traceback" not in stderr
    expected = expected_value(payload, key or None)
    if expected is None:
        assert result.returncode == 1, stderr
        assert result.stdout == ""  # the program never started
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
    result = run(
        ["--", sys.executable, "-c", program], env=gsm_env(shared_gsm, **variables), timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(len(big)), "value-49", "value-0", "True"]


def test_a_value_over_the_kernel_limit_is_refused_by_name(
    shared_gsm: FakeSecretManager, tmp_path: Path
) -> None:
    shared_gsm.add_secret("proj-1", "huge", b"y" * (128 * 1024))
    marker = tmp_path / "started"
    result = run(["--", "touch", str(marker)], env=gsm_env(shared_gsm, HUGE=REF + "huge"))
    assert result.returncode == 1
    assert not marker.exists()
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"secrets-init: error: HUGE: {REF}huge: ")
    assert "limit" in first and "?destination=" in first
    as_file = run(
        ["--", "sh", "-c", 'wc -c < "$HUGE"'],
        env=gsm_env(shared_gsm, HUGE=REF + "huge?destination=tempfile"),
    )
    assert as_file.returncode == 0, as_file.stderr
    assert as_file.stdout.strip() == str(128 * 1024)

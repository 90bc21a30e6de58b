"""Finding references and turning fetched bytes into values (pure logic)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secrets_init import environment, references, values
from secrets_init.references import Reference, ResolutionError
from secrets_init.resolver import Resolved


def test_only_values_starting_with_a_prefix_are_references() -> None:
    env = {
        b"A": b"prefix gcp:secretmanager:x",
        b"B": b"arn:aws:iam::123456789012:role/x",
        b"C": b"\xff\xfe",
        b"D": b"arn:aws:s3:::bucket",
    }
    assert references.scan(env) == ([], [])


@given(st.dictionaries(st.binary(min_size=1, max_size=20), st.binary(max_size=200), max_size=10))
def test_scan_never_crashes_on_arbitrary_environments(env: dict[bytes, bytes]) -> None:
    found, malformed = references.scan(env)
    assert all(isinstance(e, ResolutionError) for e in malformed)
    if not malformed:
        for reference in found:
            assert env[reference.variable.encode("utf-8", "surrogateescape")].startswith(
                reference.text.encode()
            )


def test_destination_suffix_is_parsed_and_checked() -> None:
    entry = references.providers.REGISTRY[0]
    with pytest.raises(ResolutionError) as relative:
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?destination=rel/path", entry)
    assert relative.value.variable == "V"
    assert "absolute path" in str(relative.value)
    with pytest.raises(ResolutionError):
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?other=1", entry)


def ref(
    variable: str = "V", json_key: str | None = None, destination: str | None = None
) -> Reference:
    return Reference(variable, "ref-text", "test", ("t", variable), json_key, destination)


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
    with pytest.raises(values.ValueProblem) as problem:
        values.select_json_key(payload, "password")
    message = str(problem.value)
    assert "'password'" in message
    assert "pw" not in message.replace("password", "") and "hunter2" not in message
    with pytest.raises(values.ValueProblem):
        values.select_json_key(b"not json", "k")
    with pytest.raises(values.ValueProblem):
        values.select_json_key(b"[1,2]", "k")


def test_environment_refuses_nul_non_utf8_and_oversized_values() -> None:
    for bad in (b"a\0b", b"\xff", b"x" * (128 * 1024)):
        _, errors = environment.build({}, [Resolved(ref(), bad)])
        assert len(errors) == 1 and errors[0].variable == "V"
        assert repr(bad)[:10] not in str(errors[0])


def test_expand_json_replaces_the_variable_and_detects_collisions() -> None:
    payload = b'{"USER": "u", "PORT": 5432, "EMPTY": null}'
    env, errors = environment.build(
        {b"V": b"ref", b"KEEP": b"k"}, [Resolved(ref(), payload)], expand_json=True
    )
    assert errors == []
    assert env == {b"USER": b"u", b"PORT": b"5432", b"EMPTY": b"", b"KEEP": b"k"}
    _, errors = environment.build(
        {b"V": b"ref", b"USER": b"x"}, [Resolved(ref(), payload)], expand_json=True
    )
    assert len(errors) == 1 and "USER" in errors[0].cause
    two = [Resolved(ref("A"), b'{"K": "1"}'), Resolved(ref("B"), b'{"K": "2"}')]
    _, errors = environment.build({b"A": b"r", b"B": b"r"}, two, expand_json=True)
    assert len(errors) == 1 and "A" in errors[0].cause and "K" in errors[0].cause
    plain, errors = environment.build(
        {b"V": b"ref"}, [Resolved(ref(), b"not json")], expand_json=True
    )
    assert plain == {b"V": b"not json"} and errors == []


def test_every_provider_prefix_passes_pid1s_first_look() -> None:
    from secrets_init.candidates import SCHEMES

    for entry in references.providers.REGISTRY:
        for prefix in entry.prefixes:
            assert prefix.encode().startswith(SCHEMES), prefix

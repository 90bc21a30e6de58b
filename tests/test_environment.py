"""The program's environment (secrets_init/environment.py): values checked, JSON expanded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secrets_init import environment
from secrets_init.fetching import Fetched
from secrets_init.references import Reference
from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.moto import Aws, aws_env
from testing.process import run

GOOGLE = "gcp:secretmanager:projects/proj-1/secrets/"


def ref(variable: str = "V") -> Reference:
    return Reference(variable.encode(), "ref-text", "test", ("t", variable), None, None)


@pytest.mark.parametrize("bad", [b"a\0b", b"\xff", b"x" * (128 * 1024)], ids=["nul", "utf8", "big"])
def test_nul_non_utf8_and_oversized_values_are_refused_by_name(bad: bytes) -> None:
    _, errors = environment.build({}, [Fetched(ref(), bad)])
    assert len(errors) == 1 and errors[0].variable == "V"
    assert repr(bad)[:10] not in str(errors[0])


PAYLOAD = b'{"USER": "u", "PORT": 5432, "EMPTY": null}'


def test_expand_json_replaces_the_variable_with_one_per_key() -> None:
    env, errors = environment.build(
        {b"V": b"ref", b"KEEP": b"k"}, [Fetched(ref(), PAYLOAD)], expand_json=True
    )
    assert errors == []
    assert env == {b"USER": b"u", b"PORT": b"5432", b"EMPTY": b"", b"KEEP": b"k"}


def test_expand_json_refuses_a_key_that_collides_with_a_variable() -> None:
    _, errors = environment.build(
        {b"V": b"ref", b"USER": b"x"}, [Fetched(ref(), PAYLOAD)], expand_json=True
    )
    assert len(errors) == 1 and "USER" in errors[0].cause


def test_expand_json_refuses_a_key_two_secrets_both_set() -> None:
    two = [Fetched(ref("A"), b'{"K": "1"}'), Fetched(ref("B"), b'{"K": "2"}')]
    _, errors = environment.build({b"A": b"r", b"B": b"r"}, two, expand_json=True)
    assert len(errors) == 1 and "A" in errors[0].cause and "K" in errors[0].cause


def test_expand_json_keeps_a_value_that_is_not_json() -> None:
    plain, errors = environment.build(
        {b"V": b"ref"}, [Fetched(ref(), b"not json")], expand_json=True
    )
    assert plain == {b"V": b"not json"} and errors == []


# -- end to end, against moto --------------------------------------------------

NAMES = ["APP_CONFIG", "DB_USER", "DB_PORT", "DB_OPTS", "KEPT"]
DOCUMENT = {"DB_USER": "admin", "DB_PORT": 5432, "DB_OPTS": {"ssl": True}}


def test_without_expand_json_the_secret_stays_one_variable(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("app", json.dumps(DOCUMENT))
    env = aws_env(proxy.url, APP_CONFIG=aws.sm_ref("app"), KEPT=aws.sm_ref("app", tail=":DB_USER"))
    plain = run(env=env, show=NAMES)
    assert plain.returncode == 0, plain.stderr
    assert plain.seen is not None and plain.seen["DB_USER"] is None
    assert json.loads(plain.seen["APP_CONFIG"] or "") == DOCUMENT


@pytest.mark.parametrize(
    ("args", "extra"),
    [(["--expand-json"], {}), ([], {"SECRETS_INIT_EXPAND_JSON": "Yes"})],
    ids=["flag", "environment"],
)
def test_expand_json_makes_one_variable_per_key(
    aws: Aws, proxy: AwsProxy, args: list[str], extra: dict[str, str]
) -> None:
    aws.secret("app", json.dumps(DOCUMENT))
    env = aws_env(
        proxy.url, APP_CONFIG=aws.sm_ref("app"), KEPT=aws.sm_ref("app", tail=":DB_USER"), **extra
    )
    expanded = run(args, env=env, show=NAMES)
    assert expanded.returncode == 0, expanded.stderr
    assert expanded.seen == {
        "APP_CONFIG": None,
        "DB_USER": "admin",
        "DB_PORT": "5432",
        "DB_OPTS": '{"ssl":true}',
        "KEPT": "admin",  # a reference with a JSON key is not expanded
    }


def test_expand_json_collision_names_both_variables(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("clash", json.dumps({"HOME_DIR": "x", "PATH": "/evil"}))
    ref = aws.sm_ref("clash")
    result = run(["--expand-json"], env=aws_env(proxy.url, CONFIG=ref), show=["CONFIG"])
    assert result.returncode == 1 and result.seen is None
    assert (
        result.errors[0] == f"CONFIG: {ref}: --expand-json: key 'PATH' collides with variable PATH"
    )
    assert "/evil" not in result.stderr


def test_a_json_key_that_is_a_lone_surrogate_is_that_variables_error() -> None:
    payload = b'{"OK": "1", "\\ud800": "2"}'
    _, errors = environment.build({b"V": b"ref"}, [Fetched(ref(), payload)], expand_json=True)
    assert [(error.variable, error.cause) for error in errors] == [
        ("V", "--expand-json: key '\\ud800' is not a valid variable name (not valid UTF-8)")
    ]


def test_expand_json_says_why_it_cannot_read_an_object() -> None:
    deep = b'{"K": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"K": ' + b"1" * 5000 + b"}"
    _, errors = environment.build(
        {b"A": b"ref", b"B": b"ref"},
        [Fetched(ref("A"), deep), Fetched(ref("B"), huge)],
        expand_json=True,
    )
    assert [(error.variable, error.cause) for error in errors] == [
        ("A", "secret is JSON nested too deeply to read"),
        ("B", "secret is JSON with an integer longer than 4300 digits"),
    ]


def test_no_file_is_written_when_another_variable_fails(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("old")
    to_file = Reference(b"A_FILE", "ref", "test", "a", None, str(target))
    _, errors = environment.build(
        {b"A_FILE": b"ref", b"B": b"ref"},
        [Fetched(to_file, b"new"), Fetched(ref("B"), b"\xff not text")],
    )
    assert [error.variable for error in errors] == ["B"]
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret"]


def test_a_destination_is_not_written_when_a_later_one_cannot_be(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "s", b"new")
    target = tmp_path / "first"
    target.write_text("old")
    env = gsm_env(
        gsm,
        A_FIRST=f"{GOOGLE}s?destination={target}",
        B_SECOND=f"{GOOGLE}s?destination={tmp_path}/missing/second",
        C_TEXT=f"{GOOGLE}s",
    )
    result = run(["--", "touch", str(tmp_path / "started")], env=env)
    assert result.returncode == 1
    assert [line.split(":", 1)[0] for line in result.errors[:-1]] == ["B_SECOND"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first"]
    assert target.read_text() == "old"


def test_a_lone_surrogate_json_key_is_reported_not_an_internal_error(
    gsm: FakeSecretManager,
) -> None:
    gsm.add_secret("proj-1", "odd-key", b'{"GOOD": "1", "\\ud800": "2"}')
    result = run(["--expand-json", "--", "true"], env=gsm_env(gsm, ODD=f"{GOOGLE}odd-key"))
    assert result.returncode == 1
    assert result.errors[0] == (
        f"ODD: {GOOGLE}odd-key: --expand-json: key '\\ud800' is not a valid variable name "
        "(not valid UTF-8)"
    )

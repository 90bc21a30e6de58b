"""The AWS reference grammar: examples, and properties checked with hypothesis.

Properties: `parse` never fails with anything but ReferenceSyntaxError, and
every valid reference built from its parts parses back to those parts.
"""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from secrets_init.providers import (
    Parsed,
    ReferenceSyntaxError,
    aws_secretsmanager_grammar,
    aws_ssm_grammar,
)
from secrets_init.providers.aws_secretsmanager_grammar import SecretsManagerTarget
from secrets_init.providers.aws_ssm_grammar import ParameterStoreTarget

ACCOUNT = "123456789012"
SM = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
SSM = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter"


@pytest.mark.parametrize(
    ("text", "name", "key", "stage", "version"),
    [
        (f"{SM}db", "db", None, None, None),
        (f"{SM}prod/db-AbC123", "prod/db-AbC123", None, None, None),
        (f"{SM}db:password", "db", "password", None, None),
        (f"{SM}db:password::", "db", "password", None, None),
        (f"{SM}db::AWSPREVIOUS:", "db", None, "AWSPREVIOUS", None),
        (f"{SM}db:::0a1b2c3d-0000-4000-8000-00000000abcd", "db", None, None,
         "0a1b2c3d-0000-4000-8000-00000000abcd"),
        (f"{SM}a+b=c.d@e_f-g:key with spaces:v1:", "a+b=c.d@e_f-g", "key with spaces", "v1", None),
        (f"{SM}db:", "db", None, None, None),
    ],
)  # fmt: skip
def test_secrets_manager_examples(
    text: str, name: str, key: str | None, stage: str | None, version: str | None
) -> None:
    assert aws_secretsmanager_grammar.parse(text) == Parsed(
        SecretsManagerTarget("aws", "us-east-1", ACCOUNT, name, stage, version), key
    )


def test_partition_region_and_account_come_from_the_arn() -> None:
    parsed = aws_secretsmanager_grammar.parse(
        "arn:aws-cn:secretsmanager:cn-northwest-1:000000000001:secret:x"
    )
    assert parsed.target == SecretsManagerTarget("aws-cn", "cn-northwest-1", "000000000001", "x")
    parsed = aws_ssm_grammar.parse("arn:aws-us-gov:ssm:us-gov-west-1:000000000002:parameter/a/b:3")
    assert parsed == Parsed(
        ParameterStoreTarget("aws-us-gov", "us-gov-west-1", "000000000002", "/a/b", "3")
    )


@pytest.mark.parametrize(
    ("text", "name", "selector", "subject"),
    [
        (f"{SSM}/db", "/db", None, "parameter"),
        (f"{SSM}/app/prod/db-url", "/app/prod/db-url", None, "parameter"),
        (f"{SSM}/app/db:12", "/app/db", "12", "parameter (version 12)"),
        (f"{SSM}/app/db:stable", "/app/db", "stable", "parameter (label stable)"),
    ],
)
def test_parameter_store_examples(text: str, name: str, selector: str | None, subject: str) -> None:
    parsed = aws_ssm_grammar.parse(text)
    target = ParameterStoreTarget("aws", "us-east-1", ACCOUNT, name, selector)
    assert parsed == Parsed(target)
    assert isinstance(parsed.target, ParameterStoreTarget)
    assert parsed.target.subject == subject
    assert parsed.target.request_name == text


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("arn:aws:secretsmanager::123456789012:secret:db", "missing region"),
        ("arn:aws:secretsmanager:us-east-1::secret:db", "missing account"),
        ("arn:aws:secretsmanager:us-east-1:12345:secret:db", "12 digits"),
        ("arn:aws:secretsmanager:US_EAST:123456789012:secret:db", "not an AWS region name"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:", "empty secret name"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:db", "missing 'secret:'"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret", "missing 'secret:'"),
        ("arn:aws:secretsmanager:us-east-1:123456789012", "expected arn:PARTITION"),
        (f"{SM}db:k:s:v:extra", "too many ':' parts"),
        (f"{SM}db name", "at most 512 letters"),
        (f"{SM}db:key:stage with space:", "version stage"),
        ("arn:aws-eu:secretsmanager:us-east-1:123456789012:secret:db", "partition must be"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/", "empty parameter name"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/a//b", "empty part"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/a/", "empty part"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter", "missing 'parameter/'"),
        ("arn:aws:ssm:us-east-1:123456789012:document/a", "missing 'parameter/'"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/a:1:2", "too many ':' parts"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/a:", "version number or a label"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/a b", "at most 1011 letters"),
        ("arn:aws:ssm:us-east-1::parameter/a", "missing account"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, cause: str) -> None:
    module = aws_ssm_grammar if ":ssm:" in text else aws_secretsmanager_grammar
    with pytest.raises(ReferenceSyntaxError, match=cause.replace("(", r"\(")):
        module.parse(text)


# -- properties ---------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov"])
regions = st.builds(
    lambda area, place, number: f"{area}-{place}-{number}",
    st.sampled_from(["us", "eu", "ap", "cn", "il", "me"]),
    st.sampled_from(["east", "west", "north", "southeast", "gov-west", "central"]),
    st.integers(1, 9),
)
accounts = st.text("0123456789", min_size=12, max_size=12)
secret_names = st.text(_ALNUM + "/_+=.@-", min_size=1, max_size=80)
json_keys = st.none() | st.text(st.characters(exclude_characters=":"), min_size=1, max_size=30)
printable = st.characters(min_codepoint=33, max_codepoint=126).filter(lambda c: c != ":")
labels = st.none() | st.text(printable, min_size=1, max_size=40)
segments = st.text(_ALNUM + "_.-", min_size=1, max_size=20)
parameter_names = st.lists(segments, min_size=1, max_size=6).map(
    lambda parts: "/" + "/".join(parts)
)
selectors = (
    st.none() | st.integers(1, 10**6).map(str) | st.text(_ALNUM + "_.-", min_size=1, max_size=30)
)


@given(partitions, regions, accounts, secret_names, json_keys, labels, labels, st.integers(0, 3))
def test_secret_references_round_trip(
    partition: str,
    region: str,
    account: str,
    name: str,
    key: str | None,
    stage: str | None,
    version: str | None,
    trailing: int,
) -> None:
    target = SecretsManagerTarget(partition, region, account, name, stage, version)
    parts = [key or "", stage or "", version or ""]
    # Trailing empty parts may be left out: db, db:, db:key, db:key::
    while parts and not parts[-1] and trailing < 3:
        parts.pop()
        trailing += 1
    text = ":".join([target.arn, *parts])
    assert aws_secretsmanager_grammar.parse(text) == Parsed(target, key)


@given(partitions, regions, accounts, parameter_names, selectors)
def test_parameter_references_round_trip(
    partition: str, region: str, account: str, name: str, selector: str | None
) -> None:
    target = ParameterStoreTarget(partition, region, account, name, selector)
    parsed = aws_ssm_grammar.parse(target.request_name)
    assert parsed == Parsed(target)
    assert hash(parsed.target) == hash(target)


_PIECES = st.sampled_from(
    ["arn", "aws", "aws-cn", "secretsmanager", "ssm", "us-east-1", "123456789012", "secret",
     "parameter/", "parameter", "db", "/", "", " ", "é", "\n", "::", "a:b"]
)  # fmt: skip


def _secret_text(target: SecretsManagerTarget, key: str | None) -> str:
    parts = [key or "", target.version_stage or "", target.version_id or ""]
    return ":".join([target.arn, *parts])


_secret_texts = st.builds(
    _secret_text,
    st.builds(SecretsManagerTarget, partitions, regions, accounts, secret_names, labels, labels),
    json_keys,
)
_parameter_texts = st.builds(
    lambda target: target.request_name,
    st.builds(ParameterStoreTarget, partitions, regions, accounts, parameter_names, selectors),
)
_references = _secret_texts | _parameter_texts
_EDITS = st.sampled_from([":", "::", ":1", ":a", "a:b", "/", "//", " ", "é", "\n", "-", "+"])
_PREFIX = st.sampled_from(["arn:aws:secretsmanager:", "arn:aws:ssm:", ""])


def _mutated(text: str, at: int, piece: str, delete: bool) -> str:
    """`text` with `piece` put in at `at`, or the character there taken out."""
    at %= len(text) + 1
    return text[:at] + text[at + 1 :] if delete else text[:at] + piece + text[at:]


_texts = st.one_of(
    _references,
    st.builds(_mutated, _references, st.integers(0, 200), _EDITS, st.booleans()),
    st.builds(str.__add__, _PREFIX, st.lists(_PIECES, max_size=10).map(":".join)),
    st.text(max_size=80),
)


@pytest.mark.parametrize("module", [aws_secretsmanager_grammar, aws_ssm_grammar], ids=["sm", "ssm"])
def test_parse_accepts_only_what_it_can_name_and_refuses_in_one_line(module: object) -> None:
    """Whatever `parse` accepts names the reference it was given; whatever it refuses is
    a ReferenceSyntaxError with a one-line message. Both branches must be reached."""
    outcomes: list[str] = []

    @settings(max_examples=400, deadline=None)
    @given(_texts)
    def parse_anything(text: str) -> None:
        try:
            parsed = module.parse(text)  # type: ignore[attr-defined]
        except ReferenceSyntaxError as error:
            assert str(error) and "\n" not in str(error)
            outcomes.append("refused")
            event("refused")
            return
        target = parsed.target
        if module is aws_secretsmanager_grammar:
            assert isinstance(target, SecretsManagerTarget)
            assert text.startswith(target.arn)
        else:
            assert isinstance(target, ParameterStoreTarget)
            assert target.request_name == text
        assert hash(target) == hash(module.parse(text).target)  # type: ignore[attr-defined]
        outcomes.append("accepted")
        event("accepted")

    parse_anything()
    assert outcomes.count("accepted") >= 50, outcomes.count("accepted")
    assert outcomes.count("refused") >= 50, outcomes.count("refused")

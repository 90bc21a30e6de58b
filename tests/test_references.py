"""Finding references in the environment (secrets_init/references.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secrets_init import candidates, providers, references
from secrets_init.references import ResolutionError
from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import run

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/my-service-account-role"


def test_only_values_starting_with_a_prefix_are_references() -> None:
    env = {
        b"A": b"prefix gcp:secretmanager:x",
        b"B": b"arn:aws:iam::123456789012:role/x",
        b"C": b"\xff\xfe",
        b"D": b"arn:aws:s3:::bucket",
    }
    assert references.scan(env) == ([], [])


# Values that look like references: valid ones built from each provider's grammar,
# near misses built from its prefixes and pieces, and bytes that are neither.
_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_REGION = st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1"])
_DESTINATION = st.sampled_from(["", "?destination=tempfile", "?destination=/run/x"])
_VALID = st.one_of(
    st.builds(
        "arn:{}:secretsmanager:{}:123456789012:secret:{}{}{}".format,
        st.sampled_from(providers.AWS_PARTITIONS),
        _REGION,
        _NAME,
        st.sampled_from(["", ":key", ":key::", "::AWSPREVIOUS:"]),
        _DESTINATION,
    ),
    st.builds(
        "arn:{}:ssm:{}:123456789012:parameter/{}{}{}".format,
        st.sampled_from(providers.AWS_PARTITIONS),
        _REGION,
        _NAME,
        st.sampled_from(["", ":3", ":stable"]),
        _DESTINATION,
    ),
    st.builds(
        "gcp:secretmanager:projects/my-project/secrets/{}{}{}{}".format,
        _NAME,
        st.sampled_from(["", "/versions/2", "/versions/latest"]),
        st.sampled_from(["", "#key"]),
        _DESTINATION,
    ),
)
_TAILS = st.lists(
    st.sampled_from(
        ["us-east-1", "123456789012", "secret:db", "parameter/app/db", ":", "::", "/", "#k",
         "projects/p/secrets/s", "db", "versions/3", "?destination=rel", " ", "é", "\n"]
    ),
    max_size=6,
).map("".join)  # fmt: skip
_PREFIXES = st.sampled_from(
    [*sorted({prefix for entry in providers.REGISTRY for prefix in entry.prefixes}), "arn:", "",
     "arn:aws-iso-f:ssm:", "arn:aws-unknown:secretsmanager:", "arn::ssm:", "arn:aws:ssmx:"]
)  # fmt: skip
_VALUES = st.one_of(
    _VALID.map(str.encode),
    st.builds(lambda prefix, tail: (prefix + tail).encode(), _PREFIXES, _TAILS),
    st.builds(lambda prefix, tail: prefix.encode() + tail, _PREFIXES, st.binary(max_size=20)),
    st.binary(max_size=40),
)
# Names as exec allows them: any bytes but '=' and NUL, UTF-8 or not.
_NAMES = st.one_of(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).map(str.encode),
    st.binary(min_size=1, max_size=8).filter(lambda name: b"=" not in name and b"\0" not in name),
)


def test_scan_finds_or_refuses_every_value_with_a_prefix_and_nothing_else() -> None:
    """Each value that starts with a provider's prefix, UTF-8 or not, is a reference or an
    error, never silently skipped; every other value is left alone. A reference keeps
    its variable's name byte for byte."""
    checked: list[int] = []

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(_NAMES, _VALUES, max_size=6))
    def scan_partitions(env: dict[bytes, bytes]) -> None:
        found, malformed = references.scan(env)
        assert all(isinstance(error, ResolutionError) for error in malformed)
        prefixed = {
            name
            for name, value in env.items()
            if providers.entry_for(value.decode("utf-8", "backslashreplace")) is not None
        }
        found_names = [reference.variable for reference in found]
        refused_names = [error.variable for error in malformed]
        assert sorted(found_names + refused_names) == sorted(map(references.display_name, prefixed))
        for name, value in env.items():
            if name in prefixed and not value.isascii():
                try:
                    value.decode()
                except UnicodeDecodeError:
                    assert references.display_name(name) in refused_names
                    event("a prefixed value that is not UTF-8")
        for reference in found:
            value = env[reference.name]
            assert value.startswith(reference.text.encode())
            assert providers.entry_for(reference.text) is not None
            checked.append(1)
            if not reference.name.isascii():
                event("a reference in a name that is not ASCII")
        event(f"{len(found)} found, {len(malformed)} malformed")

    scan_partitions()
    assert len(checked) >= 50, f"only {len(checked)} references reached the assertions"


def test_destination_suffix_is_parsed_and_checked() -> None:
    entry = references.providers.REGISTRY[0]
    with pytest.raises(ResolutionError) as relative:
        references.parse_one(
            b"V", "arn:aws:secretsmanager:r:1:secret:x?destination=rel/path", entry
        )
    assert relative.value.variable == "V"
    assert "absolute path" in str(relative.value)
    with pytest.raises(ResolutionError):
        references.parse_one(b"V", "arn:aws:secretsmanager:r:1:secret:x?other=1", entry)


@pytest.mark.parametrize(
    "prefix", [prefix for entry in providers.REGISTRY for prefix in entry.prefixes]
)
def test_every_provider_prefix_passes_pid1s_first_look(prefix: str) -> None:
    assert prefix.encode().startswith(candidates.SCHEMES)


SM_REF = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
SSM_REF = "arn:aws:ssm:us-east-1:123456789012:parameter/db"
GOOGLE_REF = "gcp:secretmanager:projects/my-project/secrets/s"


@pytest.mark.parametrize(
    ("family", "found", "malformed"),
    [(None, ["GOOGLE", "SM", "SSM"], ["BAD_AWS", "BAD_GOOGLE"]),
     ("aws", ["SM", "SSM"], ["BAD_AWS"]),
     ("google", ["GOOGLE"], ["BAD_GOOGLE"])],
)  # fmt: skip
def test_the_provider_option_keeps_only_that_familys_references(
    family: str | None, found: list[str], malformed: list[str]
) -> None:
    env = {
        b"SM": SM_REF.encode(),
        b"SSM": SSM_REF.encode(),
        b"GOOGLE": GOOGLE_REF.encode(),
        b"BAD_AWS": b"arn:aws:secretsmanager::1:secret:x",
        b"BAD_GOOGLE": b"gcp:secretmanager:",
    }
    references_found, errors = references.scan(env, family)
    assert [reference.variable for reference in references_found] == found
    assert [error.variable for error in errors] == malformed


# -- end to end, against moto --------------------------------------------------


def test_other_arns_pass_through_unchanged(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("with-role", "value-with-role")
    others = {
        "AWS_ROLE_ARN": ROLE_ARN,
        "TOPIC": "arn:aws:sns:us-east-1:123456789012:alerts",
        "BUCKET": "arn:aws:s3:::my-bucket",
        "LOOKALIKE": "arn:aws:secretsmanagerx:us-east-1:123456789012:secret:db",
        "NOT_AT_START": " arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
    }
    result = run(env=aws_env(proxy.url, DB=aws.sm_ref("with-role"), **others), show=["DB", *others])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"DB": "value-with-role", **others}


def test_malformed_references_are_errors_not_pass_through(proxy: AwsProxy) -> None:
    bad = {
        "NO_REGION": f"arn:aws:secretsmanager::{ACCOUNT}:secret:db",
        "NO_NAME": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:",
        "NO_SECRET_PART": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:db",
        "TOO_MANY": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db:k:s:i:extra",
        "SSM_NO_PARAMETER": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/x",
        "SSM_TOO_MANY": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/x:1:2",
        "SSM_SHORT_ACCOUNT": "arn:aws:ssm:us-east-1:1234:parameter/x",
    }
    result = run(env=aws_env(proxy.url, **bad), show=["NO_REGION"])
    assert result.returncode == 1 and result.seen is None
    reported = {line.split(":", 1)[0] for line in result.errors if ": arn:" in line}
    assert reported == set(bad)
    assert proxy.counts == {}


@pytest.mark.parametrize("family", ["aws", "google"])
def test_with_provider_the_other_familys_references_reach_the_program_unchanged(
    aws: Aws, proxy: AwsProxy, gsm: FakeSecretManager, family: str
) -> None:
    arn = aws.secret("db", "aws-value")
    gsm.add_secret("my-project", "s", "google-value")
    env = aws_env(proxy.url, SECRETMANAGER_EMULATOR_HOST=gsm.address, AWS=arn, GOOGLE=GOOGLE_REF)
    for option in (["--provider", family], ["--provider=" + family]):
        result = run(option, env=env, show=["AWS", "GOOGLE"])
        assert result.returncode == 0, result.stderr
        if family == "aws":
            assert result.seen == {"AWS": "aws-value", "GOOGLE": GOOGLE_REF}
        else:
            assert result.seen == {"AWS": arn, "GOOGLE": "google-value"}


# -- names and references that are not UTF-8 ------------------------------------

# The program writes its environment as JSON of hex, so any bytes survive the trip.
DUMP = (
    "import json, os, sys; "
    "json.dump({k.hex(): v.hex() for k, v in os.environb.items()}, open(sys.argv[1], 'w'))"
)


def environment_seen(env: dict[bytes, bytes], tmp_path: Path, *options: str) -> dict[bytes, bytes]:
    """The program's whole environment, or {} when it did not start."""
    out = tmp_path / "environ.json"
    result = run([*options, "--", sys.executable, "-c", DUMP, str(out)], env=env)
    if not out.exists():
        return {}
    assert result.returncode == 0, result.stderr
    return {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(out.read_text()).items()}


def bytes_env(env: dict[str, str], **raw: bytes) -> dict[bytes, bytes]:
    return {
        **{k.encode(): v.encode() for k, v in env.items()},
        **{k.encode(): v for k, v in raw.items()},
    }


def test_a_reference_keeps_its_variables_name_byte_for_byte() -> None:
    found, malformed = references.scan({b"DB\xff\xfe": SM_REF.encode()})
    assert malformed == []
    assert [(reference.name, reference.variable) for reference in found] == [
        (b"DB\xff\xfe", "DB\\xff\\xfe")
    ]


@pytest.mark.parametrize("expand", [False, True], ids=["plain", "expand-json"])
def test_the_secret_replaces_the_reference_in_a_name_that_is_not_utf8(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, expand: bool
) -> None:
    aws.secret("raw-name", '{"FROM_JSON": "json-value"}' if expand else "the-value")
    name = b"DB_\xff\xe9"
    env = bytes_env(aws_env(proxy.url))
    env[name] = aws.sm_ref("raw-name").encode()
    seen = environment_seen(env, tmp_path, *(["--expand-json"] if expand else []))
    assert seen, "the program did not start"
    references_left = {k: v for k, v in seen.items() if v.startswith((b"arn:", b"gcp:"))}
    assert references_left == {}
    if expand:
        assert name not in seen and seen[b"FROM_JSON"] == b"json-value"
    else:
        assert seen[name] == b"the-value"
    # Nothing under a name made up from the real one (decoded, then encoded another way).
    assert set(seen) - set(env) == ({b"FROM_JSON"} if expand else set())


@pytest.mark.parametrize(
    "value",
    [SM_REF.encode() + b"\xff", b"arn:aws:ssm:us-east-1:123456789012:parameter/\xe9\xff",
     b"gcp:secretmanager:\xc3", b"arn:aws-iso\xff:secretsmanager:x"],
)  # fmt: skip
def test_a_reference_that_is_not_utf8_is_an_error_naming_its_variable(
    proxy: AwsProxy, tmp_path: Path, value: bytes
) -> None:
    _, malformed = references.scan({b"BAD": value})
    assert [(error.variable, error.cause) for error in malformed] == [
        ("BAD", "reference is not valid UTF-8")
    ]
    env = bytes_env(aws_env(proxy.url), BAD=value)
    result = run(["--", sys.executable, "-c", DUMP, str(tmp_path / "environ.json")], env=env)
    assert result.returncode == 1
    assert not (tmp_path / "environ.json").exists()
    assert result.errors[0].startswith("BAD: ")
    assert result.errors[0].endswith(": reference is not valid UTF-8")


@pytest.fixture(scope="module")
def shared_gsm() -> Iterator[FakeSecretManager]:
    with FakeSecretManager() as fake:
        fake.add_secret("proj-1", "fuzz", "fuzzed-secret")
        yield fake


_PLAIN = st.binary(max_size=30).filter(
    lambda value: b"\0" not in value and not value.startswith(candidates.SCHEMES)
)
_NOT_UTF8 = st.builds(
    lambda prefix, tail: prefix.encode() + tail,
    st.sampled_from(["gcp:secretmanager:", "arn:aws:ssm:", "arn:aws-x:secretsmanager:"]),
    st.binary(min_size=1, max_size=10).filter(lambda tail: b"\0" not in tail),
).filter(lambda value: not value.isascii() and _undecodable(value))


def _undecodable(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return True
    return False


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=_NAMES, other=_NAMES, other_value=st.one_of(_PLAIN, _NOT_UTF8))
def test_names_and_values_of_any_bytes_end_to_end(
    shared_gsm: FakeSecretManager, tmp_path: Path, name: bytes, other: bytes, other_value: bytes
) -> None:
    """The secret reaches the program under its variable's own name, whatever bytes that name
    is; a value that is not a reference passes byte for byte; a prefixed value that is not
    UTF-8 stops the run with an error that names its variable."""
    base = bytes_env(gsm_env(shared_gsm))
    assume(name != other and name not in base and other not in base)
    env = {**base, name: b"gcp:secretmanager:projects/proj-1/secrets/fuzz", other: other_value}
    out = tmp_path / f"environ-{os.urandom(4).hex()}.json"
    result = run(["--", sys.executable, "-c", DUMP, str(out)], env=env)
    assert "Traceback" not in result.stderr
    if other_value.startswith(candidates.SCHEMES):  # and not UTF-8
        assert result.returncode == 1 and not out.exists()
        # The log keeps each error on one line: a name's CR and LF are shown escaped.
        shown = references.display_name(other).replace("\r", "\\r").replace("\n", "\\n")
        assert result.errors[0].startswith(f"{shown}: ")
        event("refused: a prefixed value that is not UTF-8")
        return
    assert result.returncode == 0, result.stderr
    seen = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(out.read_text()).items()}
    assert seen[name] == b"fuzzed-secret"
    assert seen[other] == other_value
    assert set(seen) == set(env)
    event("resolved" + (", a name that is not UTF-8" if _undecodable(name) else ""))

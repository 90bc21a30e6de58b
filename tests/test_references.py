"""Finding references in the environment (secrets_init/references.py)."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from secrets_init import candidates, providers, references
from secrets_init.references import ResolutionError
from testing.aws_proxy import AwsProxy
from testing.fake_secretmanager import FakeSecretManager
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
        st.sampled_from(["aws", "aws-cn", "aws-us-gov"]),
        _REGION,
        _NAME,
        st.sampled_from(["", ":key", ":key::", "::AWSPREVIOUS:"]),
        _DESTINATION,
    ),
    st.builds(
        "arn:aws:ssm:{}:123456789012:parameter/{}{}{}".format,
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
    [*sorted({prefix for entry in providers.REGISTRY for prefix in entry.prefixes}), "arn:", ""]
)
_VALUES = st.one_of(
    _VALID.map(str.encode),
    st.builds(lambda prefix, tail: (prefix + tail).encode(), _PREFIXES, _TAILS),
    st.builds(lambda prefix, tail: prefix.encode() + tail, _PREFIXES, st.binary(max_size=20)),
    st.binary(max_size=40),
)
_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).map(str.encode)


def test_scan_finds_or_refuses_every_value_with_a_prefix_and_nothing_else() -> None:
    """Each value that starts with a provider's prefix (and is UTF-8) is a reference or an
    error, never silently skipped; every other value is left alone."""
    checked: list[int] = []

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(_NAMES, _VALUES, max_size=6))
    def scan_partitions(env: dict[bytes, bytes]) -> None:
        found, malformed = references.scan(env)
        assert all(isinstance(error, ResolutionError) for error in malformed)
        prefixed = set()
        for name, value in env.items():
            try:
                text = value.decode()
            except UnicodeDecodeError:
                continue
            if providers.entry_for(text) is not None:
                prefixed.add(name.decode())
        found_names = [reference.variable for reference in found]
        refused_names = [error.variable for error in malformed]
        assert sorted(found_names + refused_names) == sorted(prefixed)
        for reference in found:
            value = env[reference.variable.encode()]
            assert value.startswith(reference.text.encode())
            assert providers.entry_for(reference.text) is not None
            checked.append(1)
        event(f"{len(found)} found, {len(malformed)} malformed")

    scan_partitions()
    assert len(checked) >= 50, f"only {len(checked)} references reached the assertions"


def test_destination_suffix_is_parsed_and_checked() -> None:
    entry = references.providers.REGISTRY[0]
    with pytest.raises(ResolutionError) as relative:
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?destination=rel/path", entry)
    assert relative.value.variable == "V"
    assert "absolute path" in str(relative.value)
    with pytest.raises(ResolutionError):
        references.parse_one("V", "arn:aws:secretsmanager:r:1:secret:x?other=1", entry)


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

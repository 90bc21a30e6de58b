"""Parameter Store references resolved by a real secrets-init process against moto."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secrets_init.providers.aws_ssm_fetch import spread
from secrets_init.providers.aws_ssm_grammar import ParameterStoreTarget
from testing.aws_proxy import AwsProxy, Fault
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import run


def test_string_securestring_and_stringlist(aws: Aws, proxy: AwsProxy) -> None:
    aws.parameter("plain", "plain value")
    aws.parameter("secure", "s3cure:value", kind="SecureString")
    aws.parameter("list", "a,b , c", kind="StringList")
    env = aws_env(
        proxy.url,
        PLAIN=aws.ssm_ref("plain"),
        SECURE=aws.ssm_ref("secure"),
        LIST=aws.ssm_ref("list"),
    )
    result = run(env=env, show=["PLAIN", "SECURE", "LIST"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"PLAIN": "plain value", "SECURE": "s3cure:value", "LIST": "a,b , c"}
    assert proxy.counts == {"GetParameters": 1}
    assert proxy.requests[0].body["WithDecryption"] is True


def test_versions_and_labels_of_one_parameter_are_different_values(
    aws: Aws, proxy: AwsProxy
) -> None:
    for number in (1, 2, 3):
        assert aws.parameter("app/db-url", f"url-v{number}") == number
    aws.label("app/db-url", 2, "stable")
    env = aws_env(
        proxy.url,
        LATEST=aws.ssm_ref("app/db-url"),
        V1=aws.ssm_ref("app/db-url", selector="1"),
        V2=aws.ssm_ref("app/db-url", selector="2"),
        STABLE=aws.ssm_ref("app/db-url", selector="stable"),
        V1_AGAIN=aws.ssm_ref("app/db-url", selector="1"),
    )
    result = run(env=env, show=["LATEST", "V1", "V2", "STABLE", "V1_AGAIN"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "LATEST": "url-v3",
        "V1": "url-v1",
        "V2": "url-v2",
        "STABLE": "url-v2",
        "V1_AGAIN": "url-v1",
    }
    # GetParameters answers with bare names, so one call never asks for one
    # parameter twice: four distinct selectors of one parameter, four calls.
    assert proxy.counts == {"GetParameters": 4}
    asked = [name for r in proxy.requests for name in r.body["Names"]]
    assert len(asked) == len(set(asked)) == 4


def test_batches_of_ten_with_repeated_parameters_mixed_in(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url)
    expected = {}
    for number in range(23):
        aws.parameter(f"many/p{number}", f"value-{number}")
        env[f"P{number:02d}"] = aws.ssm_ref(f"many/p{number}")
        expected[f"P{number:02d}"] = f"value-{number}"
    aws.parameter("many/p0", "value-0-v2")
    expected["P00"] = "value-0-v2"
    env["P00_V1"] = aws.ssm_ref("many/p0", selector="1")
    expected["P00_V1"] = "value-0"
    result = run(env=env, show=list(expected))
    assert result.returncode == 0, result.stderr
    assert result.seen == expected
    # 24 distinct references: the fewest calls of at most 10 names is 3.
    assert proxy.counts == {"GetParameters": 3}
    assert all(len(r.body["Names"]) <= 10 for r in proxy.requests)


def test_parameters_in_several_regions(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url)
    for region in ("us-east-1", "eu-central-1", "us-gov-west-1"):
        aws.parameter("where", f"in-{region}", region=region)
    env["EAST"] = aws.ssm_ref("where", region="us-east-1")
    env["EU"] = aws.ssm_ref("where", region="eu-central-1")
    env["GOV"] = aws.ssm_ref("where", region="us-gov-west-1").replace("arn:aws:", "arn:aws-us-gov:")
    result = run(env=env, show=["EAST", "EU", "GOV"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "EAST": "in-us-east-1",
        "EU": "in-eu-central-1",
        "GOV": "in-us-gov-west-1",
    }
    assert sorted(r.region for r in proxy.requests) == [
        "eu-central-1",
        "us-east-1",
        "us-gov-west-1",
    ]


def test_missing_parameter_version_and_label(aws: Aws, proxy: AwsProxy) -> None:
    aws.parameter("exists", "exists-value")
    missing = aws.ssm_ref("missing")
    no_version = aws.ssm_ref("exists", selector="7")
    no_label = aws.ssm_ref("exists", selector="nolabel")
    env = aws_env(
        proxy.url,
        OK=aws.ssm_ref("exists"),
        MISSING=missing,
        NO_VERSION=no_version,
        NO_LABEL=no_label,
    )
    result = run(env=env, show=["OK"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors == [
        f"MISSING: {missing}: parameter not found in us-east-1",
        f"NO_LABEL: {no_label}: parameter (label nolabel) not found in us-east-1",
        f"NO_VERSION: {no_version}: parameter (version 7) not found in us-east-1",
        "3 of 4 secret references failed; not starting the program",
    ]
    assert "exists-value" not in result.stderr


def test_a_refused_batch_is_asked_one_by_one(aws: Aws, proxy: AwsProxy) -> None:
    for name in ("one", "two", "denied", "bad-key"):
        aws.parameter(name, f"value-{name}", kind="SecureString")
    proxy.faults = [
        Fault.error("GetParameters", "AccessDeniedException", contains="/denied"),
        Fault.error("GetParameter", "AccessDeniedException", contains="/denied"),
        Fault.error("GetParameter", "InvalidKeyId", contains="/bad-key"),
    ]
    env = aws_env(
        proxy.url,
        ONE=aws.ssm_ref("one"),
        TWO=aws.ssm_ref("two"),
        DENIED=aws.ssm_ref("denied"),
        BAD_KEY=aws.ssm_ref("bad-key"),
    )
    result = run(env=env, show=["ONE"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors[:2] == [
        f"BAD_KEY: {aws.ssm_ref('bad-key')}: KMS could not decrypt the parameter (InvalidKeyId)",
        f"DENIED: {aws.ssm_ref('denied')}: access denied (needs ssm:GetParameter)",
    ]
    assert proxy.counts == {"GetParameters": 1, "GetParameter": 4}
    assert "value-" not in result.stderr


def test_only_get_parameter_allowed_still_resolves(aws: Aws, proxy: AwsProxy) -> None:
    """IAM policies written for the original tool grant ssm:GetParameter only."""
    aws.parameter("legacy/a", "value-a")
    aws.parameter("legacy/b", "value-b")
    proxy.faults = [Fault.error("GetParameters", "AccessDeniedException")]
    env = aws_env(proxy.url, A=aws.ssm_ref("legacy/a"), B=aws.ssm_ref("legacy/b"))
    result = run(env=env, show=["A", "B"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {"A": "value-a", "B": "value-b"}
    assert proxy.counts == {"GetParameters": 1, "GetParameter": 2}


@given(st.lists(st.tuples(st.integers(0, 12), st.none() | st.integers(1, 4).map(str)), max_size=60))
def test_spread_makes_the_fewest_chunks_never_asking_twice(
    picks: list[tuple[int, str | None]],
) -> None:
    targets = sorted(
        {ParameterStoreTarget("aws", "us-east-1", ACCOUNT, f"/p{n}", s) for n, s in picks},
        key=lambda t: (t.name, t.selector or ""),
    )
    chunks = spread(targets, 10)
    assert (
        sorted((t for chunk in chunks for t in chunk), key=lambda t: (t.name, t.selector or ""))
        == targets
    )
    most = max((sum(t.key == u.key for u in targets) for t in targets), default=0)
    assert len(chunks) == max(-(-len(targets) // 10), most)
    for chunk in chunks:
        assert 0 < len(chunk) <= 10
        assert len({t.key for t in chunk}) == len(chunk)

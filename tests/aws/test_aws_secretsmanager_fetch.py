"""Secrets Manager references resolved by a real secrets-init process against moto."""

from __future__ import annotations

import json

from testing.aws_proxy import AwsProxy, Fault
from testing.moto import ACCOUNT, Aws, aws_env
from testing.process import run


def test_by_name_and_by_full_arn_with_suffix(aws: Aws, proxy: AwsProxy) -> None:
    arn = aws.secret("db", "s3cret-by-arn")
    assert arn.rsplit("-", 1)[1].isalnum() and len(arn.rsplit("-", 1)[1]) == 6
    result = run(
        env=aws_env(proxy.url, BY_NAME=aws.sm_ref("db"), BY_ARN=arn), show=["BY_NAME", "BY_ARN"]
    )
    assert result.returncode == 0, result.stderr
    assert result.seen == {"BY_NAME": "s3cret-by-arn", "BY_ARN": "s3cret-by-arn"}


def test_json_keys_are_converted_as_documented(aws: Aws, proxy: AwsProxy) -> None:
    document = {
        "user": "admin",
        "port": 5432,
        "ratio": 1.5,
        "none": None,
        "on": True,
        "list": [1, "two", None],
        "nested": {"a": {"b": [1, 2]}, "é": "ü"},
        "empty": "",
    }
    aws.secret("doc", json.dumps(document, indent=2))
    keys = {f"K_{key.upper()}": key for key in document}
    env = aws_env(
        proxy.url, **{var: aws.sm_ref("doc", tail=f":{key}") for var, key in keys.items()}
    )
    result = run(env=env, show=list(keys))
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "K_USER": "admin",
        "K_PORT": "5432",
        "K_RATIO": "1.5",
        "K_NONE": "",
        "K_ON": "true",
        "K_LIST": '[1,"two",null]',
        "K_NESTED": '{"a":{"b":[1,2]},"é":"ü"}',
        "K_EMPTY": "",
    }


def test_missing_json_key_names_the_key_and_nothing_else(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("creds", json.dumps({"username": "alice-value", "password": "hunter2-value"}))
    ref = aws.sm_ref("creds", tail=":passwd")
    result = run(env=aws_env(proxy.url, DB_PASSWORD=ref), show=["DB_PASSWORD"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors[0] == f"DB_PASSWORD: {ref}: JSON key 'passwd' not found in the secret"
    for leaked in ("username", "password", "alice-value", "hunter2-value"):
        assert leaked not in result.stderr + result.stdout


def test_empty_parts_and_version_stage_and_version_id(aws: Aws, proxy: AwsProxy) -> None:
    arn = aws.secret("rotated", json.dumps({"pw": "first"}))
    client = aws.client("secretsmanager")
    first_id = client.describe_secret(SecretId=arn)["VersionIdsToStages"].popitem()[0]
    aws.new_version("rotated", json.dumps({"pw": "second"}))
    env = aws_env(
        proxy.url,
        CURRENT=aws.sm_ref("rotated", tail=":pw::"),
        PREVIOUS=aws.sm_ref("rotated", tail=":pw:AWSPREVIOUS:"),
        WHOLE_PREVIOUS=aws.sm_ref("rotated", tail="::AWSPREVIOUS"),
        BY_ID=f"{arn}:pw::{first_id}",
    )
    result = run(env=env, show=["CURRENT", "PREVIOUS", "WHOLE_PREVIOUS", "BY_ID"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "CURRENT": "second",
        "PREVIOUS": "first",
        "WHOLE_PREVIOUS": '{"pw": "first"}',
        "BY_ID": "first",
    }
    # Versioned references cannot be batched; the current one is.
    assert proxy.counts == {"BatchGetSecretValue": 1, "GetSecretValue": 2}


def test_binary_secrets_utf8_passes_and_other_bytes_are_refused(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("bin-text", "naïve text".encode())
    aws.secret("bin-raw", b"\xff\xfe\x00raw")
    ok = run(env=aws_env(proxy.url, TEXT=aws.sm_ref("bin-text")), show=["TEXT"])
    assert ok.returncode == 0, ok.stderr
    assert ok.seen == {"TEXT": "naïve text"}

    ref = aws.sm_ref("bin-raw")
    bad = run(env=aws_env(proxy.url, TEXT=aws.sm_ref("bin-text"), RAW=ref), show=["TEXT", "RAW"])
    assert bad.returncode == 1 and bad.seen is None
    assert bad.errors[0].startswith(f"RAW: {ref}: secret contains a NUL byte")


def test_duplicates_are_fetched_once(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("shared", json.dumps({"a": "1", "b": "2"}))
    env = aws_env(
        proxy.url,
        ONE=aws.sm_ref("shared"),
        TWO=aws.sm_ref("shared"),
        KEY_A=aws.sm_ref("shared", tail=":a"),
        KEY_B=aws.sm_ref("shared", tail=":b::"),
    )
    result = run(env=env, show=["ONE", "TWO", "KEY_A", "KEY_B"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "ONE": '{"a": "1", "b": "2"}',
        "TWO": '{"a": "1", "b": "2"}',
        "KEY_A": "1",
        "KEY_B": "2",
    }
    assert proxy.counts == {"BatchGetSecretValue": 1}
    assert proxy.requests[0].body["SecretIdList"] == [aws.sm_ref("shared")]


def test_batches_of_twenty(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url)
    for number in range(25):
        aws.secret(f"many/{number}", f"value-{number}")
        env[f"S{number:02d}"] = aws.sm_ref(f"many/{number}")
    names = [f"S{number:02d}" for number in range(25)]
    result = run(env=env, show=names)
    assert result.returncode == 0, result.stderr
    assert result.seen == {f"S{n:02d}": f"value-{n}" for n in range(25)}
    assert proxy.counts == {"BatchGetSecretValue": 2}
    assert sorted(len(r.body["SecretIdList"]) for r in proxy.requests) == [5, 20]


def test_several_regions_and_partitions_in_one_run(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url)
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2"):
        aws.secret("regional", f"from-{region}", region=region)
        env[f"IN_{region.replace('-', '_').upper()}"] = aws.sm_ref("regional", region=region)
    aws.secret("china", "from-cn-north-1", region="cn-north-1")
    env["IN_CN"] = f"arn:aws-cn:secretsmanager:cn-north-1:{ACCOUNT}:secret:{aws.prefix}/china"
    assert "AWS_REGION" not in env and "AWS_DEFAULT_REGION" not in env
    result = run(env=env, show=["IN_US_EAST_1", "IN_EU_WEST_1", "IN_AP_SOUTHEAST_2", "IN_CN"])
    assert result.returncode == 0, result.stderr
    assert result.seen == {
        "IN_US_EAST_1": "from-us-east-1",
        "IN_EU_WEST_1": "from-eu-west-1",
        "IN_AP_SOUTHEAST_2": "from-ap-southeast-2",
        "IN_CN": "from-cn-north-1",
    }
    assert sorted(r.region for r in proxy.requests) == [
        "ap-southeast-2",
        "cn-north-1",
        "eu-west-1",
        "us-east-1",
    ]


def test_not_found_and_wrong_region_are_reported_together(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("here", "value-here")
    missing = aws.sm_ref("nowhere")
    elsewhere = aws.sm_ref("here", region="us-west-2")
    env = aws_env(proxy.url, GOOD=aws.sm_ref("here"), MISSING=missing, ELSEWHERE=elsewhere)
    result = run(env=env, show=["GOOD"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors == [
        f"ELSEWHERE: {elsewhere}: secret not found in us-west-2",
        f"MISSING: {missing}: secret not found in us-east-1",
        "2 of 3 secret references failed; not starting the program",
    ]
    assert "value-here" not in result.stderr


def test_denied_and_kms_failures_inside_a_batch_answer(aws: Aws, proxy: AwsProxy) -> None:
    for name in ("open", "locked", "broken-key"):
        aws.secret(name, f"value-{name}")
    proxy.faults = [
        Fault.in_batch("AccessDeniedException", "/locked"),
        Fault.in_batch("DecryptionFailure", "/broken-key"),
    ]
    env = aws_env(
        proxy.url,
        OPEN=aws.sm_ref("open"),
        LOCKED=aws.sm_ref("locked"),
        BROKEN=aws.sm_ref("broken-key"),
    )
    result = run(env=env, show=["OPEN"])
    assert result.returncode == 1 and result.seen is None
    assert result.errors[:2] == [
        f"BROKEN: {aws.sm_ref('broken-key')}: KMS could not decrypt the secret (DecryptionFailure)",
        f"LOCKED: {aws.sm_ref('locked')}: access denied (needs secretsmanager:GetSecretValue)",
    ]
    assert proxy.counts == {"BatchGetSecretValue": 1}


def test_kms_failure_on_a_versioned_read(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("staged", "value-staged")
    proxy.faults = [Fault.error("GetSecretValue", "DecryptionFailure", contains="/staged")]
    ref = aws.sm_ref("staged", tail="::AWSCURRENT:")
    result = run(env=aws_env(proxy.url, STAGED=ref), show=["STAGED"])
    assert result.returncode == 1
    assert (
        result.errors[0] == f"STAGED: {ref}: KMS could not decrypt the secret (DecryptionFailure)"
    )
    assert "injected" not in result.stderr  # the answer's message is never repeated


def test_denied_batch_call_falls_back_to_single_reads(aws: Aws, proxy: AwsProxy) -> None:
    env = aws_env(proxy.url)
    for number in range(25):
        aws.secret(f"fallback/{number}", f"value-{number}")
        env[f"S{number:02d}"] = aws.sm_ref(f"fallback/{number}")
    proxy.faults = [Fault.error("BatchGetSecretValue", "AccessDeniedException")]
    result = run(["--log-level", "debug"], env=env, show=[f"S{n:02d}" for n in range(25)])
    assert result.returncode == 0, result.stderr
    assert result.seen == {f"S{n:02d}": f"value-{n}" for n in range(25)}
    counts = proxy.counts
    assert counts["GetSecretValue"] == 25
    assert 1 <= counts["BatchGetSecretValue"] <= 2  # both batches may be in flight at once
    assert result.stderr.count("BatchGetSecretValue denied") == 1
    assert "secretsmanager:BatchGetSecretValue" in result.stderr


def test_a_secret_denied_alone_after_the_fallback(aws: Aws, proxy: AwsProxy) -> None:
    aws.secret("fine", "value-fine")
    aws.secret("forbidden", "value-forbidden")
    proxy.faults = [
        Fault.error("BatchGetSecretValue", "AccessDeniedException"),
        Fault.error("GetSecretValue", "AccessDeniedException", contains="/forbidden"),
    ]
    env = aws_env(proxy.url, FINE=aws.sm_ref("fine"), FORBIDDEN=aws.sm_ref("forbidden"))
    result = run(env=env, show=["FINE"])
    assert result.returncode == 1
    assert result.errors[0] == (
        f"FORBIDDEN: {aws.sm_ref('forbidden')}: access denied (needs secretsmanager:GetSecretValue)"
    )

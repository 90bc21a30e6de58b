"""Fetching Google secrets (secrets_init/providers/google_fetch.py) end to end: secrets-init
as a process, real HTTP, and a Secret Manager REST API on loopback
(SECRETMANAGER_EMULATOR_HOST)."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from secrets_init.providers import google_fetch, google_grammar
from secrets_init.providers.crc32c import crc32c as provider_crc32c
from testing.fake_secretmanager import (
    DESTROYED,
    DISABLED,
    FakeMetadataServer,
    FakeSecretManager,
    crc32c,
    gsm_env,
)
from testing.loopback import LoopbackServer, QuietHandler
from testing.process import child_env, run
from tests.google.conftest import (
    PROJECT,
    InterceptingProxy,
    TokenServer,
    closed_port,
    offline_env,
)

FULL = f"gcp:secretmanager:projects/{PROJECT}/secrets"


def test_full_names_latest_and_numbered_versions(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "db-password", "first")
    gsm.add_secret(PROJECT, "db-password", "second")
    variables = {
        "DEFAULT": f"{FULL}/db-password",
        "LATEST": f"{FULL}/db-password/versions/latest",
        "FIRST": f"{FULL}/db-password/versions/1",
        "PLAIN": "not a reference",
    }
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {
        "DEFAULT": "second",
        "LATEST": "second",
        "FIRST": "first",
        "PLAIN": "not a reference",
    }


def test_project_number_and_unicode_payload(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret("123456789012", "token_2", "pässwörd ✓ \t with spaces")
    variables = {"T": "gcp:secretmanager:projects/123456789012/secrets/token_2"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.seen == {"T": "pässwörd ✓ \t with spaces"}


@pytest.mark.parametrize(
    ("options", "extra_env"),
    [
        (["--google-project", PROJECT], {}),
        ([f"--google-project={PROJECT}"], {"GOOGLE_CLOUD_PROJECT": "other-project"}),
        ([], {"SECRETS_INIT_GOOGLE_PROJECT": PROJECT, "GOOGLE_CLOUD_PROJECT": "other-project"}),
        ([], {"GOOGLE_CLOUD_PROJECT": PROJECT}),
    ],
    ids=[
        "flag",
        "flag-beats-GOOGLE_CLOUD_PROJECT",
        "SECRETS_INIT_GOOGLE_PROJECT",
        "GOOGLE_CLOUD_PROJECT",
    ],
)
def test_short_names_take_the_configured_project(
    tmp_path: Path, gsm: FakeSecretManager, options: list[str], extra_env: dict[str, str]
) -> None:
    gsm.add_secret(PROJECT, "api-key", "v1")
    gsm.add_secret(PROJECT, "api-key", "v2")
    gsm.add_secret("other-project", "api-key", "wrong project")
    env = child_env(**extra_env)
    variables = {"KEY": "gcp:secretmanager:api-key", "OLD": "gcp:secretmanager:api-key/versions/1"}
    outcome = run(
        options,
        env={**env, "SECRETMANAGER_EMULATOR_HOST": gsm.address, **variables},
        show=variables,
    )
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"KEY": "v2", "OLD": "v1"}


def test_short_name_project_from_the_metadata_server(
    tmp_path: Path, gsm: FakeSecretManager, metadata_server: FakeMetadataServer
) -> None:
    gsm.add_secret(PROJECT, "api-key", "from metadata project")
    env = child_env(GCE_METADATA_HOST=metadata_server.address)
    variables = {"KEY": "gcp:secretmanager:api-key"}
    outcome = run(
        env={**env, "SECRETMANAGER_EMULATOR_HOST": gsm.address, **variables}, show=variables
    )
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"KEY": "from metadata project"}
    assert metadata_server.hits == 1


def test_short_name_without_any_project_says_what_to_set(
    tmp_path: Path, gsm: FakeSecretManager
) -> None:
    gsm.add_secret(PROJECT, "api-key", "never seen")
    env = child_env(GCE_METADATA_HOST=f"127.0.0.1:{closed_port()}")
    variables = {"KEY": "gcp:secretmanager:api-key", "FULL": f"{FULL}/api-key"}
    outcome = run(
        env={**env, "SECRETMANAGER_EMULATOR_HOST": gsm.address, **variables}, show=variables
    )
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0] == f"KEY: gcp:secretmanager:api-key: {google_fetch.NO_PROJECT}"
    assert (
        "--google-project, SECRETS_INIT_GOOGLE_PROJECT or GOOGLE_CLOUD_PROJECT" in outcome.errors[0]
    )
    assert len(outcome.errors) == 2  # the one line above and the summary; FULL resolved
    assert "never seen" not in outcome.stderr


def test_invalid_configured_project_is_refused(tmp_path: Path, gsm: FakeSecretManager) -> None:
    variables = {"KEY": "gcp:secretmanager:api-key"}
    outcome = run(
        ["--google-project", "a/secrets/b"], env=gsm_env(gsm, **variables), show=variables
    )
    assert outcome.returncode == 1
    assert outcome.errors[0] == (
        "KEY: gcp:secretmanager:api-key: "
        "--google-project 'a/secrets/b' is not a valid Google project id"
    )
    assert gsm.calls == 0


def test_regional_secret_uses_its_location(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "db", "global copy")
    gsm.add_secret(PROJECT, "db", "regional copy", location="europe-west4")
    gsm.add_secret(PROJECT, "db", "regional v2", location="europe-west4")
    where = f"gcp:secretmanager:projects/{PROJECT}/locations/europe-west4/secrets/db"
    variables = {"GLOBAL": f"{FULL}/db", "REGIONAL": where, "REGIONAL_V1": f"{where}/versions/1"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {
        "GLOBAL": "global copy",
        "REGIONAL": "regional v2",
        "REGIONAL_V1": "regional copy",
    }
    assert f"projects/{PROJECT}/locations/europe-west4/secrets/db/versions/1" in gsm.requests


def test_json_keys(tmp_path: Path, gsm: FakeSecretManager) -> None:
    document = {"user": "admin", "port": 5432, "tls": {"on": True}, "empty": None}
    gsm.add_secret(PROJECT, "db", json.dumps(document))
    variables = {
        "USER": f"{FULL}/db#user",
        "PORT": "gcp:secretmanager:db/versions/1#port",
        "TLS": f"{FULL}/db/versions/latest#tls",
        "EMPTY": f"{FULL}/db#empty",
    }
    outcome = run(["--google-project", PROJECT], env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"USER": "admin", "PORT": "5432", "TLS": '{"on":true}', "EMPTY": ""}
    assert gsm.calls == 2  # latest and version 1: the keys share one fetch each


def test_missing_json_key_and_non_json_secret(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "db", '{"user": "admin", "password": "s3cr3t-json"}')
    gsm.add_secret(PROJECT, "plain", "s3cr3t-plain")
    variables = {"A": f"{FULL}/db#nope", "B": f"{FULL}/plain#user"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[:2] == [
        f"A: {FULL}/db#nope: JSON key 'nope' not found in the secret",
        f"B: {FULL}/plain#user: secret is not a JSON object, so it has no key 'user'",
    ]
    assert "s3cr3t" not in outcome.stderr + outcome.stdout


def _failing_fake(gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "ok", "fine")
    gsm.add_secret(PROJECT, "off", "s3cr3t-disabled", state=DISABLED)
    gsm.add_secret(PROJECT, "gone", "s3cr3t-destroyed", state=DESTROYED)
    gsm.add_secret(PROJECT, "gone", "s3cr3t-after")  # version 2 is fine; version 1 is not
    gsm.add_secret(PROJECT, "locked", "s3cr3t-locked")
    gsm.fail_always("PERMISSION_DENIED", secret="locked")
    gsm.add_secret(PROJECT, "bad-crc", "s3cr3t-corrupt", crc=12345)


FAILURES = {
    "MISSING": (f"{FULL}/missing", "secret version not found"),
    "NO_VERSION": (f"{FULL}/ok/versions/7", "secret version not found"),
    "LOCKED": (
        f"{FULL}/locked",
        "permission denied (needs the Secret Manager Secret Accessor role on this secret)",
    ),
    "OFF": (f"{FULL}/off", "secret version is disabled"),
    "GONE": (f"{FULL}/gone/versions/1", "secret version is destroyed"),
    "CORRUPT": (
        f"{FULL}/bad-crc",
        "payload checksum mismatch (data_crc32c); the secret is not used",
    ),
}


@pytest.mark.parametrize("variable", sorted(FAILURES))
def test_each_failure_is_one_clear_line(
    tmp_path: Path, gsm: FakeSecretManager, variable: str
) -> None:
    _failing_fake(gsm)
    reference, cause = FAILURES[variable]
    variables = {variable: reference, "FINE": f"{FULL}/ok"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors == [
        f"{variable}: {reference}: {cause}",
        "1 of 2 secret references failed; not starting the program",
    ]
    assert "s3cr3t" not in outcome.stderr + outcome.stdout


def test_all_failures_reported_one_line_per_variable(
    tmp_path: Path, gsm: FakeSecretManager
) -> None:
    _failing_fake(gsm)
    variables = {name: reference for name, (reference, _) in FAILURES.items()}
    variables["FINE"] = f"{FULL}/ok"
    variables["AFTER"] = f"{FULL}/gone/versions/2"
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 1
    assert outcome.seen is None
    expected = sorted(f"{name}: {ref}: {cause}" for name, (ref, cause) in FAILURES.items())
    assert sorted(outcome.errors[:-1]) == expected
    assert outcome.errors[-1] == "6 of 8 secret references failed; not starting the program"
    assert "s3cr3t" not in outcome.stderr + outcome.stdout


def test_payload_without_checksum_is_accepted(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "old", "no crc field", crc=False)
    gsm.add_secret(PROJECT, "zero", "", crc=True)  # crc32c of nothing is 0: present, and right
    variables = {"OLD": f"{FULL}/old", "ZERO": f"{FULL}/zero"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"OLD": "no crc field", "ZERO": ""}


@pytest.mark.parametrize(
    ("payload", "cause"),
    [
        (b"\xffs3cr3t", "secret is not valid UTF-8 text; use ?destination= to get it as a file"),
        (b"s3cr3t\x00tail", "secret contains a NUL byte; use ?destination= to get it as a file"),
    ],
    ids=["not-utf8", "nul"],
)
def test_binary_payload_is_refused_for_environment(
    tmp_path: Path, gsm: FakeSecretManager, payload: bytes, cause: str
) -> None:
    gsm.add_secret(PROJECT, "blob", payload)
    variables = {"BLOB": f"{FULL}/blob"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0] == f"BLOB: {FULL}/blob: {cause}"
    assert "s3cr3t" not in outcome.stderr + outcome.stdout


def test_binary_payload_can_go_to_a_file(tmp_path: Path, gsm: FakeSecretManager) -> None:
    payload = b"\xff\x00binary\x80"
    gsm.add_secret(PROJECT, "blob", payload)
    target = tmp_path / "blob.bin"
    variables = {"BLOB_FILE": f"{FULL}/blob?destination={target}"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"BLOB_FILE": str(target)}
    assert target.read_bytes() == payload


@pytest.mark.parametrize(
    "code",
    [
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
    ],
)
def test_transient_errors_are_retried(tmp_path: Path, gsm: FakeSecretManager, code: str) -> None:
    gsm.add_secret(PROJECT, "flaky", "made it")
    gsm.fail_next(code, 2)
    variables = {"FLAKY": f"{FULL}/flaky"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"FLAKY": "made it"}
    assert gsm.calls == 3


def test_persistent_unavailable_ends_within_the_timeout(
    tmp_path: Path, gsm: FakeSecretManager
) -> None:
    gsm.add_secret(PROJECT, "down", "s3cr3t")
    gsm.fail_always("UNAVAILABLE")
    variables = {"DOWN": f"{FULL}/down"}
    outcome = run(["--timeout", "3"], env=gsm_env(gsm, **variables), show=variables, timeout=20)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert len(outcome.errors) == 2
    attempts = gsm.calls
    assert attempts > 1  # retried, then gave up before the deadline with its own words
    assert outcome.errors[0] == (
        f"DOWN: {FULL}/down: service unavailable after {attempts} attempts"
    )


def test_nothing_listening_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    env = child_env(SECRETMANAGER_EMULATOR_HOST=f"127.0.0.1:{closed_port()}")
    variables = {"X": f"{FULL}/x"}
    outcome = run(["--timeout", "2"], env={**env, **variables}, show=variables, timeout=20)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0].startswith(f"X: {FULL}/x: service unavailable after ")


def test_slow_server_ends_at_the_timeout(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "slow", "s3cr3t")
    gsm.delay = 10
    variables = {"SLOW": f"{FULL}/slow"}
    outcome = run(["--timeout", "1"], env=gsm_env(gsm, **variables), show=variables, timeout=20)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0] == f"SLOW: {FULL}/slow: timed out after 1s"


def test_identical_references_are_fetched_once(tmp_path: Path, gsm: FakeSecretManager) -> None:
    gsm.add_secret(PROJECT, "shared", '{"a": "1", "b": "2"}')
    variables = {
        "ONE": f"{FULL}/shared",
        "TWO": f"{FULL}/shared",
        "THREE": f"{FULL}/shared",
        "SHORT": "gcp:secretmanager:shared/versions/latest#a",
        "KEY": f"{FULL}/shared#b",
    }
    outcome = run(["--google-project", PROJECT], env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen is not None
    assert (
        outcome.seen["ONE"]
        == outcome.seen["TWO"]
        == outcome.seen["THREE"]
        == '{"a": "1", "b": "2"}'
    )
    assert (outcome.seen["SHORT"], outcome.seen["KEY"]) == ("1", "2")
    assert gsm.requests == [f"projects/{PROJECT}/secrets/shared/versions/latest"]


def test_distinct_references_are_fetched_concurrently(
    tmp_path: Path, gsm: FakeSecretManager
) -> None:
    variables = {}
    for number in range(20):
        gsm.add_secret(PROJECT, f"s{number}", f"value {number}")
        variables[f"S{number}"] = f"{FULL}/s{number}"
    gsm.delay = 0.3
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {f"S{number}": f"value {number}" for number in range(20)}
    assert gsm.calls == 20
    assert gsm.max_in_flight > 1


def test_check_reports_google_references_without_values(
    tmp_path: Path, gsm: FakeSecretManager
) -> None:
    gsm.add_secret(PROJECT, "good", "s3cr3t-good")
    gsm.add_secret(PROJECT, "off", "s3cr3t-off", state=DISABLED)
    variables = {"GOOD": f"{FULL}/good", "OFF": f"{FULL}/off", "SHORT": "gcp:secretmanager:good"}
    outcome = run(
        ["--check", "--google-project", PROJECT], env=gsm_env(gsm, **variables), show=variables
    )
    assert outcome.returncode == 1
    assert outcome.stdout.splitlines() == [
        f"GOOD google {FULL}/good ok",
        f"OFF google {FULL}/off error: secret version is disabled",
        "SHORT google gcp:secretmanager:good ok",
    ]
    assert "s3cr3t" not in outcome.stdout + outcome.stderr

    gsm.add_secret(PROJECT, "off", "enabled now")
    variables = {"GOOD": f"{FULL}/good", "OFF": f"{FULL}/off"}
    outcome = run(["--check"], env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 0, outcome.stdout
    assert outcome.stdout.splitlines() == [
        f"GOOD google {FULL}/good ok",
        f"OFF google {FULL}/off ok",
    ]


@pytest.mark.parametrize(
    ("reference", "cause"),
    [
        ("gcp:secretmanager:", "empty secret name"),
        (f"{FULL}/", "empty secret id"),
        ("gcp:secretmanager:projects//secrets/x", "empty project"),
        (f"{FULL}/x/versions/0", "version '0' is not a positive number or 'latest'"),
        (f"{FULL}/x/versions/v1", "version 'v1' is not a positive number or 'latest'"),
        (f"{FULL}/x/extra", google_grammar.SHAPE),
        (f"{FULL}/x#", "empty JSON key after '#'"),
        (f"{FULL}/a.b", "secret id 'a.b' is not 1-255 letters, digits, '-' or '_'"),
    ],
)
def test_malformed_references_name_the_variable(
    tmp_path: Path, gsm: FakeSecretManager, reference: str, cause: str
) -> None:
    gsm.add_secret(PROJECT, "x", "s3cr3t")
    variables = {"BAD": reference, "GOOD": f"{FULL}/x"}
    outcome = run(env=gsm_env(gsm, **variables), show=variables)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0] == f"BAD: {reference}: malformed google reference: {cause}"
    assert gsm.calls == 0  # refused before the fork: nothing fetched at all


def test_no_credentials_is_a_clear_error(tmp_path: Path) -> None:
    variables = {"X": f"{FULL}/x", "Y": f"{FULL}/y"}
    outcome = run(env={**offline_env(tmp_path), **variables}, show=variables, timeout=30)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors == [
        f"X: {FULL}/x: {google_fetch.NO_CREDENTIALS}",
        f"Y: {FULL}/y: {google_fetch.NO_CREDENTIALS}",
        "2 of 2 secret references failed; not starting the program",
    ]
    assert outcome.stderr.count("\n") == 3  # nothing else: google-auth's warnings are silenced


def test_unusable_credentials_file_is_named(tmp_path: Path) -> None:
    env = offline_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json"))
    variables = {"X": f"{FULL}/x"}
    outcome = run(env={**env, **variables}, show=variables, timeout=30)
    assert outcome.returncode == 1
    assert outcome.errors[0] == (
        f"X: {FULL}/x: the Google credentials file named by GOOGLE_APPLICATION_CREDENTIALS "
        "is missing or not valid"
    )


@pytest.fixture
def intercepting_proxy(tmp_path: Path, gsm: FakeSecretManager) -> Iterator[InterceptingProxy]:
    proxy = InterceptingProxy(tmp_path / "proxy-ca", gsm.port)
    yield proxy
    proxy.stop()


@pytest.fixture
def refusing_proxy(tmp_path: Path) -> Iterator[InterceptingProxy]:
    proxy = InterceptingProxy(tmp_path / "proxy-ca", None)
    yield proxy
    proxy.stop()


ENDPOINTS = [
    (None, "secretmanager.googleapis.com:443"),
    ("europe-west4", "secretmanager.europe-west4.rep.googleapis.com:443"),
]


@pytest.mark.parametrize(("location", "endpoint"), ENDPOINTS)
def test_real_endpoint_with_credentials(
    tmp_path: Path,
    token_server: TokenServer,
    refusing_proxy: InterceptingProxy,
    location: str | None,
    endpoint: str,
) -> None:
    """Without the emulator: credentials are found and refreshed once, and the calls head
    for the right Google endpoint (seen at a local CONNECT proxy that refuses it)."""
    env = _through_proxy(tmp_path, token_server, refusing_proxy)
    where = f"locations/{location}/" if location else ""
    prefix = f"gcp:secretmanager:projects/{PROJECT}/{where}secrets"
    variables = {"A": f"{prefix}/a", "B": f"{prefix}/b"}
    outcome = run(["--timeout", "3"], env={**env, **variables}, show=variables, timeout=30)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0].startswith(f"A: {prefix}/a: service unavailable after ")
    assert token_server.hits == 1
    assert refusing_proxy.targets
    assert set(refusing_proxy.targets) == {endpoint}


def _through_proxy(
    tmp_path: Path, token_server: TokenServer, proxy: InterceptingProxy, **extra: str
) -> dict[str, str]:
    credentials = tmp_path / "service-account.json"
    credentials.write_text(json.dumps(service_account_key(token_server.url)))
    return offline_env(
        tmp_path,
        GOOGLE_APPLICATION_CREDENTIALS=str(credentials),
        HTTPS_PROXY=proxy.url.replace("://", "://user:p%40ss@"),
        **extra,
    )


@pytest.mark.parametrize(("location", "endpoint"), ENDPOINTS)
def test_real_endpoint_end_to_end_through_a_proxy(
    tmp_path: Path,
    gsm: FakeSecretManager,
    token_server: TokenServer,
    intercepting_proxy: InterceptingProxy,
    location: str | None,
    endpoint: str,
) -> None:
    """The production path, to the end: service-account credentials refreshed once,
    HTTPS to Google's endpoint name through an authenticated proxy, the certificate
    checked against REQUESTS_CA_BUNDLE, and the bearer token on every call."""
    gsm.add_secret(PROJECT, "a", "alpha", location=location)
    gsm.add_secret(PROJECT, "b", "beta", location=location)
    env = _through_proxy(
        tmp_path,
        token_server,
        intercepting_proxy,
        REQUESTS_CA_BUNDLE=str(intercepting_proxy.authority.path),
    )
    where = f"locations/{location}/" if location else ""
    prefix = f"gcp:secretmanager:projects/{PROJECT}/{where}secrets"
    variables = {"A": f"{prefix}/a", "B": f"{prefix}/b"}
    outcome = run(env={**env, **variables}, show=variables, timeout=30)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.seen == {"A": "alpha", "B": "beta"}
    assert token_server.hits == 1
    assert set(intercepting_proxy.targets) == {endpoint}
    basic = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert set(intercepting_proxy.authorizations) == {basic}
    assert sorted(gsm.requests) == [
        f"projects/{PROJECT}/{where}secrets/{name}/versions/latest" for name in ("a", "b")
    ]
    assert [headers["authorization"] for headers in gsm.headers] == ["Bearer fake-token"] * 2
    assert all(headers["user-agent"].startswith("secrets-init/") for headers in gsm.headers)


def test_untrusted_certificate_is_named_and_not_retried(
    tmp_path: Path,
    gsm: FakeSecretManager,
    token_server: TokenServer,
    intercepting_proxy: InterceptingProxy,
) -> None:
    """Without REQUESTS_CA_BUNDLE the proxy's certificate is checked against the
    public CAs and refused: a clear line at once, not retries until the timeout."""
    gsm.add_secret(PROJECT, "a", "s3cr3t")
    env = _through_proxy(tmp_path, token_server, intercepting_proxy)
    variables = {"A": f"{FULL}/a"}
    outcome = run(env={**env, **variables}, show=variables, timeout=30)
    assert outcome.returncode == 1
    assert outcome.errors[0] == (
        f"A: {FULL}/a: TLS with secretmanager.googleapis.com failed (is its certificate trusted?)"
    )
    assert len(intercepting_proxy.targets) == 1
    assert gsm.calls == 0


class _Odd(QuietHandler):
    """A front end that is not Secret Manager: an HTML 502 page, a 200 that is not JSON, or
    one too long to be a secret (1.2 MB)."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        if "/bad-gateway/" in self.path:
            self.send(502, b"<html>Bad Gateway</html>", "text/html")
        elif "/huge/" in self.path:
            self.send(200, b'{"payload": {"data": "' + b"QUFB" * 300_000 + b'"}}')
        else:
            self.send(200, b"<html>Welcome to the hotel network</html>", "text/html")


def test_answers_that_are_not_google_s(tmp_path: Path) -> None:
    odd = LoopbackServer(_Odd)
    try:
        variables = {
            "GATEWAY": f"{FULL}/bad-gateway",
            "HUGE": f"{FULL}/huge",
            "PORTAL": f"{FULL}/portal",
        }
        env = child_env(SECRETMANAGER_EMULATOR_HOST=f"127.0.0.1:{odd.port}", **variables)
        outcome = run(["--timeout", "2"], env=env, show=variables, timeout=20)
    finally:
        odd.close()
    assert outcome.returncode == 1
    errors = sorted(outcome.errors[:-1])
    assert errors[0].startswith(f"GATEWAY: {FULL}/bad-gateway: service unavailable after ")
    assert errors[1] == f"HUGE: {FULL}/huge: Google's answer is too long to be a secret version"
    assert errors[2] == (
        f"PORTAL: {FULL}/portal: Google's answer is not an AccessSecretVersionResponse"
    )
    assert _Odd.hits > 3  # the 502 was retried, the 200s were not


def service_account_key(token_uri: str) -> dict[str, str]:
    """A service-account key file whose token endpoint is the local token server."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key",
        "private_key": pem.decode(),
        "client_email": f"secrets-init@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": token_uri,
    }


def test_fake_server_checksums_agree_with_the_provider() -> None:
    for data in (b"", b"123456789", bytes(range(256)) * 3, "ünïcode".encode()):
        assert provider_crc32c(data) == crc32c(data)
    assert crc32c(b"123456789") == 0xE3069283  # the published CRC-32C check value


def test_credentials_lookup_that_hangs_ends_at_the_timeout(tmp_path: Path) -> None:
    """A metadata server that accepts connections and never answers (a black hole)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        env = offline_env(
            tmp_path, GCE_METADATA_IP=address, GCE_METADATA_HOST=address, GCE_METADATA_TIMEOUT="30"
        )
        variables = {"X": f"{FULL}/x"}
        outcome = run(["--timeout", "1"], env={**env, **variables}, show=variables, timeout=30)
    assert outcome.returncode == 1
    assert outcome.seen is None
    assert outcome.errors[0] == (
        f"X: {FULL}/x: timed out after 1s while looking for Google credentials"
    )


def test_fake_answers_earlier_builds_over_grpc_on_the_same_port(gsm: FakeSecretManager) -> None:
    """The benchmark runs builds from before the REST provider against this same fake."""
    import grpc
    from google.api_core import exceptions
    from google.cloud import secretmanager_v1
    from google.cloud.secretmanager_v1.services.secret_manager_service import transports

    gsm.add_secret(PROJECT, "db", "over grpc")
    with grpc.insecure_channel(gsm.address) as channel:
        client = secretmanager_v1.SecretManagerServiceClient(
            transport=transports.SecretManagerServiceGrpcTransport(channel=channel)
        )
        answer = client.access_secret_version(
            name=f"projects/{PROJECT}/secrets/db/versions/latest", timeout=10
        )
        assert answer.payload.data == b"over grpc"
        assert answer.payload.data_crc32c == crc32c(b"over grpc")
        with pytest.raises(exceptions.NotFound):
            client.access_secret_version(
                name=f"projects/{PROJECT}/secrets/missing/versions/latest", timeout=10
            )
    assert gsm.requests == [
        f"projects/{PROJECT}/secrets/db/versions/latest",
        f"projects/{PROJECT}/secrets/missing/versions/latest",
    ]

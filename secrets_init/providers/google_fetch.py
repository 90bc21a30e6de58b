"""Fetching Google Secret Manager secrets: project, credentials, then one REST call per version.

Why Secret Manager's REST API and not the client library's gRPC: gRPC's C
core, protobuf and the generated client are 20 MB that every pod with a
Google reference would unpack into memory (issue 13 measured it), and 60 ms
more of imports at every start. AccessSecretVersion is one GET; urllib3,
which the AWS providers use too, makes it over kept-alive connections, one
per call in flight, so calls run at once as they did as HTTP/2 streams.

Why this does more than make the call:
- retries and timeouts are explicit and bounded by `--timeout`;
- `dataCrc32c` is checked, as a silently corrupted secret is worse than none;
- every distinct secret version is one call, and all calls run at once.
Credentials are google-auth's Application Default Credentials, untouched.
"""

from __future__ import annotations

import base64
import binascii
import functools
import http.client
import json
import logging
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Collection, Hashable
from typing import Any

import certifi
import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import urllib3

from secrets_init import __version__
from secrets_init.providers import Failure, FetchContext, Outcome, backoff
from secrets_init.providers.crc32c import crc32c
from secrets_init.providers.google_grammar import GoogleSecretTarget, is_project
from secrets_init.providers.pool import Pool

# host:port of a plain-HTTP stand-in for the service (tests, the demo, local
# development): no TLS and no credentials.
EMULATOR_VARIABLE = "SECRETMANAGER_EMULATOR_HOST"
GLOBAL_ENDPOINT = "secretmanager.googleapis.com"
NO_PROJECT = (
    "no Google project for a short secret name: "
    "set --google-project, SECRETS_INIT_GOOGLE_PROJECT or GOOGLE_CLOUD_PROJECT"
)
NO_CREDENTIALS = (
    "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS or run with a service account)"
)

# Calls in flight at once; each holds one kept-alive connection to its endpoint.
WORKERS = 32
# The metadata server answers in milliseconds on GCE; anywhere else it is
# absent, and a short wait keeps that from eating the whole --timeout.
_METADATA_TIMEOUT = 2.0
# A secret is at most 64 KiB, so its answer is under 100 KB; a longer one is
# not Secret Manager's (a captive proxy's page, say) and is not read whole.
_MOST_ANSWER_BYTES = 1 << 20
_USER_AGENT = f"secrets-init/{__version__}"

# Google's error statuses that are worth another try, in plain words.
_RETRYABLE = {
    "UNAVAILABLE": "service unavailable",
    "RESOURCE_EXHAUSTED": "quota exhausted (RESOURCE_EXHAUSTED)",
    "DEADLINE_EXCEEDED": "server deadline exceeded",
}
# The status an error answer means when its body does not say (a proxy's, say).
_STATUS_OF_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class _Endpoint:
    """Where one location's calls go, with the connections they share and the credentials."""

    def __init__(self, base: str, credentials: Any) -> None:
        self.base = base
        self.credentials = credentials
        self.http = _connections(base)

    def access(self, name: str, timeout: float) -> urllib3.BaseHTTPResponse:
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if self.credentials is not None:
            # Bearer token and, for credentials that have one, the quota project.
            self.credentials.apply(headers)
        return self.http.request(
            "GET",
            f"{self.base}/v1/{urllib.parse.quote(name, safe='/:')}:access",
            headers=headers,
            timeout=urllib3.Timeout(total=timeout),
            retries=False,
            preload_content=False,
        )


def fetch(targets: Collection[Hashable], context: FetchContext) -> dict[Hashable, Outcome]:
    pool = Pool("google", context, WORKERS)
    wanted = [target for target in targets if isinstance(target, GoogleSecretTarget)]
    pool.submit(functools.partial(_start, pool, wanted, context.google_project))
    return pool.wait(targets)


def _start(pool: Pool, targets: list[GoogleSecretTarget], google_project: str | None) -> None:
    """Find the project and the credentials once, then submit every call at once."""
    by_name: dict[str, list[GoogleSecretTarget]] = {}
    short = [target for target in targets if target.project is None]
    default_project = None
    if short:
        default_project, problem = _default_project(pool, targets, google_project)
        if problem is not None:
            pool.fail(short, problem)
    for target in targets:
        project = target.project or default_project
        if project is not None:
            by_name.setdefault(target.resource_name(project), []).append(target)
    if not by_name:
        return

    emulator = os.environ.get(EMULATOR_VARIABLE, "").strip()
    endpoints: dict[str | None, _Endpoint] = {}
    if emulator:
        shared = _Endpoint(f"http://{emulator}", None)
        endpoints = {target.location: shared for target in targets}
    else:
        pool.doing(targets, "while looking for Google credentials")
        credentials, problem = _credentials()
        if problem is not None:
            pool.fail(targets, problem)
            return
        for location in {target.location for target in targets}:
            host = (
                GLOBAL_ENDPOINT
                if location is None
                else f"secretmanager.{location}.rep.googleapis.com"
            )
            endpoints[location] = _Endpoint(f"https://{host}", credentials)
    pool.doing(targets, "")
    for name, group in by_name.items():
        endpoint = endpoints[group[0].location]
        pool.submit(functools.partial(_get_one, pool, endpoint, name, group))


def _connections(base: str) -> urllib3.PoolManager:
    """Kept-alive connections to `base`, through the proxy the environment names for it.

    HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read the way requests (and so
    google-auth's token calls) reads them; a proxy's user and password become
    its Proxy-Authorization header.
    """
    parts = urllib.parse.urlsplit(base)
    options: dict[str, Any] = {"maxsize": WORKERS, "block": False}
    if parts.scheme == "https":
        # REQUESTS_CA_BUNDLE is what google-auth's token calls trust (through
        # requests): one variable names the CAs of a proxy that inspects TLS.
        trusted = os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()
        options.update(cert_reqs="CERT_REQUIRED", ca_certs=trusted)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return urllib3.PoolManager(**options)
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    found = urllib.parse.urlsplit(proxy)
    if found.username is not None:
        user = urllib.parse.unquote(found.username)
        password = urllib.parse.unquote(found.password or "")
        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
        host = found.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{found.port}" if found.port is not None else ""
        proxy = found._replace(netloc=f"{host}{port}").geturl()
    return urllib3.ProxyManager(proxy, **options)


def _default_project(
    pool: Pool, targets: list[GoogleSecretTarget], google_project: str | None
) -> tuple[str | None, str | None]:
    """The project for short names, or why there is none."""
    pool.doing(targets, "while looking up the Google project")
    for source, project in (
        ("--google-project", google_project),
        ("GOOGLE_CLOUD_PROJECT", os.environ.get("GOOGLE_CLOUD_PROJECT")),
    ):
        if project:
            if not is_project(project):
                return None, f"{source} {project!r} is not a valid Google project id"
            return project, None
    pool.doing(targets, "while asking the metadata server for the Google project")
    timeout = min(_METADATA_TIMEOUT, pool.left())
    project = _metadata_project(timeout) if timeout > 0 else None
    if project is None:
        return None, NO_PROJECT
    if not is_project(project):
        return (
            None,
            f"the metadata server's project {project!r} is not a valid Google project id",
        )
    return project, None


def _get_one(pool: Pool, endpoint: _Endpoint, name: str, group: list[GoogleSecretTarget]) -> None:
    """AccessSecretVersion for `name`, retried while the service is busy, within the deadline."""
    attempt = 0
    while True:
        attempt += 1
        remaining = pool.left()
        if remaining <= 0:
            pool.fail(group, pool.timed_out())
            return
        pool.count("AccessSecretVersion")
        outcome, busy = _call(pool, endpoint, name, remaining)
        if busy is None:
            pool.settle(group, outcome)
            return
        if pool.left() <= 0.01:
            pool.fail(group, pool.timed_out())
            return
        pause = backoff.pause(attempt)
        if pause >= pool.left():
            pool.fail(group, f"{busy} after {attempt} attempts")
            return
        time.sleep(pause)


def _call(pool: Pool, endpoint: _Endpoint, name: str, timeout: float) -> tuple[Outcome, str | None]:
    """One AccessSecretVersion: its outcome and, when another try may do better, why not
    this one, in plain words."""
    unavailable = _RETRYABLE["UNAVAILABLE"]
    try:
        response = endpoint.access(name, timeout)
        try:
            body = response.read(_MOST_ANSWER_BYTES + 1)
        except BaseException:
            response.close()  # half read: the connection is not reused
            raise
        if len(body) > _MOST_ANSWER_BYTES:
            response.close()
        else:
            response.release_conn()
    except urllib3.exceptions.SSLError:
        host = urllib.parse.urlsplit(endpoint.base).hostname
        return Failure(f"TLS with {host} failed (is its certificate trusted?)"), None
    except urllib3.exceptions.NewConnectionError:
        # Before TimeoutError: urllib3 makes a refused connection one of those too.
        return Failure(unavailable), unavailable
    except urllib3.exceptions.TimeoutError:
        # The call's timeout was what was left until the deadline.
        return Failure(pool.timed_out()), None
    except urllib3.exceptions.HTTPError:
        # Refused, reset, no route, a proxy that said no: gRPC called these
        # UNAVAILABLE too, and they often pass.
        return Failure(unavailable), unavailable
    if response.status == 200:
        return _checked_payload(body), None
    status, message = _error_of(response.status, body)
    cause = _cause(status, message, response.status)
    return Failure(cause), cause if status in _RETRYABLE else None


def _error_of(http_status: int, body: bytes) -> tuple[str, str]:
    """Google's status word and message from an error answer, or what the HTTP status means."""
    try:
        error = json.loads(body)["error"]
        status, message = error.get("status"), error.get("message", "")
    except (ValueError, TypeError, KeyError, AttributeError):
        status, message = None, ""
    if not isinstance(status, str) or not status:
        status = _STATUS_OF_HTTP.get(http_status, f"HTTP {http_status}")
    return status, message if isinstance(message, str) else ""


def _cause(status: str, message: str, http_status: int) -> str:
    """The cause in plain words. Never the server's message: it is not ours to print."""
    if status in _RETRYABLE:
        return _RETRYABLE[status]
    if status == "NOT_FOUND":
        return "secret version not found"
    if status == "PERMISSION_DENIED":
        return "permission denied (needs the Secret Manager Secret Accessor role on this secret)"
    if status == "FAILED_PRECONDITION":
        # Google says which state in its message; only the state word is used.
        if "DESTROYED" in message:
            return "secret version is destroyed"
        if "DISABLED" in message:
            return "secret version is disabled"
        return "secret version cannot be accessed (FAILED_PRECONDITION)"
    if status == "UNAUTHENTICATED":
        return "Google rejected the credentials (UNAUTHENTICATED)"
    if status == "INVALID_ARGUMENT":
        return "Google rejected the secret name as invalid (INVALID_ARGUMENT)"
    if status.startswith("HTTP "):
        return f"Google Secret Manager answered {status}"
    return f"Google Secret Manager answered {status} (HTTP {http_status})"


def _checked_payload(body: bytes) -> Outcome:
    """The secret's bytes from an AccessSecretVersionResponse in JSON, checksum checked."""
    if len(body) > _MOST_ANSWER_BYTES:
        return Failure("Google's answer is too long to be a secret version")
    try:
        payload = json.loads(body)["payload"]
        data = base64.b64decode(payload.get("data", ""), validate=True)
        checksum = payload.get("dataCrc32c")
        expected = None if checksum is None else int(checksum)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        return Failure("Google's answer is not an AccessSecretVersionResponse")
    if expected is not None and crc32c(data) != expected:
        return Failure("payload checksum mismatch (data_crc32c); the secret is not used")
    return data


def _credentials() -> tuple[Any, str | None]:
    """Application Default Credentials with a fresh token, or why there are none.

    The token is fetched once here rather than by each concurrent call, and a
    failure is then reported as what it is, not as an unavailable service.
    """
    _quiet_google_auth_logging()
    credentials: Any
    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except google.auth.exceptions.DefaultCredentialsError:
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return None, (
                "the Google credentials file named by GOOGLE_APPLICATION_CREDENTIALS "
                "is missing or not valid"
            )
        return None, NO_CREDENTIALS
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.TransportError:
        return None, "could not reach Google to get an access token"
    except google.auth.exceptions.GoogleAuthError:
        return None, "Google refused to issue an access token for these credentials"
    return credentials, None


def _quiet_google_auth_logging() -> None:
    """google-auth logs metadata-server retries as warnings; they are not ours to print.

    Without a handler anywhere, Python's last-resort handler would put them on
    stderr between secrets-init's own one-line errors.
    """
    logger = logging.getLogger("google.auth")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _metadata_project(timeout: float) -> str | None:
    """The project id from the GCE metadata server, or None when there is none."""
    host = (
        os.environ.get("GCE_METADATA_HOST")
        or os.environ.get("GCE_METADATA_ROOT")
        or "metadata.google.internal"
    )
    request = urllib.request.Request(
        f"http://{host}/computeMetadata/v1/project/project-id",
        headers={"Metadata-Flavor": "Google"},
    )
    # The metadata server is link-local: never go through an HTTP proxy for it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.headers.get("Metadata-Flavor") != "Google":
                return None
            project = response.read(256).decode("ascii", "replace").strip()
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return project or None

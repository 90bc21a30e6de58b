"""Fetching Google Secret Manager secrets: project, credentials, then one call per version.

Why this does more than call the client library:
- the library's default retry for AccessSecretVersion runs for 60 s, longer
  than a container should hang at start, so retries and timeouts here are
  explicit and bounded by `--timeout`;
- the library does not check `data_crc32c`, and a silently corrupted secret
  is worse than none, so the payload is verified here;
- every distinct secret version is one call, and all calls run at once.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import time
import urllib.request
from collections.abc import Collection, Hashable
from typing import Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import grpc
from google.api_core import exceptions
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service import transports

from secrets_init.providers import Failure, FetchContext, Outcome, backoff
from secrets_init.providers.crc32c import crc32c
from secrets_init.providers.google_grammar import GoogleSecretTarget, is_project
from secrets_init.providers.pool import Pool

EMULATOR_VARIABLE = "SECRETMANAGER_EMULATOR_HOST"
GLOBAL_ENDPOINT = "secretmanager.googleapis.com"
NO_PROJECT = (
    "no Google project for a short secret name: "
    "set --google-project, SECRETS_INIT_GOOGLE_PROJECT or GOOGLE_CLOUD_PROJECT"
)
NO_CREDENTIALS = (
    "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS or run with a service account)"
)

# Calls in flight at once; each is one HTTP/2 stream on a shared channel.
WORKERS = 32
# The metadata server answers in milliseconds on GCE; anywhere else it is
# absent, and a short wait keeps that from eating the whole --timeout.
_METADATA_TIMEOUT = 2.0

_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE: "service unavailable",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "quota exhausted (RESOURCE_EXHAUSTED)",
    grpc.StatusCode.DEADLINE_EXCEEDED: "server deadline exceeded",
}


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
    if emulator:
        channel = grpc.insecure_channel(emulator)
        shared = secretmanager_v1.SecretManagerServiceClient(
            transport=transports.SecretManagerServiceGrpcTransport(channel=channel)
        )
        clients: dict[str | None, Any] = {target.location: shared for target in targets}
    else:
        pool.doing(targets, "while looking for Google credentials")
        credentials, problem = _credentials()
        if problem is not None:
            pool.fail(targets, problem)
            return
        clients = {}
        for location in {target.location for target in targets}:
            endpoint = (
                GLOBAL_ENDPOINT
                if location is None
                else f"secretmanager.{location}.rep.googleapis.com"
            )
            clients[location] = secretmanager_v1.SecretManagerServiceClient(
                credentials=credentials, client_options={"api_endpoint": endpoint}
            )
    pool.doing(targets, "")
    for name, group in by_name.items():
        client = clients[group[0].location]
        pool.submit(functools.partial(_get_one, pool, client, name, group))


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


def _get_one(pool: Pool, client: Any, name: str, group: list[GoogleSecretTarget]) -> None:
    """AccessSecretVersion for `name`, retried while the service is busy, within the deadline."""
    attempt = 0
    while True:
        attempt += 1
        remaining = pool.left()
        if remaining <= 0:
            pool.fail(group, pool.timed_out())
            return
        pool.count("AccessSecretVersion")
        try:
            response = client.access_secret_version(
                request={"name": name}, retry=None, timeout=remaining
            )
        except exceptions.GoogleAPICallError as error:
            code = error.grpc_status_code
            if code not in _RETRYABLE:
                pool.fail(group, _cause(code, error))
                return
            if pool.left() <= 0.01:
                pool.fail(group, pool.timed_out())
                return
            pause = backoff.pause(attempt)
            if pause >= pool.left():
                pool.fail(group, f"{_RETRYABLE[code]} after {attempt} attempts")
                return
            time.sleep(pause)
            continue
        except exceptions.GoogleAPIError as error:
            # e.g. RetryError, or credentials that stopped working mid-fetch.
            pool.fail(group, f"Google Secret Manager call failed ({type(error).__name__})")
            return
        pool.settle(group, _checked_payload(response))
        return


def _cause(code: Any, error: Any) -> str:
    """The cause in plain words. Never the server's message: it is not ours to print."""
    name = getattr(code, "name", None)
    if name == "NOT_FOUND":
        return "secret version not found"
    if name == "PERMISSION_DENIED":
        return "permission denied (needs the Secret Manager Secret Accessor role on this secret)"
    if name == "FAILED_PRECONDITION":
        # Google says which state in its message; only the state word is used.
        message = str(getattr(error, "message", ""))
        if "DESTROYED" in message:
            return "secret version is destroyed"
        if "DISABLED" in message:
            return "secret version is disabled"
        return "secret version cannot be accessed (FAILED_PRECONDITION)"
    if name == "UNAUTHENTICATED":
        return "Google rejected the credentials (UNAUTHENTICATED)"
    if name == "INVALID_ARGUMENT":
        return "Google rejected the secret name as invalid (INVALID_ARGUMENT)"
    if name is not None:
        return f"Google Secret Manager answered {name}"
    return f"Google Secret Manager call failed ({type(error).__name__})"


def _checked_payload(response: Any) -> Outcome:
    payload = response.payload
    data = bytes(payload.data)
    if "data_crc32c" in payload and crc32c(data) != payload.data_crc32c:
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

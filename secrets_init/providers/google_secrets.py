"""Google Secret Manager: `gcp:secretmanager:` references.

`parse` is standard library only: it runs in PID 1. `fetch` runs in the
forked child and is the only place google-cloud-secret-manager, grpc and
google-auth are imported; they vanish with the exec.

Why the fetch does more than call the client library:
- the library's default retry for AccessSecretVersion runs for 60 s, longer
  than a container should hang at start, so retries and timeouts here are
  explicit and bounded by `--timeout`;
- the library does not check `data_crc32c`, and a silently corrupted secret
  is worse than none, so the payload is verified here;
- every distinct secret version is one call, and all calls run at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any

from secrets_init import providers

# PID 1 imports this module to parse; everything only `fetch` needs (threading,
# random, the SDKs) is imported inside it, in the forked child.

PREFIX = "gcp:secretmanager:"
EMULATOR_VARIABLE = "SECRETMANAGER_EMULATOR_HOST"
GLOBAL_ENDPOINT = "secretmanager.googleapis.com"
NO_PROJECT = (
    "no Google project for a short secret name: "
    "set --google-project, SECRETS_INIT_GOOGLE_PROJECT or GOOGLE_CLOUD_PROJECT"
)
NO_CREDENTIALS = (
    "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS or run with a service account)"
)
SHAPE = (
    "expected <secret>[/versions/<version>] or "
    "projects/<project>/[locations/<location>/]secrets/<secret>[/versions/<version>]"
)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_SECRET_CHARS = frozenset(_LOWER + _LOWER.upper() + _DIGITS + "-_")
_PROJECT_CHARS = frozenset(_LOWER + _DIGITS + "-")
_DOMAIN_CHARS = frozenset(_LOWER + _DIGITS + "-.")

# Calls in flight at once; each is one HTTP/2 stream on a shared channel.
_WORKERS = 32
# The metadata server answers in milliseconds on GCE; anywhere else it is
# absent, and a short wait keeps that from eating the whole --timeout.
_METADATA_TIMEOUT = 2.0


@dataclass(frozen=True)
class SecretVersion:
    """What to fetch. `project` None means "the default project", found at fetch time."""

    project: str | None
    location: str | None
    secret: str
    version: str = "latest"

    def reference(self) -> str:
        """The canonical reference text (what `parse` reads back to this value)."""
        if self.project is None:
            body = (
                self.secret
                if self.version == "latest"
                else f"{self.secret}/versions/{self.version}"
            )
        else:
            body = self.resource_name(self.project)
        return PREFIX + body

    def resource_name(self, project: str) -> str:
        where = f"projects/{project}/"
        if self.location is not None:
            where += f"locations/{self.location}/"
        return f"{where}secrets/{self.secret}/versions/{self.version}"


# -- parse: PID 1, standard library only ---------------------------------------


def parse(text: str) -> providers.Parsed:
    if not text.startswith(PREFIX):
        raise providers.ReferenceSyntaxError(f"must start with {PREFIX}")
    body, hash_mark, json_key = text[len(PREFIX) :].partition("#")
    if hash_mark and not json_key:
        raise providers.ReferenceSyntaxError("empty JSON key after '#'")
    if not body:
        raise providers.ReferenceSyntaxError("empty secret name")
    parts = body.split("/")
    if len(parts) == 1 or (len(parts) == 3 and parts[1] == "versions"):
        project = location = None
        secret = parts[0]
        version = parts[2] if len(parts) == 3 else "latest"
    else:
        project, location, secret, version = _split_full_name(parts)
        _check_project(project)
        if location is not None:
            _check_location(location)
    _check_secret(secret)
    _check_version(version)
    return providers.Parsed(SecretVersion(project, location, secret, version), json_key or None)


def _split_full_name(parts: list[str]) -> tuple[str, str | None, str, str]:
    if parts[0] != "projects" or len(parts) < 4:
        raise providers.ReferenceSyntaxError(SHAPE)
    project, rest = parts[1], parts[2:]
    location = None
    if rest[0] == "locations":
        location, rest = rest[1], rest[2:]
    if (
        len(rest) not in (2, 4)
        or rest[0] != "secrets"
        or (len(rest) == 4 and rest[2] != "versions")
    ):
        raise providers.ReferenceSyntaxError(SHAPE)
    return project, location, rest[1], rest[3] if len(rest) == 4 else "latest"


def _check_secret(secret: str) -> None:
    if not secret:
        raise providers.ReferenceSyntaxError("empty secret id")
    if len(secret) > 255 or not _SECRET_CHARS.issuperset(secret):
        raise providers.ReferenceSyntaxError(
            f"secret id {secret!r} is not 1-255 letters, digits, '-' or '_'"
        )


def _check_version(version: str) -> None:
    if version == "latest":
        return
    if not version:
        raise providers.ReferenceSyntaxError("empty version")
    if not _is_number(version) or version[0] == "0" or len(version) > 18:
        raise providers.ReferenceSyntaxError(
            f"version {version!r} is not a positive number or 'latest'"
        )


def _check_location(location: str) -> None:
    if not location:
        raise providers.ReferenceSyntaxError("empty location")
    if (
        len(location) > 63
        or location[0] not in _LOWER
        or location[-1] == "-"
        or not _PROJECT_CHARS.issuperset(location)
    ):
        raise providers.ReferenceSyntaxError(
            f"location {location!r} is not a location name like us-central1"
        )


def _check_project(project: str) -> None:
    if not project:
        raise providers.ReferenceSyntaxError("empty project")
    if not is_project(project):
        raise providers.ReferenceSyntaxError(
            f"project {project!r} is not a project id (6-30 lowercase letters, digits or '-', "
            "starting with a letter) or a project number"
        )


def is_project(project: str) -> bool:
    """A project id, a project number, or a legacy domain-scoped id (example.com:name)."""
    if _is_number(project):
        return len(project) <= 20
    domain, colon, name = project.rpartition(":")
    if colon and not (
        0 < len(domain) <= 253
        and _DOMAIN_CHARS.issuperset(domain)
        and domain[0] not in "-."
        and domain[-1] not in "-."
    ):
        return False
    return (
        6 <= len(name) <= 30
        and name[0] in _LOWER
        and name[-1] != "-"
        and _PROJECT_CHARS.issuperset(name)
    )


def _is_number(text: str) -> bool:
    return bool(text) and all(char in _DIGITS for char in text)


# -- fetch: the forked child only ----------------------------------------------


def fetch(
    targets: Collection[Hashable], context: providers.FetchContext
) -> dict[Hashable, bytes | providers.Failure]:
    budget = context.deadline - time.monotonic()
    wanted = [target for target in targets if isinstance(target, SecretVersion)]
    try:
        import grpc
        from google.api_core import exceptions as api_exceptions
        from google.cloud import secretmanager_v1
        from google.cloud.secretmanager_v1.services.secret_manager_service import transports
    except ImportError:
        failure = providers.Failure(
            "google-cloud-secret-manager is not installed (pip install 'secrets-init[google]')"
        )
        return dict.fromkeys(targets, failure)
    import threading

    run = _Run(wanted, context, budget, grpc, api_exceptions, secretmanager_v1, transports)
    threading.Thread(target=run.main, name="google-fetch", daemon=True).start()
    run.finished.wait(max(0.0, context.deadline - time.monotonic()))
    return run.outcome()


class _Run:
    """One fetch: find the project and credentials, then every call at once.

    Everything runs in daemon threads while `fetch` waits for them until the
    deadline; what is missing then has timed out, and a thread still stuck
    in a network call cannot keep the program from starting.
    """

    def __init__(
        self,
        targets: list[SecretVersion],
        context: providers.FetchContext,
        budget: float,
        grpc: Any,
        api_exceptions: Any,
        secretmanager: Any,
        transports: Any,
    ) -> None:
        import threading

        self.targets = targets
        self.context = context
        self.deadline = context.deadline
        self.timed_out = f"timed out after {round(max(budget, 0.0), 1):g}s"
        self.grpc = grpc
        self.api_exceptions = api_exceptions
        self.secretmanager = secretmanager
        self.transports = transports
        self.phase = "starting"
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._results: dict[Hashable, bytes | providers.Failure] = {}

    def outcome(self) -> dict[Hashable, bytes | providers.Failure]:
        with self._lock:
            results = dict(self._results)
            phase = self.phase
        if len(results) < len(self.targets):
            cause = self.timed_out if phase == "calling" else f"{self.timed_out} while {phase}"
            for target in self.targets:
                results.setdefault(target, providers.Failure(cause))
        return results

    def _settle(
        self, targets: Collection[SecretVersion], outcome: bytes | providers.Failure
    ) -> None:
        with self._lock:
            for target in targets:
                self._results.setdefault(target, outcome)
            if len(self._results) >= len(self.targets):
                self.finished.set()

    def main(self) -> None:
        try:
            self._main()
        except Exception as error:  # noqa: BLE001 - its text could quote a response
            self._settle(
                self.targets,
                providers.Failure(f"unexpected {type(error).__name__} in Google fetch"),
            )

    def _main(self) -> None:
        by_name: dict[str, list[SecretVersion]] = {}
        short = [target for target in self.targets if target.project is None]
        default_project = None
        if short:
            self.phase = "looking up the Google project"
            default_project, problem = self._default_project()
            if problem is not None:
                self._settle(short, providers.Failure(problem))
        for target in self.targets:
            project = target.project or default_project
            if project is not None:
                by_name.setdefault(target.resource_name(project), []).append(target)
        if not by_name:
            self.finished.set()
            return

        emulator = os.environ.get(EMULATOR_VARIABLE, "").strip()
        if emulator:
            channel = self.grpc.insecure_channel(emulator)
            shared = self.secretmanager.SecretManagerServiceClient(
                transport=self.transports.SecretManagerServiceGrpcTransport(channel=channel)
            )
            clients: dict[str | None, Any] = {None: shared}
        else:
            self.phase = "looking for Google credentials"
            credentials, problem = _credentials()
            if problem is not None:
                self._settle(self.targets, providers.Failure(problem))
                return
            clients = {}
            for location in {target.location for target in self.targets}:
                endpoint = (
                    GLOBAL_ENDPOINT
                    if location is None
                    else f"secretmanager.{location}.rep.googleapis.com"
                )
                clients[location] = self.secretmanager.SecretManagerServiceClient(
                    credentials=credentials, client_options={"api_endpoint": endpoint}
                )

        import threading

        self.phase = "calling"
        pending = list(by_name.items())
        pending_lock = threading.Lock()

        def work() -> None:
            while True:
                with pending_lock:
                    if not pending:
                        return
                    name, group = pending.pop()
                client = clients[None] if emulator else clients[group[0].location]
                try:
                    outcome = self._access(client, name)
                except Exception as error:  # noqa: BLE001 - its text could quote a response
                    outcome = providers.Failure(
                        f"unexpected {type(error).__name__} in Google fetch"
                    )
                self._settle(group, outcome)

        for number in range(min(_WORKERS, len(pending))):
            threading.Thread(target=work, name=f"google-fetch-{number}", daemon=True).start()

    def _default_project(self) -> tuple[str | None, str | None]:
        """The project for short names, or why there is none."""
        for source, project in (
            ("--google-project", self.context.google_project),
            ("GOOGLE_CLOUD_PROJECT", os.environ.get("GOOGLE_CLOUD_PROJECT")),
        ):
            if project:
                if not is_project(project):
                    return None, f"{source} {project!r} is not a valid Google project id"
                return project, None
        self.phase = "asking the metadata server for the Google project"
        timeout = min(_METADATA_TIMEOUT, self.deadline - time.monotonic())
        project = _metadata_project(timeout) if timeout > 0 else None
        if project is None:
            return None, NO_PROJECT
        if not is_project(project):
            return (
                None,
                f"the metadata server's project {project!r} is not a valid Google project id",
            )
        return project, None

    def _access(self, client: Any, name: str) -> bytes | providers.Failure:
        from secrets_init.providers import backoff  # imports random: child only

        retryable = {
            self.grpc.StatusCode.UNAVAILABLE: "service unavailable",
            self.grpc.StatusCode.RESOURCE_EXHAUSTED: "quota exhausted (RESOURCE_EXHAUSTED)",
            self.grpc.StatusCode.DEADLINE_EXCEEDED: "server deadline exceeded",
        }
        attempt = 0
        while True:
            attempt += 1
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return providers.Failure(self.timed_out)
            try:
                response = client.access_secret_version(
                    request={"name": name}, retry=None, timeout=remaining
                )
            except self.api_exceptions.GoogleAPICallError as error:
                code = error.grpc_status_code
                if code not in retryable:
                    return providers.Failure(_cause(code, error))
                if time.monotonic() >= self.deadline - 0.01:
                    return providers.Failure(self.timed_out)
                pause = backoff.pause(attempt)
                if time.monotonic() + pause >= self.deadline:
                    return providers.Failure(f"{retryable[code]} after {attempt} attempts")
                time.sleep(pause)
                continue
            except self.api_exceptions.GoogleAPIError as error:
                # e.g. RetryError, or credentials that stopped working mid-run.
                return providers.Failure(
                    f"Google Secret Manager call failed ({type(error).__name__})"
                )
            return _checked_payload(response)


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


def _checked_payload(response: Any) -> bytes | providers.Failure:
    payload = response.payload
    data = bytes(payload.data)
    if "data_crc32c" in payload and crc32c(data) != payload.data_crc32c:
        return providers.Failure("payload checksum mismatch (data_crc32c); the secret is not used")
    return data


def _credentials() -> tuple[Any, str | None]:
    """Application Default Credentials with a fresh token, or why there are none.

    The token is fetched once here rather than by each concurrent call, and a
    failure is then reported as what it is, not as an unavailable service.
    """
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests

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
    import logging

    logger = logging.getLogger("google.auth")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _metadata_project(timeout: float) -> str | None:
    """The project id from the GCE metadata server, or None when there is none."""
    import http.client
    import urllib.request

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


# -- CRC32C (Castagnoli), which the client library leaves unchecked --------------

_crc_table: tuple[int, ...] = ()
_fast_crc32c: Callable[[bytes], int] | None = None


def crc32c(data: bytes) -> int:
    """CRC-32C of `data`: google-crc32c's C code when installed, else table-driven Python."""
    global _fast_crc32c
    if _fast_crc32c is None:
        _fast_crc32c = _pick_crc32c()
    return _fast_crc32c(data)


def _pick_crc32c() -> Callable[[bytes], int]:
    import importlib

    try:
        google_crc32c = importlib.import_module("google_crc32c")
        if google_crc32c.implementation == "c":
            value: Callable[[bytes], int] = google_crc32c.value
            return value
    except (ImportError, AttributeError):
        pass
    return _crc32c_python


def _crc32c_python(data: bytes) -> int:
    global _crc_table
    if not _crc_table:
        entries = []
        for index in range(256):
            crc = index
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            entries.append(crc)
        _crc_table = tuple(entries)
    table = _crc_table
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

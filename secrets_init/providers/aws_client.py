"""Talking to AWS for both AWS providers: one session, bounded calls, plain-words errors.

Imported by the AWS fetch modules only, so a missing boto3 is reported per
reference when there is something to fetch, not when references are parsed.

Why this is more than `boto3.client(...)`:
- botocore's own retries know nothing of `--timeout`, so they are switched
  off and done here: throttling and 5xx answers are retried with jittered
  exponential backoff, never past the deadline, and socket timeouts are
  derived from the time that is left;
- calls run on the providers' `pool.Pool`, so a hung endpoint cannot keep
  the process (or `--check`) alive past the deadline;
- SDK exceptions carry messages that may quote a request or a response;
  only error codes and exception types are turned into causes here, and a
  code is printed only when it looks like an identifier.
"""

from __future__ import annotations

import collections
import threading
import time
import urllib.parse
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

from secrets_init.providers import backoff, trimmed_import
from secrets_init.providers.pool import Pool

# botocore straight, not boto3: the same session and credential chain (boto3's
# Session wraps botocore's), without boto3's import of s3transfer and its
# multiprocessing and concurrent.futures, which cost more than the rest of the
# client's set-up. botocore's documentation and urllib3's HTTP/2 switch are
# left out of the import (see trimmed_import).
try:
    trimmed_import.import_trimmed(
        ("botocore.session",),
        lazy_packages=("botocore.docs", "urllib3.http2"),
        docstring_modules=("botocore.docs.docstring",),
    )
except ModuleNotFoundError as missing:
    if (missing.name or "").split(".", 1)[0] != "botocore":
        raise
    # Named after what `pip install 'secrets-init[aws]'` installs, as the message says.
    raise ModuleNotFoundError("No module named 'boto3'", name="boto3") from None

import botocore.credentials
import botocore.loaders
import botocore.session
from botocore import exceptions
from botocore.config import Config

# botocore decodes its JSON data (models, endpoints) into OrderedDicts: half as
# fast as into dicts, a third with the collector paused (the 1.2 MB endpoints
# file: ~18 ms against ~7 ms). A dict keeps its order too, which is all that
# botocore's use of them needs. Only the loader's name is rebound, and only
# where it is what this was measured on.
if getattr(botocore.loaders, "OrderedDict", None) is collections.OrderedDict:
    botocore.loaders.OrderedDict = dict

# Calls in flight at once per provider, and HTTP connections kept per client.
WORKERS = 16
_MAX_ATTEMPTS = 10  # throttling and 5xx, as long as the deadline allows
_MAX_CONNECT_ATTEMPTS = 3  # a refused connection rarely heals within seconds
_CONNECT_TIMEOUT = 5.0

NO_CREDENTIALS = (
    "no AWS credentials found (looked in the environment, the shared config and "
    "credentials files, web identity, and ECS and EC2 metadata)"
)

_THROTTLING = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    )
)
_SERVER = frozenset(
    ("InternalServiceError", "InternalServiceErrorException", "InternalFailure",
     "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException")
)  # fmt: skip
_NOT_FOUND = frozenset(
    ("ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound")
)
_DENIED = frozenset(("AccessDeniedException", "AccessDenied"))
_KMS = frozenset(
    ("DecryptionFailure", "InvalidKeyId", "KMSAccessDeniedException", "KMSDisabledException",
     "KMSInvalidStateException", "KMSNotFoundException", "KMSInvalidKeyUsageException")
)  # fmt: skip
_BAD_CREDENTIALS = frozenset(
    ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
     "SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken", "IncompleteSignature",
     "MissingAuthenticationToken", "InvalidAccessKeyId")
)  # fmt: skip
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")

# Kinds of failure, which decide what a batch does next.
DENIED = "denied"  # access denied: the batch permission, or one item
ITEM = "item"  # about what was asked for: worth asking item by item
GLOBAL = "global"  # credentials, network, deadline: the same for every item
UNCLEAR = "unclear"  # an answer that may be about one item or the request as a whole


class CallError(Exception):
    """An API call that failed for good. `cause` is safe to print."""

    def __init__(self, cause: str, kind: str, code: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.kind = kind
        self.code = code


def describe_code(code: str, subject: str, region: str, permission: str) -> tuple[str, str]:
    """Cause and kind for an AWS error code answered about `subject` (e.g. `secret`)."""
    if code in _NOT_FOUND:
        return f"{subject} not found in {region}", ITEM
    if code in _DENIED:
        return f"access denied (needs {permission})", DENIED
    if code in _KMS:
        what = subject.split(" ", 1)[0]
        return f"KMS could not decrypt the {what} ({_safe(code)})", ITEM
    if code in _BAD_CREDENTIALS:
        return f"AWS rejected the credentials ({code})", GLOBAL
    if code == "InvalidRequestException":
        return (
            f"AWS refused to read the {subject} (InvalidRequestException): "
            "it may be scheduled for deletion",
            ITEM,
        )
    if code in ("InvalidParameterException", "ValidationException"):
        return f"AWS rejected the request for the {subject} as invalid ({code})", UNCLEAR
    return f"AWS error {_safe(code)}", UNCLEAR


def shown_url(url: str) -> str:
    """`url` as messages print it: without the `user:password@` an endpoint URL may carry."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _safe(code: str) -> str:
    """An error code as printed: identifiers only, never free text from a body."""
    if code and len(code) <= 64 and set(code) <= _CODE_CHARS:
        return code
    return "with an unrecognised code"


def client_for(pool: Pool, service: str, region: str, targets: Iterable[Hashable]) -> Any:
    """The client `targets` are fetched with, or None after failing them with why there is none."""
    targets = list(targets)
    pool.doing(targets, "setting up the AWS client and credentials")
    with _setting_up:
        _setting_up.count += 1
    try:
        client = _client(service, region, pool.deadline)
    except CallError as error:
        pool.fail(targets, error.cause)
        return None
    finally:
        with _setting_up:
            _setting_up.count -= 1
            _setting_up.notify_all()
    with _setting_up:
        _setting_up.wait_for(lambda: _setting_up.count == 0, max(0.0, pool.left()))
    pool.doing(targets, f"waiting for {shown_url(client.meta.endpoint_url)}")
    return client


class _SettingUp(threading.Condition):
    """How many calls are having their client made, so that calls go out together.

    Clients are made one at a time (they share one session), and making one
    is CPU work (the first of a service loads its model: 15-30 ms for SSM).
    A call that went out as soon as its own client existed could be answered
    before the last one went out: one more round trip on the clock. Held
    until every client then being made exists, the calls are in flight
    together; the last one leaves no later than it would have, and a single
    call waits for nothing.
    """

    count = 0


_setting_up = _SettingUp()


def call_for(
    pool: Pool,
    target: Hashable,
    service: str,
    region: str,
    api: str,
    *,
    subject: str,
    permission: str,
    **params: Any,
) -> dict[str, Any] | None:
    """`call` on behalf of one target: the answer, or None after failing it with the cause."""
    client = client_for(pool, service, region, [target])
    if client is None:
        return None
    try:
        return call(
            pool, client, api, subject=subject, region=region, permission=permission, **params
        )
    except CallError as error:
        pool.fail([target], error.cause)
        return None


def call(
    pool: Pool,
    client: Any,
    api: str,
    *,
    subject: str,
    region: str,
    permission: str,
    **params: Any,
) -> dict[str, Any]:
    """One API call, retried on throttling, 5xx and refused connections within the deadline.

    Raises CallError with a cause that names the subject, never a value.
    """
    method = getattr(client, _snake(api))
    endpoint = shown_url(client.meta.endpoint_url)
    waiting = f"waiting for {endpoint}"
    attempt = 0
    while True:
        attempt += 1
        if pool.left() <= 0:
            raise CallError(pool.timed_out(waiting), GLOBAL)
        pool.count(api)
        try:
            answer: dict[str, Any] = method(**params)
            return answer
        except exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            operation = getattr(error, "operation_name", api)
            if operation != api:
                # Raised while getting credentials (STS for web identity), not by the call.
                raise CallError(
                    f"cannot get AWS credentials: {_safe(operation)} failed with {_safe(code)}",
                    GLOBAL,
                ) from None
            if code in _THROTTLING or status == 429:
                reason, limit = "throttled", _MAX_ATTEMPTS
                last = f"still throttled by AWS after {attempt} attempts"
            elif status >= 500 or code in _SERVER:
                reason, limit = f"HTTP {status}", _MAX_ATTEMPTS
                last = f"AWS service error (HTTP {status}) after {attempt} attempts"
            else:
                cause, kind = describe_code(code, subject, region, permission)
                raise CallError(cause, kind, code) from None
        except (exceptions.ConnectionError, exceptions.HTTPClientError) as error:
            if isinstance(error, exceptions.ReadTimeoutError):
                raise CallError(pool.timed_out(waiting), GLOBAL) from None
            if isinstance(error, exceptions.ProxyConnectionError):
                raise CallError("cannot reach the HTTPS proxy", GLOBAL) from None
            if isinstance(error, exceptions.SSLError):
                raise CallError(f"TLS handshake with {endpoint} failed", GLOBAL) from None
            reason, limit = "connection failed", _MAX_CONNECT_ATTEMPTS
            last = f"cannot reach the endpoint {endpoint}"
            if isinstance(error, exceptions.ConnectTimeoutError):
                last += " (connection timed out)"
        except exceptions.BotoCoreError as error:
            raise CallError(_sdk_cause(error, subject, api), GLOBAL) from None
        pause = backoff.pause(attempt)
        if attempt >= limit or time.monotonic() + pause >= pool.deadline:
            raise CallError(last, GLOBAL)
        pool.debug(f"{api} in {region}: {reason}, retrying in {pause:.2f}s")
        time.sleep(pause)


def _sdk_cause(error: Exception, subject: str, api: str) -> str:
    """Cause for a botocore exception that is not about the network."""
    if isinstance(error, exceptions.NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(error, exceptions.PartialCredentialsError):
        return "incomplete AWS credentials"
    if isinstance(error, exceptions.CredentialRetrievalError):
        provider = getattr(error, "kwargs", {}).get("provider", "a credential provider")
        return f"cannot get AWS credentials from {provider}"
    if isinstance(error, exceptions.ParamValidationError):
        return f"the {subject} name is not valid for {api}"
    return f"AWS SDK error {type(error).__name__}"


def _snake(api: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in api).lstrip("_")


# One session per process, shared by both providers' threads: credentials are
# looked up once (one STS call for web identity, not one per provider).
_lock = threading.Lock()
_session: Any = None
_credentials_found: bool | None = None
_clients: dict[tuple[str, str], Any] = {}


def _client(service: str, region: str, deadline: float) -> Any:
    global _session, _credentials_found
    with _lock:
        client = _clients.get((service, region))
        if client is not None:
            return client
        if _session is None:
            _session = botocore.session.get_session()
            _check_services_one_by_one(_session.get_component("data_loader"))
        if _credentials_found is None:
            try:
                credentials = _session.get_credentials()
            except exceptions.BotoCoreError as error:
                raise CallError(
                    f"cannot get AWS credentials ({type(error).__name__})", GLOBAL
                ) from None
            _credentials_found = credentials is not None
            if isinstance(credentials, botocore.credentials.RefreshableCredentials):
                _refresh_in_background(credentials)
        if not _credentials_found:
            raise CallError(NO_CREDENTIALS, GLOBAL)
        left = max(0.1, deadline - time.monotonic())
        config = Config(
            connect_timeout=min(_CONNECT_TIMEOUT, left),
            read_timeout=left,
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=WORKERS,
            user_agent_appid="secrets-init",
        )
        try:
            client = _session.create_client(service, region_name=region, config=config)
        except exceptions.BotoCoreError as error:
            raise CallError(
                f"cannot set up the AWS {service} client ({type(error).__name__})", GLOBAL
            ) from None
        _clients[(service, region)] = client
        return client


def _check_services_one_by_one(loader: Any) -> None:
    """Let botocore check that a service exists by looking at that service alone.

    Before loading a model, botocore checks the service's name against the
    list of every service it has data for, which it builds by looking into
    all ~450 service directories (~2,000 file-system calls, ~10 ms, for each
    kind of model). `_KnownServices` answers that check from the one
    directory, and builds the full list only when something reads it (the
    error for an unknown service lists them all).
    """
    listing = loader.list_available_services

    def list_available_services(type_name: str) -> _KnownServices:
        return _KnownServices(loader, type_name, listing)

    loader.list_available_services = list_available_services


class _KnownServices(Sequence[str]):
    def __init__(self, loader: Any, type_name: str, listing: Callable[[str], list[str]]) -> None:
        self._loader = loader
        self._type_name = type_name
        self._listing = listing

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self._loader.determine_latest_version(name, self._type_name)
        except exceptions.DataNotFoundError:
            return False
        except Exception:  # noqa: BLE001 - a botocore that works otherwise: ask the full list
            return name in self._all()
        return True

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def _all(self) -> list[str]:
        return self._listing(self._type_name)  # botocore caches it


def _refresh_in_background(credentials: Any) -> None:
    """Start fetching credentials that are fetched on first use (web identity's STS call).

    That exchange then overlaps with creating the clients instead of holding
    up the first request's signing. A failure is left for the calls to meet:
    they ask again and report it as they always have. Static credentials need
    no thread, which would cost a few milliseconds of a one-reference run.
    """

    def refresh() -> None:
        try:
            credentials.get_frozen_credentials()
        except BaseException:  # noqa: BLE001, S110 - the calls ask again and report it
            pass

    threading.Thread(target=refresh, name="aws-credentials", daemon=True).start()

"""Talking to AWS for both AWS providers: one session, bounded calls, plain-words errors.

Everything here runs in the forked child. boto3 is imported inside functions,
never at module level: this module is imported by `fetch` only.

Why this is more than `boto3.client(...)`:
- botocore's own retries know nothing of `--timeout`, so they are switched
  off and done here: throttling and 5xx answers are retried with jittered
  exponential backoff, never past the deadline, and socket timeouts are
  derived from the time that is left;
- a batch of calls runs on daemon threads, so a hung endpoint cannot keep
  the process (or `--check`) alive past the deadline;
- SDK exceptions carry messages that may quote a request or a response;
  only error codes and exception types are turned into causes here, and a
  code is printed only when it looks like an identifier.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from secrets_init import providers
from secrets_init.providers import backoff

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


class CallFailed(Exception):
    """An API call that failed for good. `cause` is safe to print."""

    def __init__(self, cause: str, kind: str, code: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.kind = kind
        self.code = code


def seconds(value: float) -> str:
    """`30s`, `2.5s`: how long a timeout was, as the user wrote it."""
    return f"{max(0.0, round(value, 1)):g}s"


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


def _safe(code: str) -> str:
    """An error code as printed: identifiers only, never free text from a body."""
    if code and len(code) <= 64 and set(code) <= _CODE_CHARS:
        return code
    return "with an unrecognised code"


class Run:
    """One provider's fetch: the jobs it runs, the outcomes, the deadline.

    Jobs are functions run on daemon worker threads; a job may submit more
    jobs (a denied batch becomes single calls). `wait` returns when every job
    is done or at the deadline, whichever comes first.
    """

    def __init__(self, name: str, context: providers.FetchContext) -> None:
        self.name = name
        self.deadline = context.deadline
        self.timeout_text = seconds(context.timeout)
        self.log = context.log
        self.requests: Counter[str] = Counter()
        self.flags: set[str] = set()
        self._outcomes: dict[Hashable, bytes | providers.Failure] = {}
        self._stage: dict[Hashable, str] = {}
        self._lock = threading.Condition()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._pending = 0
        self._workers = 0
        self._crash: str | None = None
        self._started = time.monotonic()

    # -- jobs --------------------------------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            start_worker = self._workers < min(WORKERS, self._pending)
            if start_worker:
                self._workers += 1
        self._jobs.put(job)
        if start_worker:
            threading.Thread(target=self._work, name=f"{self.name}-call", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as error:  # noqa: BLE001 - the message could quote a response
                with self._lock:
                    self._crash = type(error).__name__
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def wait(self, targets: Iterable[Hashable]) -> dict[Hashable, bytes | providers.Failure]:
        """Every target's outcome; those still missing at the deadline have timed out."""
        with self._lock:
            while self._pending and (left := self.deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            for _ in range(self._workers):
                self._jobs.put(None)  # idle workers exit; a stuck one is a daemon
            outcomes = dict(self._outcomes)
            crash = self._crash
            stages = dict(self._stage)
        for target in targets:
            if target in outcomes:
                continue
            if crash is not None:
                cause = f"unexpected {crash} in the {self.name} provider"
            else:
                cause = f"timed out after {self.timeout_text} {stages.get(target, 'waiting')}"
            outcomes[target] = providers.Failure(cause)
        if self.log.enabled("debug"):
            elapsed = (time.monotonic() - self._started) * 1000
            calls = ", ".join(f"{n} {api}" for api, n in sorted(self.requests.items()))
            self.debug(f"{len(outcomes)} targets, requests: {calls or 'none'}, {elapsed:.0f} ms")
        return outcomes

    # -- outcomes ----------------------------------------------------------

    def settle(self, target: Hashable, outcome: bytes | providers.Failure) -> None:
        with self._lock:
            self._outcomes.setdefault(target, outcome)

    def fail(self, targets: Iterable[Hashable], cause: str) -> None:
        for target in targets:
            self.settle(target, providers.Failure(cause))

    def flag(self, name: str) -> bool:
        """Raise a run-wide flag; True only for the caller that raised it first."""
        with self._lock:
            first = name not in self.flags
            self.flags.add(name)
            return first

    def settled(self, target: Hashable) -> bool:
        with self._lock:
            return target in self._outcomes

    def stage(self, targets: Iterable[Hashable], doing: str) -> None:
        """What a target is waiting on, for the message if the deadline passes."""
        with self._lock:
            for target in targets:
                self._stage[target] = doing

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def debug(self, message: str) -> None:
        """One line on stderr at --log-level debug. Never a value: names and counts only."""
        self.log.debug(f"{self.name}: {message}")

    # -- clients and calls -------------------------------------------------

    def client(self, service: str, region: str) -> Any:
        """A client for `service` in `region`, shared by both AWS providers."""
        return _client(service, region, self.deadline)

    def client_or_fail(self, service: str, region: str, targets: Iterable[Hashable]) -> Any:
        """A client, or None after failing `targets` with the reason there is none."""
        self.stage(targets, "setting up the AWS client and credentials")
        try:
            return self.client(service, region)
        except CallFailed as failed:
            self.fail(targets, failed.cause)
            return None

    def call(
        self,
        client: Any,
        api: str,
        *,
        subject: str,
        region: str,
        permission: str,
        **params: Any,
    ) -> dict[str, Any]:
        """One API call, retried on throttling, 5xx and refused connections within the deadline.

        Raises CallFailed with a cause that names the subject, never a value.
        """
        from botocore import exceptions

        method = getattr(client, _snake(api))
        endpoint = client.meta.endpoint_url
        attempt = 0
        while True:
            attempt += 1
            if self.left() <= 0:
                raise CallFailed(
                    f"timed out after {self.timeout_text} waiting for {endpoint}", GLOBAL
                )
            with self._lock:
                self.requests[api] += 1
            try:
                answer: dict[str, Any] = method(**params)
                return answer
            except exceptions.ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                operation = getattr(error, "operation_name", api)
                if operation != api:
                    # Raised while getting credentials (STS for web identity), not by the call.
                    raise CallFailed(
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
                    raise CallFailed(cause, kind, code) from None
            except (exceptions.ConnectionError, exceptions.HTTPClientError) as error:
                if isinstance(error, exceptions.ReadTimeoutError):
                    raise CallFailed(
                        f"timed out after {self.timeout_text} waiting for {endpoint}", GLOBAL
                    ) from None
                if isinstance(error, exceptions.ProxyConnectionError):
                    raise CallFailed("cannot reach the HTTPS proxy", GLOBAL) from None
                if isinstance(error, exceptions.SSLError):
                    raise CallFailed(f"TLS handshake with {endpoint} failed", GLOBAL) from None
                reason, limit = "connection failed", _MAX_CONNECT_ATTEMPTS
                last = f"cannot reach the endpoint {endpoint}"
                if isinstance(error, exceptions.ConnectTimeoutError):
                    last += " (connection timed out)"
            except exceptions.BotoCoreError as error:
                raise CallFailed(_sdk_cause(error, subject, api), GLOBAL) from None
            pause = backoff.pause(attempt)
            if attempt >= limit or time.monotonic() + pause >= self.deadline:
                raise CallFailed(last, GLOBAL)
            self.debug(f"{api} in {region}: {reason}, retrying in {pause:.2f}s")
            time.sleep(pause)


def _sdk_cause(error: Exception, subject: str, api: str) -> str:
    """Cause for a botocore exception that is not about the network."""
    from botocore import exceptions

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
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        if _session is None:
            _session = boto3.session.Session()
        if _credentials_found is None:
            try:
                _credentials_found = _session.get_credentials() is not None
            except BotoCoreError as error:
                raise CallFailed(
                    f"cannot get AWS credentials ({type(error).__name__})", GLOBAL
                ) from None
        if not _credentials_found:
            raise CallFailed(NO_CREDENTIALS, GLOBAL)
        left = max(0.1, deadline - time.monotonic())
        config = Config(
            connect_timeout=min(_CONNECT_TIMEOUT, left),
            read_timeout=left,
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=WORKERS,
            user_agent_appid="secrets-init",
        )
        try:
            client = _session.client(service, region_name=region, config=config)
        except BotoCoreError as error:
            raise CallFailed(
                f"cannot set up the AWS {service} client ({type(error).__name__})", GLOBAL
            ) from None
        _clients[(service, region)] = client
        return client

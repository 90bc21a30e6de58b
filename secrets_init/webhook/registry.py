"""An image's ENTRYPOINT and CMD over the OCI distribution API, with the standard library.

Manifest (or index, then the platform's manifest), then the config blob,
whose digest is checked. Authentication as registries ask for it in
`WWW-Authenticate`: a bearer token from the realm (anonymous, or with the pull
secret's credentials), or HTTP Basic. TLS is always verified; a private CA is
added with `SSL_CERT_FILE`, which the default context reads. A redirect to
another host (blob storage) does not carry the registry's Authorization.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

from secrets_init.webhook.imageref import ImageRef
from secrets_init.webhook.program import ImageConfig
from secrets_init.webhook.pullsecrets import Credentials

INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
MAX_DOCUMENT = 4 * 2**20
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """Why an image's config could not be read, in words for a denial message."""


@dataclass
class _Session:
    """One lookup: its deadline, and the Authorization header once one was granted."""

    ref: ImageRef
    credentials: Credentials | None
    deadline: float
    authorization: str | None = None


class Registry:
    def __init__(
        self, platform: str, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        self.os, _, rest = platform.partition("/")
        self.architecture, _, self.variant = rest.partition("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context or ssl.create_default_context()),
            _SameHostAuthorization(),
        )

    def image_config(self, ref: ImageRef, credentials: Credentials | None) -> ImageConfig:
        session = _Session(ref, credentials, time.monotonic() + self.timeout)
        document, media_type = self._manifest(session, ref.reference)
        if media_type in INDEXES or "manifests" in document:
            digest = self._platform(document)
            document, media_type = self._manifest(session, digest)
        config = document.get("config") or {}
        digest = str(config.get("digest", ""))
        if not digest.startswith("sha256:"):
            raise RegistryError(f"the manifest of {ref} names no sha256 config blob")
        blob = self._get(session, f"blobs/{digest}", ())[0]
        if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
            raise RegistryError(f"the config blob of {ref} does not match its digest")
        try:
            fields = json.loads(blob).get("config") or {}
        except (ValueError, AttributeError):
            raise RegistryError(f"the config blob of {ref} is not an image config") from None
        return ImageConfig(
            entrypoint=tuple(fields.get("Entrypoint") or ()), cmd=tuple(fields.get("Cmd") or ())
        )

    def _manifest(self, session: _Session, reference: str) -> tuple[dict[str, Any], str]:
        body, media_type = self._get(session, f"manifests/{reference}", (*INDEXES, *MANIFESTS))
        try:
            document = json.loads(body)
        except ValueError:
            raise RegistryError(f"the manifest of {session.ref} is not JSON") from None
        if not isinstance(document, dict):
            raise RegistryError(f"the manifest of {session.ref} is not a JSON object")
        return document, media_type or str(document.get("mediaType", ""))

    def _platform(self, index: dict[str, Any]) -> str:
        offered = []
        for entry in index.get("manifests") or []:
            platform = entry.get("platform") or {}
            offered.append(
                "/".join(
                    filter(
                        None,
                        (platform.get("os"), platform.get("architecture"), platform.get("variant")),
                    )
                )
            )
            if (
                platform.get("os") == self.os
                and platform.get("architecture") == self.architecture
                and (not self.variant or platform.get("variant") == self.variant)
            ):
                return str(entry["digest"])
        wanted = "/".join(filter(None, (self.os, self.architecture, self.variant)))
        raise RegistryError(
            f"the image index has no {wanted} image (it has {', '.join(offered) or 'none'}); "
            "set the webhook's --platform"
        )

    def _get(self, session: _Session, path: str, accept: tuple[str, ...]) -> tuple[bytes, str]:
        url = f"https://{session.ref.api_host}/v2/{session.ref.repository}/{path}"
        for attempt in range(2):
            headers = {"Accept": ", ".join(accept)} if accept else {}
            if session.authorization:
                headers["Authorization"] = session.authorization
            try:
                with self._opener.open(
                    urllib.request.Request(url, headers=headers), timeout=_left(session)
                ) as response:
                    return _read(response), response.headers.get_content_type()
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 0:
                    session.authorization = self._authorize(session, error.headers)
                    continue
                raise RegistryError(_refusal(session, path, error)) from None
            except (urllib.error.URLError, OSError) as error:
                raise RegistryError(_unreachable(session.ref, error)) from None
        raise RegistryError(_refusal_after_auth(session))

    def _authorize(self, session: _Session, headers: Message) -> str:
        challenge = headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        credentials = session.credentials
        if scheme == "basic":
            if credentials is None:
                raise RegistryError(_no_credentials(session.ref))
            return _basic(credentials)
        if scheme != "bearer":
            raise RegistryError(f"{session.ref.registry} asks for {scheme or 'no'} authentication")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith("https://"):
            raise RegistryError(f"{session.ref.registry}'s token realm is not an https URL")
        params.setdefault("scope", f"repository:{session.ref.repository}:pull")
        headers_out = {"Authorization": _basic(credentials)} if credentials else {}
        url = f"{realm}?{urllib.parse.urlencode(params)}"
        try:
            with self._opener.open(
                urllib.request.Request(url, headers=headers_out),  # noqa: S310 (https, checked)
                timeout=_left(session),
            ) as response:
                grant = json.loads(_read(response))
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise RegistryError(
                    _no_credentials(session.ref)
                    if credentials is None
                    else f"{session.ref.registry} refused the pull secret's credentials "
                    f"(HTTP {error.code} from its token service)"
                ) from None
            raise RegistryError(
                f"{session.ref.registry}'s token service answered HTTP {error.code}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise RegistryError(_unreachable(session.ref, error, "token service")) from None
        except ValueError:
            raise RegistryError(f"{session.ref.registry}'s token is not JSON") from None
        token = grant.get("token") or grant.get("access_token") if isinstance(grant, dict) else None
        if not token:
            raise RegistryError(f"{session.ref.registry}'s token service granted no token")
        return f"Bearer {token}"


class _SameHostAuthorization(urllib.request.HTTPRedirectHandler):
    """Follow a redirect, but send the registry's Authorization only to the registry's host."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


def _left(session: _Session) -> float:
    left = session.deadline - time.monotonic()
    if left <= 0:
        raise RegistryError(f"{session.ref.registry} did not answer in time")
    return left


def _read(response: Any) -> bytes:
    body: bytes = response.read(MAX_DOCUMENT + 1)
    if len(body) > MAX_DOCUMENT:
        raise RegistryError("a registry document is larger than 4 MiB")
    return body


def _basic(credentials: Credentials | None) -> str:
    assert credentials is not None
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _no_credentials(ref: ImageRef) -> str:
    return (
        f"{ref.registry} requires credentials and no pull secret of the pod has any for it "
        "(imagePullSecrets on the pod or its service account)"
    )


def _refusal_after_auth(session: _Session) -> str:
    if session.credentials is None:
        return _no_credentials(session.ref)
    return (
        f"{session.ref.registry} refused the pull secret's credentials for {session.ref} (HTTP 401)"
    )


def _refusal(session: _Session, path: str, error: urllib.error.HTTPError) -> str:
    if error.code == 401:
        return _refusal_after_auth(session)
    code = ""
    try:
        errors = json.loads(error.read(65536)).get("errors") or []
        code = " " + ",".join(str(e.get("code")) for e in errors)
    except (ValueError, AttributeError, OSError):
        pass
    what = "the image" if path.startswith("manifests/") else "a blob of the image"
    if error.code == 404:
        return f"{what} {session.ref} was not found (HTTP 404{code})"
    if error.code == 403:
        return f"{session.ref.registry} denied access to {session.ref} (HTTP 403{code})"
    return f"{session.ref.registry} answered HTTP {error.code}{code} for {what} {session.ref}"


def _unreachable(ref: ImageRef, error: Exception, what: str = "registry") -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"{ref.registry}'s TLS certificate is not trusted ({reason.verify_message}); "
            "add its CA to the webhook with SSL_CERT_FILE"
        )
    if isinstance(reason, TimeoutError):
        return f"the {what} of {ref.registry} did not answer in time"
    return f"the {what} of {ref.registry} is unreachable ({reason})"

"""Debian's docker-registry (the CNCF distribution server) on loopback, TLS on.

Two ways it asks for credentials, as real registries do: HTTP Basic from an
htpasswd file, and bearer tokens from a token service (a small HTTPS server
here that signs ES256 JWTs the registry verifies against our CA), which gives
anonymous pull tokens and push tokens to one user.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from testing.loopback import LoopbackServer, QuietHandler, free_port, wait_serving
from testing.tls import CertificateAuthority, certificate_builder

USER, PASSWORD = "puller", "pull-password-1"
PUSHER, PUSH_PASSWORD = "pusher", "push-password-1"
SERVICE = "test-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def docker_config(host: str, user: str = USER, password: str = PASSWORD) -> bytes:
    """A pull secret's .dockerconfigjson with `user`'s credentials for `host`."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {f"https://{host}/v1/": {"auth": auth}}}).encode()


class TokenService:
    """Grants pull to anyone, push to PUSHER; the registry trusts its signing certificate."""

    def __init__(self, ca: CertificateAuthority, directory: Path) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        self._cert = certificate_builder(name, name, self._key.public_key()).sign(
            self._key, hashes.SHA256()
        )
        self.bundle = directory / "token-signer.crt"
        self.bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, Any]] = []
        self._server = LoopbackServer(
            _token_handler(self), ca.issue("token-service").server_context()
        )
        self.realm = f"{self._server.url}/token"

    def close(self) -> None:
        self._server.close()

    def token(self, user: str | None, scope: str) -> str:
        kind, _, rest = scope.partition(":")
        repository, _, wanted = rest.rpartition(":")
        allowed = {"pull", "push"} if user == PUSHER else {"pull"}
        actions = sorted(set(wanted.split(",")) & allowed)
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": "test-token-service",
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": kind, "name": repository, "actions": actions}],
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _token_handler(service: TokenService) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            user = None
            authorization = self.headers.get("Authorization", "")
            if authorization.startswith("Basic "):
                name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
                if (name, password) not in ((PUSHER, PUSH_PASSWORD), (USER, PASSWORD)):
                    self.send_json(401, {"details": "wrong credentials"})
                    return
                user = name
            scope = query.get("scope", [""])[0]
            service.requests.append({"user": user, "scope": scope})
            self.send_json(200, {"token": service.token(user, scope), "expires_in": 600})

    return Handler


class DockerRegistry:
    """`docker-registry serve` with a config file written here; `host` is 127.0.0.1:PORT."""

    def __init__(
        self, ca: CertificateAuthority, directory: Path, *, tokens: TokenService | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        issued = ca.issue(f"registry-{self.port}")
        if tokens is None:
            htpasswd = directory / "htpasswd"
            for index, (user, password) in enumerate(((USER, PASSWORD), (PUSHER, PUSH_PASSWORD))):
                subprocess.run(
                    [
                        "htpasswd",
                        "-B",
                        "-b",
                        *(["-c"] if index == 0 else []),
                        str(htpasswd),
                        user,
                        password,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
            auth = {"htpasswd": {"realm": "test-realm", "path": str(htpasswd)}}
        else:
            auth = {
                "token": {
                    "realm": tokens.realm,
                    "service": SERVICE,
                    "issuer": "test-token-service",
                    "rootcertbundle": str(tokens.bundle),
                }
            }
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}},
            "http": {
                "addr": self.host,
                "tls": {"certificate": str(issued.cert), "key": str(issued.key)},
            },
            "auth": auth,
        }
        # JSON is YAML: no YAML writer needed.
        (directory / "config.yml").write_text(json.dumps(config))
        self.log = directory / "registry.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(directory / "config.yml")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._context = ssl.create_default_context(cafile=str(ca.path))
        self.cert_dir = directory / "certs"  # for skopeo's --dest-cert-dir
        self.cert_dir.mkdir()
        shutil.copy(ca.path, self.cert_dir / "ca.crt")
        wait_serving(self.process, self._answers, self.log)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"https://{self.host}/v2/", context=self._context, timeout=5)
        except urllib.error.HTTPError as error:
            return error.code == 401
        return True

    def push(self, layout: Path, tag: str, repository: str, *, all_platforms: bool = False) -> None:
        done = subprocess.run(
            [
                "skopeo", "--insecure-policy", "copy", "--quiet",
                *(["--all"] if all_platforms else []),
                "--dest-creds", f"{PUSHER}:{PUSH_PASSWORD}",
                "--dest-cert-dir", str(self.cert_dir),
                f"oci:{layout}:{tag}",
                f"docker://{self.host}/{repository}:{tag}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def requests(self, path_part: str) -> int:
        """How many GETs whose path holds `path_part` the webhook (Python's urllib) made."""
        return sum(
            1
            for line in self.log.read_text(errors="replace").splitlines()
            if "response completed" in line
            and "http.request.method=GET" in line
            and "useragent=Python-urllib" in line
            and path_part in line
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

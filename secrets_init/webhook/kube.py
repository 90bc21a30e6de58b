"""The Kubernetes API, through the official client, for the two questions of `cluster.py`.

In a cluster the client uses the pod's service account (token and CA under
/var/run/secrets/kubernetes.io/serviceaccount, re-read as the token
rotates); outside one it reads `KUBECONFIG`, as every Kubernetes tool does.
Values are looked at here, for their prefix, and dropped: what leaves this
module is key names with their provider families, or a pull secret's registry
credentials for `registry.py`.
An error names the object and the HTTP status, never a body.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from secrets_init.providers import entry_for
from secrets_init.webhook.cluster import CONFIG_MAP, ReadError


def configuration() -> client.Configuration:
    """In-cluster when the service account is mounted, else KUBECONFIG (or ~/.kube/config)."""
    settings = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=settings)  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        # Read now, not when the client was imported, and never written back.
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG") or None,
            client_configuration=settings,
            persist_config=False,
        )
    return settings


class KubeCluster:
    def __init__(self, settings: client.Configuration, timeout: float) -> None:
        settings.retries = 1  # within the API server's own deadline for the webhook
        self._api = client.CoreV1Api(client.ApiClient(settings))
        self._timeout = timeout

    def reference_families(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        data = self._read(kind, namespace, name).get("data") or {}
        text: Callable[[object], str] = str if kind == CONFIG_MAP else _text
        found = {k: entry_for(text(v)) for k, v in data.items()}
        return {k: entry.family for k, entry in found.items() if entry is not None}

    def docker_config(self, namespace: str, name: str) -> bytes:
        secret = self._read("Secret", namespace, name)
        data = secret.get("data") or {}
        kind = secret.get("type")
        try:
            if kind == "kubernetes.io/dockerconfigjson":
                return base64.b64decode(data[".dockerconfigjson"])
            if kind == "kubernetes.io/dockercfg":
                auths = json.loads(base64.b64decode(data[".dockercfg"]))
                return json.dumps({"auths": auths}).encode()
        except (KeyError, ValueError, binascii.Error):
            raise ReadError(f"pull secret {namespace}/{name} is malformed") from None
        raise ReadError(f"Secret {namespace}/{name} is of type {kind}, not a pull secret")

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object as JSON; read raw so that no model object holds the values longer."""
        reader = (
            self._api.read_namespaced_config_map
            if kind == CONFIG_MAP
            else self._api.read_namespaced_secret
        )
        try:
            response: Any = reader(
                name, namespace, _preload_content=False, _request_timeout=self._timeout
            )
            found = json.loads(response.data)
        except ApiException as error:
            raise ReadError(f"HTTP {error.status} {error.reason}", error.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ReadError(f"API server unreachable: {type(error).__name__}") from None
        except ValueError:
            raise ReadError("the API server's answer is not JSON") from None
        if not isinstance(found, dict):
            raise ReadError("the API server's answer is not an object")
        return found


def _text(encoded: object) -> str:
    """A Secret value as text; a value that is not UTF-8 is not a reference, as in secrets-init."""
    try:
        return base64.b64decode(str(encoded)).decode("utf-8")
    except (ValueError, binascii.Error):
        return ""

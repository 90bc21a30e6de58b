"""What every test asks of a mutated pod: the patch applies, the result is a valid pod."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import kubernetes_validate

from tests.webhook import pss

# A version kubernetes-validate ships schemas for; strict: unknown fields are errors.
KUBERNETES_VERSION = "1.30.0"


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The pod after the response's patch, applied by a real JSON Patch library."""
    assert response["allowed"] is True, response
    if "patch" not in response:
        return copy.deepcopy(pod)
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(pod))


def assert_valid(pod: dict[str, Any]) -> None:
    """Valid against the official schema, and restricted-compliant (the originals are)."""
    named = copy.deepcopy(pod)
    named["metadata"].setdefault("name", "orders-x1")
    kubernetes_validate.validate(named, KUBERNETES_VERSION, strict=True)
    assert pss.violations(pod) == []

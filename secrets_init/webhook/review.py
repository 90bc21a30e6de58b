"""AdmissionReview (admission.k8s.io/v1) in and out.

Only what the webhook uses is read from a request; a response echoes the
request's `uid`, as the API server requires, and carries the patch as
base64-encoded JSON Patch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

API_VERSION = "admission.k8s.io/v1"


class ReviewError(ValueError):
    """The body is not an AdmissionReview request this webhook can answer."""


@dataclass(frozen=True)
class Request:
    uid: str
    kind: str  # of the object, e.g. "Pod"
    operation: str  # CREATE, UPDATE, ...
    namespace: str
    pod: dict[str, Any]
    dry_run: bool


def parse(body: bytes) -> Request:
    try:
        review = json.loads(body)
    except ValueError as error:
        raise ReviewError(f"not JSON: {error}") from None
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise ReviewError("not an AdmissionReview")
    if review.get("apiVersion") != API_VERSION:
        raise ReviewError(f"apiVersion {review.get('apiVersion')!r} is not {API_VERSION}")
    request = review.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise ReviewError("an AdmissionReview without request.uid")
    pod = request.get("object")
    return Request(
        uid=request["uid"],
        kind=str((request.get("kind") or {}).get("kind", "")),
        operation=str(request.get("operation", "")),
        namespace=str(request.get("namespace") or ""),
        pod=pod if isinstance(pod, dict) else {},
        dry_run=bool(request.get("dryRun", False)),
    )


def allow(
    request: Request, patch: Sequence[dict[str, Any]] = (), warnings: Sequence[str] = ()
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(list(patch)).encode()).decode()
    if warnings:
        response["warnings"] = list(warnings)
    return _review(response)


def deny(request: Request, message: str, warnings: Sequence[str] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {
        "uid": request.uid,
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": message},
    }
    if warnings:
        response["warnings"] = list(warnings)
    return _review(response)


def _review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}

"""Which pods the webhook leaves alone before it looks at their environment.

Namespaces are chosen first by the MutatingWebhookConfiguration's
`namespaceSelector` (opt-out by default, opt-in with the `opt-in` variant of
the manifests): the webhook needs no right to read Namespaces. What the pod
itself says is checked here too, so a selector left out of a hand-made
configuration cannot inject into kube-system or into the webhook itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from secrets_init.webhook import layout

LABEL = "secrets-init/inject"
DISABLED = "disabled"
ALWAYS_EXCLUDED = ("kube-system",)


def skip_reason(pod: dict[str, Any], namespace: str, excluded: Collection[str]) -> str | None:
    """Why this pod is left as it is, or None when it is a candidate."""
    if namespace in ALWAYS_EXCLUDED or namespace in excluded:
        return f"namespace {namespace} is excluded"
    metadata = pod.get("metadata") or {}
    if (metadata.get("labels") or {}).get(LABEL) == DISABLED:
        return f"the pod is labelled {LABEL}={DISABLED}"
    if injected(pod):
        return "secrets-init is injected already"
    return None


def injected(pod: dict[str, Any]) -> bool:
    """True for a pod this webhook has mutated: mutating it again must change nothing."""
    spec = pod.get("spec") or {}
    names = {container.get("name") for container in spec.get("initContainers") or []}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return layout.INIT_CONTAINER in names or annotations.get(layout.STATUS_ANNOTATION) == (
        layout.INJECTED
    )

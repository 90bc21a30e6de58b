"""One admission decision: which containers to wrap, with what program, as a patch.

The order matters for safety: a pod with references is either injected or
denied, never let through unchanged. Not knowing (an unreadable Secret)
counts as having references, of every family; not knowing what to run (an
image whose config cannot be read) denies the pod, because starting it
without secrets-init would hand the program unresolved references.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from secrets_init.webhook import detection, options, patch, program, quantity, review, selection
from secrets_init.webhook.cluster import Cluster

# Outcomes, as /metrics counts them.
MUTATED = "mutated"
UNCHANGED = "unchanged"  # no references
SKIPPED = "skipped"  # not a pod creation, excluded, or injected already
DENIED = "denied"


class ImageLookupError(Exception):
    """An image's config could not be read; `str()` says why, for the denial."""


class Images(Protocol):
    def config(
        self, image: str, namespace: str, pull_secrets: Sequence[str]
    ) -> program.ImageConfig:
        """The image's ENTRYPOINT and CMD; raises ImageLookupError."""
        ...


@dataclass(frozen=True)
class Decision:
    response: dict[str, Any]
    outcome: str


@dataclass
class Mutator:
    image: str  # the secrets-init image the initContainer runs
    cluster: Cluster
    images: Images
    excluded: Collection[str] = ()

    def decide(self, request: review.Request) -> Decision:
        if request.kind != "Pod" or request.operation != "CREATE":
            return Decision(review.allow(request), SKIPPED)
        pod = request.pod
        if selection.skip_reason(pod, request.namespace, self.excluded) is not None:
            return Decision(review.allow(request), SKIPPED)
        found = detection.detect(pod, request.namespace, self.cluster)
        containers = [c for c in _containers(pod) if c["name"] in found.containers]
        wrapped = [c for c in containers if not _wrapped_by_hand(c)]
        if not wrapped:
            return Decision(review.allow(request), UNCHANGED if not containers else SKIPPED)
        try:
            environment = options.environment(pod)
            programs = {c["name"]: self._program(c, request, pod) for c in wrapped}
        except (options.AnnotationError, program.NoProgramError) as error:
            return Decision(review.deny(request, f"secrets-init: {error}", found.warnings), DENIED)
        except ImageLookupError as error:
            return Decision(review.deny(request, str(error), found.warnings), DENIED)
        families = frozenset().union(*(found.containers[c["name"]] for c in wrapped))
        try:
            operations = patch.build(pod, self.image, programs, environment, families)
        except quantity.QuantityError as error:
            return Decision(review.deny(request, f"secrets-init: {error}", found.warnings), DENIED)
        return Decision(review.allow(request, operations, found.warnings), MUTATED)

    def _program(
        self, container: dict[str, Any], request: review.Request, pod: dict[str, Any]
    ) -> list[str]:
        if not program.needs_image(container):
            return program.program(container, None)
        secrets = [
            ref.get("name", "") for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []
        ]
        try:
            config = self.images.config(container.get("image", ""), request.namespace, secrets)
        except ImageLookupError as error:
            raise ImageLookupError(
                f"secrets-init: container {container['name']!r} sets no command, and the "
                f"ENTRYPOINT and CMD of its image {container.get('image')!r} could not be read "
                f"from the registry: {error}. Set `command` (and `args`) on the container, or "
                "give the webhook pull access to the image (imagePullSecrets on the pod or on "
                "its service account)."
            ) from None
        return program.program(container, config)


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return [c for section in detection.SECTIONS for c in spec.get(section) or []]


def _wrapped_by_hand(container: dict[str, Any]) -> bool:
    """A container that runs secrets-init already (examples/kubernetes) is left as it is."""
    command = container.get("command") or []
    return bool(command) and str(command[0]).rsplit("/", 1)[-1] == "secrets-init"

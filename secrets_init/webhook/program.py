"""What a container runs, by Kubernetes' rules for command, args, ENTRYPOINT and CMD.

Wrapping moves the program into `args`, where the kubelet expands `$(VAR)`;
strings that come from the image were never expanded, so their `$` is
escaped as `$$` to keep them as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageConfig:
    """The two fields of an image's config that decide what runs."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


class NoProgramError(ValueError):
    """Neither the container nor its image names a program."""


def needs_image(container: dict[str, Any]) -> bool:
    """Kubernetes treats an empty `command` as unset: then the image's ENTRYPOINT runs."""
    return not container.get("command")


def program(container: dict[str, Any], image: ImageConfig | None) -> list[str]:
    """The argv Kubernetes would start; `image` is needed only when `needs_image`."""
    command: Sequence[str] = container.get("command") or ()
    args: Sequence[str] = container.get("args") or ()
    if command:
        return [*command, *args]
    if image is None:
        raise ValueError("the image's config is needed when the container sets no command")
    argv = [*map(_escape, image.entrypoint), *(args or map(_escape, image.cmd))]
    if not argv:
        raise NoProgramError(
            f"container {container.get('name')!r}: neither it nor its image "
            f"{container.get('image')!r} names a program (no command, ENTRYPOINT or CMD)"
        )
    return argv


def _escape(text: str) -> str:
    return text.replace("$", "$$")

"""Per-pod annotations for secrets-init's own options, as `SECRETS_INIT_*` variables.

`secrets-init/log-format: json` sets `SECRETS_INIT_LOG_FORMAT=json` on each
wrapped container. The annotations are secrets-init's option table itself
(`secrets_init.config.OPTIONS`), so a new option is an annotation at once,
and values are checked by secrets-init's own parser: a bad one denies the
pod with secrets-init's message instead of a crash loop.
"""

from __future__ import annotations

from typing import Any

from secrets_init import config
from secrets_init.webhook import layout

PREFIX = "secrets-init/"


class AnnotationError(ValueError):
    """An annotation names an unknown option or holds a value secrets-init would refuse."""


def environment(pod: dict[str, Any]) -> dict[str, str]:
    """The variables the pod's annotations ask for, in annotation order."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    variables: dict[str, str] = {}
    for key, value in annotations.items():
        if not key.startswith(PREFIX) or key in _NOT_OPTIONS:
            continue
        option = _BY_NAME.get(key[len(PREFIX) :])
        if option is None:
            raise AnnotationError(
                f"annotation {key}: not a secrets-init option (known: {', '.join(_known())})"
            )
        try:
            config.parse(["program"], {option.variable: str(value)})
        except config.UsageError as error:
            raise AnnotationError(f"annotation {key}: {error}") from None
        variables[option.variable] = str(value)
    if len(variables) > 1:  # options that are fine alone may still not go together
        try:
            config.parse(["program"], variables)
        except config.UsageError as error:
            keys = ", ".join(
                k for k in annotations if k.startswith(PREFIX) and k not in _NOT_OPTIONS
            )
            raise AnnotationError(f"annotations {keys}: {error}") from None
    return variables


_BY_NAME = {option.flag[2:]: option for option in config.OPTIONS if option.twin}
# Annotations of the webhook's own, not options.
_NOT_OPTIONS = frozenset((layout.STATUS_ANNOTATION,))


def _known() -> list[str]:
    return [PREFIX + name for name in _BY_NAME]

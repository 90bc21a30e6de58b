"""Turning fetched secret bytes into what the program receives.

Every function here raises `UnusableValueError` whose message is safe to print: it
may name a JSON key the user asked for, never another key or any value.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Linux refuses exec when one "NAME=value" string exceeds MAX_ARG_STRLEN
# (32 pages); catching it here lets us name the variable.
MAX_ENV_STRING = 32 * 4096


class UnusableValueError(ValueError):
    """A fetched secret cannot be used as asked; the message is safe to print."""


def to_text(value: Any) -> str:
    """JSON value as the environment gets it: strings as they are, null as empty."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _load_object(payload: bytes) -> dict[str, Any] | None:
    """The JSON object `payload` holds, or None when it holds something else.

    Raises UnusableValueError for JSON that Python cannot read although it
    may well be an object: nested too deeply, or with a huge integer.
    """
    try:
        document = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        raise UnusableValueError("secret is JSON nested too deeply to read") from None
    except ValueError:  # what else json.loads raises: int() refusing too many digits
        raise UnusableValueError(
            f"secret is JSON with an integer longer than {sys.get_int_max_str_digits()} digits"
        ) from None
    return document if isinstance(document, dict) else None


def select_json_key(payload: bytes, key: str) -> bytes:
    document = _load_object(payload)
    if document is None:
        raise UnusableValueError(f"secret is not a JSON object, so it has no key {key!r}")
    if key not in document:
        raise UnusableValueError(f"JSON key {key!r} not found in the secret")
    return to_text(document[key]).encode("utf-8", "surrogatepass")


def expand_object(payload: bytes) -> dict[str, bytes] | None:
    """The variables `--expand-json` makes of a JSON object, or None if it is not one."""
    try:
        document = _load_object(payload)
    except UnusableValueError:
        if payload.lstrip().startswith(b"{"):
            raise
        return None  # whatever it is, it is no object
    if document is None:
        return None
    return {key: to_text(value).encode("utf-8", "surrogatepass") for key, value in document.items()}


def variable_name(key: str) -> bytes:
    """The variable `--expand-json` makes of a JSON key, or why it cannot."""
    if not key or "=" in key or "\0" in key:
        raise UnusableValueError(f"--expand-json: key {key!r} is not a valid variable name")
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \uXXXX can write
        raise UnusableValueError(
            f"--expand-json: key {key!r} is not a valid variable name (not valid UTF-8)"
        ) from None


def check_environment_value(name: bytes, value: bytes) -> None:
    """Refuse what exec or a program reading its environment cannot take."""
    if b"\0" in value:
        raise UnusableValueError(
            "secret contains a NUL byte; use ?destination= to get it as a file"
        )
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableValueError(
            "secret is not valid UTF-8 text; use ?destination= to get it as a file"
        ) from None
    size = len(name) + 1 + len(value) + 1
    if size > MAX_ENV_STRING:
        raise UnusableValueError(
            f"variable would be {size} bytes, over Linux's {MAX_ENV_STRING}-byte limit for one "
            "environment string; use ?destination= to get it as a file"
        )

"""Google Secret Manager references: `gcp:secretmanager:` and what they ask for.

    gcp:secretmanager:<secret>[/versions/<version>][#<json-key>]
    gcp:secretmanager:projects/<project>/[locations/<location>/]secrets/<secret>[/versions/<version>][#<json-key>]

A short name (the first form) is looked up in the default project, which is
found when fetching.
"""

from __future__ import annotations

from dataclasses import dataclass

from secrets_init.providers import Parsed, ReferenceSyntaxError

PREFIX = "gcp:secretmanager:"
SHAPE = (
    "expected <secret>[/versions/<version>] or "
    "projects/<project>/[locations/<location>/]secrets/<secret>[/versions/<version>]"
)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_SECRET_CHARS = frozenset(_LOWER + _LOWER.upper() + _DIGITS + "-_")
_PROJECT_CHARS = frozenset(_LOWER + _DIGITS + "-")
_DOMAIN_CHARS = frozenset(_LOWER + _DIGITS + "-.")


@dataclass(frozen=True)
class GoogleSecretTarget:
    """What to fetch. `project` None means "the default project", found at fetch time."""

    project: str | None
    location: str | None
    secret: str
    version: str = "latest"

    def reference(self) -> str:
        """The canonical reference text (what `parse` reads back to this value)."""
        if self.project is None:
            body = (
                self.secret
                if self.version == "latest"
                else f"{self.secret}/versions/{self.version}"
            )
        else:
            body = self.resource_name(self.project)
        return PREFIX + body

    def resource_name(self, project: str) -> str:
        where = f"projects/{project}/"
        if self.location is not None:
            where += f"locations/{self.location}/"
        return f"{where}secrets/{self.secret}/versions/{self.version}"


def parse(text: str) -> Parsed:
    if not text.startswith(PREFIX):
        raise ReferenceSyntaxError(f"must start with {PREFIX}")
    body, hash_mark, json_key = text[len(PREFIX) :].partition("#")
    if hash_mark and not json_key:
        raise ReferenceSyntaxError("empty JSON key after '#'")
    if not body:
        raise ReferenceSyntaxError("empty secret name")
    parts = body.split("/")
    if len(parts) == 1 or (len(parts) == 3 and parts[1] == "versions"):
        project = location = None
        secret = parts[0]
        version = parts[2] if len(parts) == 3 else "latest"
    else:
        project, location, secret, version = _split_full_name(parts)
        _check_project(project)
        if location is not None:
            _check_location(location)
    _check_secret(secret)
    _check_version(version)
    return Parsed(GoogleSecretTarget(project, location, secret, version), json_key or None)


def _split_full_name(parts: list[str]) -> tuple[str, str | None, str, str]:
    if parts[0] != "projects" or len(parts) < 4:
        raise ReferenceSyntaxError(SHAPE)
    project, rest = parts[1], parts[2:]
    location = None
    if rest[0] == "locations":
        location, rest = rest[1], rest[2:]
    if (
        len(rest) not in (2, 4)
        or rest[0] != "secrets"
        or (len(rest) == 4 and rest[2] != "versions")
    ):
        raise ReferenceSyntaxError(SHAPE)
    return project, location, rest[1], rest[3] if len(rest) == 4 else "latest"


def _check_secret(secret: str) -> None:
    if not secret:
        raise ReferenceSyntaxError("empty secret id")
    if len(secret) > 255 or not _SECRET_CHARS.issuperset(secret):
        raise ReferenceSyntaxError(f"secret id {secret!r} is not 1-255 letters, digits, '-' or '_'")


def _check_version(version: str) -> None:
    if version == "latest":
        return
    if not version:
        raise ReferenceSyntaxError("empty version")
    if not _is_number(version) or version[0] == "0" or len(version) > 18:
        raise ReferenceSyntaxError(f"version {version!r} is not a positive number or 'latest'")


def _check_location(location: str) -> None:
    if not location:
        raise ReferenceSyntaxError("empty location")
    if (
        len(location) > 63
        or location[0] not in _LOWER
        or location[-1] == "-"
        or not _PROJECT_CHARS.issuperset(location)
    ):
        raise ReferenceSyntaxError(f"location {location!r} is not a location name like us-central1")


def _check_project(project: str) -> None:
    if not project:
        raise ReferenceSyntaxError("empty project")
    if not is_project(project):
        raise ReferenceSyntaxError(
            f"project {project!r} is not a project id (6-30 lowercase letters, digits or '-', "
            "starting with a letter) or a project number"
        )


def is_project(project: str) -> bool:
    """A project id, a project number, or a legacy domain-scoped id (example.com:name)."""
    if _is_number(project):
        return len(project) <= 20
    domain, colon, name = project.rpartition(":")
    if colon and not (
        0 < len(domain) <= 253
        and _DOMAIN_CHARS.issuperset(domain)
        and domain[0] not in "-."
        and domain[-1] not in "-."
    ):
        return False
    return (
        6 <= len(name) <= 30
        and name[0] in _LOWER
        and name[-1] != "-"
        and _PROJECT_CHARS.issuperset(name)
    )


def _is_number(text: str) -> bool:
    return bool(text) and all(char in _DIGITS for char in text)

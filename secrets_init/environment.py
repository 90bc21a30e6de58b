"""The program's environment: the original one with references replaced.

Values that are not references are passed on byte for byte (os.environb).
Nothing is applied until every reference has been checked: the program is
started with a complete environment or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from secrets_init import fetching, files, providers, values
from secrets_init.config import Settings
from secrets_init.fetching import Fetched
from secrets_init.files import TEMPFILE
from secrets_init.log import Logger
from secrets_init.references import Reference, ResolutionError

_ENCODING = ("utf-8", "surrogateescape")


def program_environment(
    environ: Mapping[bytes, bytes],
    found: Sequence[Reference],
    settings: Settings,
    private_dir: str | None,
    log: Logger,
    *,
    write_files: bool = True,
) -> tuple[dict[bytes, bytes], list[ResolutionError]]:
    """Fetch every reference and build the program's environment from the answers.

    Files are written only when everything was fetched and `write_files` is
    on (off for --check): otherwise the program will not start, but every
    other check still runs, so that all problems are reported in one go.
    """
    context = providers.FetchContext(
        deadline=time.monotonic() + settings.timeout,
        timeout=settings.timeout,
        log=log,
        google_project=settings.google_project,
    )
    fetched, errors = fetching.fetch_all(found, context)
    result, build_errors = build(
        environ,
        fetched,
        expand_json=settings.expand_json,
        private_dir=private_dir,
        write_files=write_files and not errors,
    )
    return result, errors + build_errors


def build(
    environ: Mapping[bytes, bytes],
    fetched: Sequence[Fetched],
    *,
    expand_json: bool = False,
    private_dir: str | None = None,
    write_files: bool = True,
) -> tuple[dict[bytes, bytes], list[ResolutionError]]:
    """The new environment and the errors that forbid using it.

    Secret files are written last, and only when there is no error at all:
    a program that will not start must not have changed a destination. With
    `write_files` false (for --check) they are not written, but every other
    check runs.
    """
    result = dict(environ)
    errors: list[ResolutionError] = []
    expanded_from: dict[bytes, str] = {}
    as_files: list[Fetched] = []
    destinations: dict[str, str] = {}
    for item in fetched:
        reference = item.reference
        name = reference.name
        try:
            if reference.destination is not None:
                _check_file(item, private_dir, destinations)
                as_files.append(item)
                continue
            fields = (
                values.expand_object(item.value)
                if expand_json and reference.json_key is None
                else None
            )
            if fields is None:
                values.check_environment_value(name, item.value)
                result[name] = item.value
                continue
            result.pop(name, None)
            for key, value in fields.items():
                key_bytes = values.variable_name(key)
                owner = expanded_from.get(key_bytes)
                if owner is not None or (key_bytes in environ and key_bytes != name):
                    other = owner or key
                    raise values.UnusableValueError(
                        f"--expand-json: key {key!r} collides with variable {other}"
                    )
                values.check_environment_value(key_bytes, value)
                expanded_from[key_bytes] = reference.variable
                result[key_bytes] = value
        except (values.UnusableValueError, files.SecretFileError) as error:
            errors.append(ResolutionError.of(reference, str(error)))
    if not as_files:
        return result, errors
    if errors or not write_files:
        for item in as_files:
            destination = item.reference.destination or ""
            where = (private_dir or "") if destination == TEMPFILE else destination
            result[item.reference.name] = where.encode(*_ENCODING)
        return result, errors
    secrets = [(i.reference.variable, i.reference.destination or "", i.value) for i in as_files]
    try:
        paths = files.write_secrets(private_dir, secrets)
    except files.SecretFileError as error:
        failed = as_files[error.index or 0].reference
        return result, [ResolutionError.of(failed, str(error))]
    for item, path in zip(as_files, paths, strict=True):
        result[item.reference.name] = path.encode(*_ENCODING)
    return result, errors


def _check_file(item: Fetched, private_dir: str | None, destinations: dict[str, str]) -> None:
    """Refuse now what would make writing the file fail later."""
    destination = item.reference.destination
    if destination == TEMPFILE:
        if private_dir is None:
            raise files.SecretFileError("no private directory for tempfile destinations")
        return
    assert destination is not None
    files.check_destination(destination)
    other = destinations.setdefault(destination, item.reference.variable)
    if other != item.reference.variable:
        raise files.SecretFileError(f"{destination} is also the destination of {other}")

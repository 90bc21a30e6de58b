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
from secrets_init.log import Logger
from secrets_init.references import TEMPFILE, Reference, ResolutionError

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

    With `write_files` false (for --check) files are not written, but every
    other check runs.
    """
    result = dict(environ)
    errors: list[ResolutionError] = []
    expanded_from: dict[bytes, str] = {}
    for item in fetched:
        reference = item.reference
        name = reference.variable.encode(*_ENCODING)
        try:
            if reference.destination is not None:
                result[name] = _to_file(item, private_dir, write_files)
                continue
            fields = (
                values.expand_object(item.value)
                if expand_json and reference.json_key is None
                else None
            )
            if fields is None:
                values.check_environment_value(reference.variable, item.value)
                result[name] = item.value
                continue
            result.pop(name, None)
            for key, value in fields.items():
                key_bytes = key.encode(*_ENCODING)
                if not key or "=" in key or "\0" in key:
                    raise values.UnusableValueError(
                        f"--expand-json: key {key!r} is not a valid variable name"
                    )
                owner = expanded_from.get(key_bytes)
                if owner is not None or (key_bytes in environ and key_bytes != name):
                    other = owner or key
                    raise values.UnusableValueError(
                        f"--expand-json: key {key!r} collides with variable {other}"
                    )
                values.check_environment_value(key, value)
                expanded_from[key_bytes] = reference.variable
                result[key_bytes] = value
        except (values.UnusableValueError, files.SecretFileError) as error:
            errors.append(ResolutionError.of(reference, str(error)))
    return result, errors


def _to_file(item: Fetched, private_dir: str | None, write_files: bool) -> bytes:
    destination = item.reference.destination
    assert destination is not None
    if destination == TEMPFILE:
        if private_dir is None:
            raise files.SecretFileError("no private directory for tempfile destinations")
        path = (
            files.write_tempfile(private_dir, item.reference.variable, item.value)
            if write_files
            else private_dir
        )
    elif write_files:
        path = files.write_destination(destination, item.value)
    else:
        files.check_destination(destination)
        path = destination
    return path.encode(*_ENCODING)

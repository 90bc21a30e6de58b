"""The program's environment: the original one with references replaced.

Values that are not references are passed on byte for byte (os.environb).
Nothing is applied until every reference has been checked: the program is
started with a complete environment or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secrets_init import files, values
from secrets_init.references import ResolutionError
from secrets_init.resolver import Resolved

_ENCODING = ("utf-8", "surrogateescape")


def build(
    environ: Mapping[bytes, bytes],
    resolved: Sequence[Resolved],
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
    for item in resolved:
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
                    raise values.ValueProblem(
                        f"--expand-json: key {key!r} is not a valid variable name"
                    )
                owner = expanded_from.get(key_bytes)
                if owner is not None or (key_bytes in environ and key_bytes != name):
                    other = owner or key
                    raise values.ValueProblem(
                        f"--expand-json: key {key!r} collides with variable {other}"
                    )
                values.check_environment_value(key, value)
                expanded_from[key_bytes] = reference.variable
                result[key_bytes] = value
        except (values.ValueProblem, files.FileProblem) as problem:
            errors.append(ResolutionError.of(reference, str(problem)))
    return result, errors


def _to_file(item: Resolved, private_dir: str | None, write_files: bool) -> bytes:
    destination = item.reference.destination
    assert destination is not None
    if destination == "tempfile":
        if private_dir is None:
            raise files.FileProblem("no private directory for tempfile destinations")
        path = (
            files.write_tempfile(private_dir, item.reference.variable, item.value)
            if write_files
            else private_dir
        )
    else:
        files.check_destination(destination)
        path = files.write_destination(destination, item.value) if write_files else destination
    return path.encode(*_ENCODING)

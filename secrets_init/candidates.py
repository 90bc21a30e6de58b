"""The cheap first look at the environment that PID 1 is allowed to take.

PID 1 lives as long as the container, so it does not parse references: that
needs `dataclasses` (and through it `inspect`, `typing`, `ast`: about 2 MB
that would stay resident) and happens in the forked child instead. Here only
byte prefixes are compared, which is enough to know whether a child must
resolve anything (else PID 1 spawns the program itself: `secrets_init.program`)
and whether a private directory for `tempfile` secrets is needed first.
"""

# Annotations only: PID 1 imports this module, and collections.abc (through collections)
# or typing would add a millisecond or more to every container start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


# Every provider prefix starts with one of these (tests/test_references.py checks it).
SCHEMES = (b"arn:", b"gcp:")
_TEMPFILE = b"?destination=tempfile"  # references.DESTINATION_MARK + references.TEMPFILE


def has_references(environ: "Mapping[bytes, bytes]") -> bool:
    return any(value.startswith(SCHEMES) for value in environ.values())


def wants_tempfile(environ: "Mapping[bytes, bytes]") -> bool:
    """True when some value may be a reference with a `tempfile` destination."""
    return any(value.startswith(SCHEMES) and _TEMPFILE in value for value in environ.values())

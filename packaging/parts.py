"""Which part of the packed tree each file belongs to, and which runs need each part.

The launcher unpacks only the parts a run needs: `core` (the interpreter,
the standard library and secrets-init) always, a provider family's parts
only when some environment value starts with that family's prefix. That is
a byte-prefix look, the one `secrets_init.candidates` takes in PID 1, never
a parse; tests/binary/test_parts.py keeps these prefixes in step with the
provider registry. A file whose part is not known here stops the build, so
a new dependency is placed on purpose (and its size shows in the build's table).

Read by packaging/secrets-init.spec (which keeps only `core` modules in the
bootloader's archive and writes the others as loose .pyc files, so that each
can be left out of an unpacked tree) and by packaging/pack.py (one zstd
stream per part).
"""

from __future__ import annotations

# A provider family (secrets_init.providers.ProviderEntry.family) and the
# prefix that every one of its references starts with.
FAMILIES = (("aws", "arn:"), ("google", "gcp:"))

# A part, and the families whose references need it (none: every run).
PARTS = (
    ("core", ()),
    ("tls", ("aws", "google")),
    ("aws", ("aws",)),
    ("google", ("google",)),
)

# Top-level modules and packages outside the standard library, by part.
MODULES = {
    "secrets_init": "core",
    # TLS and HTTP that both SDKs use: Python's ssl and hashlib with OpenSSL,
    # urllib3 (botocore's and requests' transport) and the CA bundle.
    "_ssl": "tls",
    "_hashlib": "tls",
    "urllib3": "tls",
    "certifi": "tls",
    # botocore and what it imports.
    "botocore": "aws",
    "jmespath": "aws",
    "dateutil": "aws",
    "six": "aws",
    # Google: google-auth (which signs service-account tokens with cryptography)
    # and requests, through which it gets tokens; the calls themselves are urllib3's.
    "google": "google",
    "cryptography": "google",
    "_cffi_backend": "google",
    "requests": "google",
    "charset_normalizer": "google",
    "idna": "google",
}

# Shared libraries, by part; the rest (glibc, libpython, zlib...) are core.
LIBRARIES = {
    "libssl.so.3": "tls",
    "libcrypto.so.3": "tls",
}

INTERNAL = "_internal"


def module_part(top: str) -> str:
    """The part of a top-level module; KeyError for one not placed yet."""
    return MODULES[top]


def file_part(rel: str, placed: dict[str, str] | None = None) -> str:
    """The part of a file, by its path relative to the tree's root; `placed`
    holds the parts of the .pyc files that packaging/secrets-init.spec wrote."""
    if placed and rel in placed:
        return placed[rel]
    parts = rel.split("/")
    if parts[0] != INTERNAL or len(parts) == 1:
        return "core"  # the bootloader
    name = parts[1]
    if name.endswith(".dist-info") or name == "base_library.zip":
        return "core"  # --version reads the dist-info of every SDK
    if name in LIBRARIES:
        return LIBRARIES[name]
    if name.startswith("python3.") and len(parts) > 2:
        top = parts[-1].split(".")[0]
        return MODULES.get(top, "core")  # lib-dynload: _ssl and _hashlib are not core
    if ".so" in name and ".cpython-" not in name and ".abi3." not in name:
        return "core"  # a shared library not listed above: glibc, libpython, zlib...
    top = name.split(".")[0]
    try:
        return module_part(top)
    except KeyError:
        raise SystemExit(
            f"parts: {rel} belongs to no part (add {top!r} to packaging/parts.py)"
        ) from None

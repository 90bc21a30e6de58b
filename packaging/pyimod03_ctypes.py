"""Stands in for PyInstaller's bootstrap module of this name (packaging/secrets-init.spec).

PyInstaller's own imports ctypes in every frozen start, before secrets-init's
first line, only to make ctypes.CDLL("libname.so") fall back to the tree's
directory. Nothing in the tree loads a library that way (secrets_init.libc
reaches the C library through _ctypes.dlopen(None); google-auth's custom TLS
signer is given absolute paths), and the import is ~1 ms of every start and
ctypes in PID 1, which the design keeps out.
"""


def install() -> None:
    """What PyInstaller's bootstrap calls: nothing to install."""

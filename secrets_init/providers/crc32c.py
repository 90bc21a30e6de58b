"""CRC-32C (Castagnoli), the checksum Google sends with a secret and its client leaves unchecked.

google-crc32c's C code is used when it is installed (it usually comes with
the Google SDK); otherwise a table-driven version in Python, which is slow
per byte but secrets are small.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def _table() -> tuple[int, ...]:
    entries = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        entries.append(crc)
    return tuple(entries)


_TABLE = _table()


def _in_python(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fastest() -> Callable[[bytes], int]:
    try:
        # Through importlib: google-crc32c ships no type information.
        google_crc32c = importlib.import_module("google_crc32c")
        if google_crc32c.implementation == "c":
            value: Callable[[bytes], int] = google_crc32c.value
            return value
    except (ImportError, AttributeError):
        pass
    return _in_python


_FASTEST = _fastest()


def crc32c(data: bytes) -> int:
    return _FASTEST(data)

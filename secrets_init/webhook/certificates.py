"""The server's TLS context, rebuilt when the certificate or key file changes.

cert-manager and the one-shot Job renew the files in place (a Secret volume
swaps a symlink), so each new connection compares the files' identity with
the last one loaded: a stat per connection, no timer, no restart. A pair that
does not load (a renewal caught between writing the certificate and the key)
keeps the previous context until the next connection tries again.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable

_log = logging.getLogger("secrets_init.webhook")

Signature = tuple[tuple[int, int, int], ...]


class Certificates:
    def __init__(
        self, cert_file: str, key_file: str, on_reload: Callable[[str], None] = lambda _: None
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._context = self._load()  # the first pair must load: fail at start, not later

    def context(self) -> ssl.SSLContext:
        try:
            signature = self._stat()
        except OSError:
            return self._context  # between a delete and a create: try again next time
        if signature == self._signature:
            return self._context
        with self._lock:
            if signature != self._signature:
                self._signature = signature
                try:
                    self._context = self._load()
                except (OSError, ssl.SSLError) as error:
                    _log.warning("certificate files changed but do not load: %s", error)
                    self._on_reload("error")
                else:
                    _log.info("certificate files reloaded")
                    self._on_reload("ok")
        return self._context

    def _stat(self) -> Signature:
        files = (os.stat(path) for path in (self.cert_file, self.key_file))
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in files)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

"""Join the launcher and a PyInstaller one-dir tree into the single file dist/secrets-init.

Layout of the output (read by launcher/launcher.c):

    [static launcher][zstd stream of records][zstd stream of records][trailer]

A record is a fixed header (kind, mode, path length, size), the tree-relative
path, and the contents (a file's bytes or a symlink's target). Directories come
before what they hold; an end record closes a stream. Each stream holds every
directory and about half of the bytes, so the launcher unpacks both at once in
two processes. The tree gets one more file, MANIFEST: every file and symlink
with its size, which the launcher checks at each start to notice a cache that
a /tmp cleaner has thinned out. The trailer says where the streams are, the content hash that
names the cache directory, and where in the bootloader the launcher must write
the real interpreter and library paths over the placeholders that
scripts/build-binary reserved with patchelf.

Usage: pack.py LAUNCHER TREE OUTPUT (placeholders in $SECRETS_INIT_PLACEHOLDERS).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys

TRAILER = struct.Struct("<8sQQQQQII32s64s64s64s")
RECORD = struct.Struct("<B3xII4xQ")
MAGIC = b"SIBUNDL2"
BOOTLOADER = "secrets-init"
INTERP = "_internal/ld-linux-x86-64.so.2"
LIBDIR = "_internal"
MANIFEST = "secrets-init.manifest"  # launcher.c's MANIFEST
# zstd level: 19 packs the tree into roughly a third; decompression speed is
# the same at every level, and the window stays at 8 MiB (bounded memory).
LEVEL = "-19"


def record(kind: str, rel: str, mode: int, data: bytes) -> bytes:
    path = rel.encode()
    return RECORD.pack(ord(kind), mode, len(path), len(data)) + path + data


def streams(tree: str) -> tuple[bytes, bytes]:
    """Two uncompressed streams of about equal size, in a stable order."""
    dirs_part = bytearray()
    entries: list[bytes] = []
    manifest: list[str] = []

    def add(kind: str, rel: str, mode: int, data: bytes) -> None:
        if kind == "d":
            dirs_part.extend(record(kind, rel, mode, data))
        else:
            if "\n" in rel:
                raise SystemExit(f"pack: a line break in the path {rel!r}")
            manifest.append(f"{kind} {len(data)} {rel}\n")
            entries.append(record(kind, rel, mode, data))

    for current, dirs, files in os.walk(tree):
        dirs.sort()
        rel_dir = os.path.relpath(current, tree)
        if rel_dir != ".":
            add("d", rel_dir, 0o755, b"")
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(current, d))]):
            full = os.path.join(current, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(full):
                target = os.readlink(full)
                if os.path.isabs(target):
                    raise SystemExit(f"pack: absolute symlink {rel} -> {target}")
                add("l", rel, 0o777, target.encode())
            else:
                mode = 0o755 if os.stat(full).st_mode & 0o111 else 0o644
                with open(full, "rb") as handle:
                    add("f", rel, mode, handle.read())
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(current, d))]
    if MANIFEST in {line.split(" ", 2)[2].rstrip("\n") for line in manifest}:
        raise SystemExit(f"pack: the tree already holds {MANIFEST}")
    entries.append(record("f", MANIFEST, 0o644, "".join(manifest).encode()))
    halves: tuple[bytearray, bytearray] = (bytearray(dirs_part), bytearray(dirs_part))
    for entry in sorted(entries, key=len, reverse=True):
        min(halves, key=len).extend(entry)
    end = RECORD.pack(ord("e"), 0, 0, 0)
    return bytes(halves[0] + end), bytes(halves[1] + end)


def compress(stream: bytes) -> bytes:
    done = subprocess.run(
        ["zstd", LEVEL, "-T0", "-q", "-c"], input=stream, capture_output=True, check=True
    )
    return done.stdout


def placeholder_offset(blob: bytes, placeholder: bytes) -> tuple[int, int]:
    first = blob.find(placeholder)
    if first < 0 or blob.find(placeholder, first + 1) >= 0:
        raise SystemExit("pack: placeholder not found exactly once in the bootloader")
    return first, len(placeholder) + 1


def main(launcher: str, tree: str, output: str) -> None:
    interp_placeholder, rpath_placeholder = (
        p.encode() for p in os.environ["SECRETS_INIT_PLACEHOLDERS"].split(":")
    )
    with open(os.path.join(tree, BOOTLOADER), "rb") as handle:
        bootloader = handle.read()
    interp_offset, interp_capacity = placeholder_offset(bootloader, interp_placeholder)
    rpath_offset, rpath_capacity = placeholder_offset(bootloader, rpath_placeholder)
    for rel in (INTERP, LIBDIR):
        if not os.path.exists(os.path.join(tree, rel)):
            raise SystemExit(f"pack: {rel} is missing from the tree")

    first, second = streams(tree)
    packed_first = compress(first)
    payload = packed_first + compress(second)
    digest = hashlib.sha256(MAGIC + payload).hexdigest()[:24]
    with open(launcher, "rb") as handle:
        head = handle.read()
    trailer = TRAILER.pack(
        MAGIC,
        len(head),
        len(payload),
        len(packed_first),
        interp_offset,
        rpath_offset,
        interp_capacity,
        rpath_capacity,
        digest.encode(),
        BOOTLOADER.encode(),
        INTERP.encode(),
        LIBDIR.encode(),
    )
    staging = output + ".tmp"
    with open(staging, "wb") as handle:
        handle.write(head)
        handle.write(payload)
        handle.write(trailer)
    os.chmod(staging, 0o755)  # noqa: S103 - it is an executable
    os.replace(staging, output)
    print(
        f"pack: {output}: {len(head) + len(payload) + len(trailer)} bytes "
        f"(launcher {len(head)}, tree {len(first) + len(second)} -> {len(payload)}), "
        f"hash {digest}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])

"""Join the launcher and a PyInstaller one-dir tree into the single file dist/secrets-init.

Layout of the output (read by launcher/launcher.c):

    [static launcher][zstd stream of part 0]...[zstd stream of part N][trailer]

The tree is cut into parts (packaging/parts.py): `core`, which every run
unpacks, and the parts that only runs with references of a provider family
need. A part's stream is records: a fixed header (kind, mode, path length,
size), the tree-relative path, and the contents (a file's bytes or a
symlink's target). Directories come before what they hold; the part's
manifest (every file and symlink of the part with its size, which the
launcher checks before it runs a tree) is its last file, and an end record
closes the stream. The trailer lists the families and their prefixes, the
parts and their streams, the content hash that names the cache directory,
and where in the bootloader the launcher must write the real interpreter and
library paths over the placeholders that scripts/build-binary reserved with
patchelf. A launcher that `secrets-init lay` writes is the same launcher and
trailer, without the streams (`laid` set).

Usage: pack.py LAUNCHER TREE OUTPUT (placeholders in $SECRETS_INIT_PLACEHOLDERS, the
parts of the spec's .pyc files in the JSON file $SECRETS_INIT_FILE_PARTS;
the size of each part is printed, and written as JSON to $SECRETS_INIT_PARTS_REPORT if set).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parts

MAX_FAMILIES, MAX_PARTS = 4, 8  # launcher.c
FAMILY = struct.Struct("<16s32s")
PART = struct.Struct("<16s32sQQ")
TRAILER = struct.Struct(
    "<8sQQQQIIIIII" + "16s32s" * MAX_FAMILIES + "16s32sQQ" * MAX_PARTS + "32s64s64s64s"
)
RECORD = struct.Struct("<B3xII4xQ")
MAGIC = b"SIBUNDL3"
BOOTLOADER = "secrets-init"
INTERP = "_internal/ld-linux-x86-64.so.2"
LIBDIR = "_internal"
MANIFEST = "secrets-init.{}.manifest"  # launcher.c's MANIFEST_FORMAT
# zstd level: 19 packs the tree into roughly a third; decompression speed is
# the same at every level, and the window stays at 8 MiB (bounded memory).
LEVEL = "-19"


def record(kind: str, rel: str, mode: int, data: bytes) -> bytes:
    path = rel.encode()
    return RECORD.pack(ord(kind), mode, len(path), len(data)) + path + data


def walk(tree: str) -> list[tuple[str, str, int, bytes]]:
    """Every file and symlink of the tree as (kind, path, mode, contents), in a stable order."""
    found = []
    for current, dirs, files in os.walk(tree):
        dirs.sort()
        rel_dir = os.path.relpath(current, tree)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(current, d))]):
            full = os.path.join(current, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if "\n" in rel:
                raise SystemExit(f"pack: a line break in the path {rel!r}")
            if os.path.islink(full):
                target = os.readlink(full)
                if os.path.isabs(target):
                    raise SystemExit(f"pack: absolute symlink {rel} -> {target}")
                found.append(("l", rel, 0o777, target.encode()))
            else:
                mode = 0o755 if os.stat(full).st_mode & 0o111 else 0o644
                with open(full, "rb") as handle:
                    found.append(("f", rel, mode, handle.read()))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(current, d))]
    return found


def streams(tree: str) -> tuple[dict[str, bytes], dict[str, int]]:
    """One uncompressed stream per part of packaging/parts.py, and each part's unpacked size."""
    by_part: dict[str, list[tuple[str, str, int, bytes]]] = {name: [] for name, _ in parts.PARTS}
    with open(os.environ["SECRETS_INIT_FILE_PARTS"]) as handle:
        placed = json.load(handle)
    for entry in walk(tree):
        if entry[1].startswith("secrets-init.") and entry[1].endswith(".manifest"):
            raise SystemExit(f"pack: the tree already holds {entry[1]}")
        by_part[parts.file_part(entry[1], placed)].append(entry)
    out, sizes = {}, {}
    for name, entries in by_part.items():
        sizes[name] = sum(len(data) for _, _, _, data in entries)
        dirs = sorted(
            {os.path.dirname(rel) for _, rel, _, _ in entries} - {""},
            key=lambda d: (d.count("/"), d),
        )
        with_parents = sorted(
            {"/".join(d.split("/")[: i + 1]) for d in dirs for i in range(d.count("/") + 1)},
            key=lambda d: (d.count("/"), d),
        )
        body = bytearray()
        for rel in with_parents:
            body += record("d", rel, 0o755, b"")
        manifest = "".join(f"{kind} {len(data)} {rel}\n" for kind, rel, _, data in entries)
        for kind, rel, mode, data in entries:
            body += record(kind, rel, mode, data)
        body += record("f", MANIFEST.format(name), 0o644, manifest.encode())
        body += RECORD.pack(ord("e"), 0, 0, 0)
        out[name] = bytes(body)
    return out, sizes


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
    if parts.PARTS[0] != ("core", ()):
        raise SystemExit("pack: the first part must be core, which every run needs")

    raw, sizes = streams(tree)
    packed = {name: compress(stream) for name, stream in raw.items()}
    payload = b"".join(packed.values())
    digest = hashlib.sha256(MAGIC + payload).hexdigest()[:24]
    with open(launcher, "rb") as handle:
        head = handle.read()
    family_fields: list[object] = []
    for name, prefix in parts.FAMILIES:
        family_fields += [name.encode(), prefix.encode()]
    family_fields += [b"", b""] * (MAX_FAMILIES - len(parts.FAMILIES))
    part_fields: list[object] = []
    offset = 0
    for name, families in parts.PARTS:
        part_fields += [name.encode(), ",".join(families).encode(), offset, len(packed[name])]
        offset += len(packed[name])
    part_fields += [b"", b"", 0, 0] * (MAX_PARTS - len(parts.PARTS))
    trailer = TRAILER.pack(
        MAGIC,
        len(head),
        len(payload),
        interp_offset,
        rpath_offset,
        interp_capacity,
        rpath_capacity,
        len(parts.FAMILIES),
        len(parts.PARTS),
        0,  # laid
        0,
        *family_fields,
        *part_fields,
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
    total = len(head) + len(payload) + len(trailer)
    print(f"pack: {output}: {total} bytes (launcher {len(head)}), hash {digest}")
    report = {"file": total, "launcher": len(head), "parts": {}}
    print(f"pack: {'part':<8} {'unpacked':>10} {'packed':>10}  needed by")
    for name, families in parts.PARTS:
        unpacked = sizes[name]
        report["parts"][name] = {  # type: ignore[index]
            "unpacked": unpacked,
            "packed": len(packed[name]),
            "families": list(families),
        }
        print(
            f"pack: {name:<8} {unpacked:>10} {len(packed[name]):>10}  "
            f"{', '.join(families) or 'every run'}"
        )
    if os.environ.get("SECRETS_INIT_PARTS_REPORT"):
        with open(os.environ["SECRETS_INIT_PARTS_REPORT"], "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])

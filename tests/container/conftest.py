"""Fixtures for the image tests: podman, the binary, and the images built from it.

Each session builds the image the way the README says, from the repository's
Dockerfile and dist/secrets-init, into a private podman store that is
removed at the end. Without podman or the binary these tests skip, except
under CI=true, where they must run.
"""

from __future__ import annotations

import os
import shutil
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.process import ROOT
from tests.container.podman import Podman

BINARY = ROOT / "dist" / "secrets-init"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: a child program needing no libc


def require(ok: bool, reason: str) -> None:
    """Skip when something is missing, but never under CI=true: CI must run these tests."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _static(path: Path) -> bool:
    """True for a 64-bit ELF without a program interpreter (PT_INTERP): it runs in scratch."""
    try:
        header = path.read_bytes()[:4096]
    except OSError:
        return False
    if header[:5] != b"\x7fELF\x02":
        return False
    (phoff,) = struct.unpack_from("<Q", header, 0x20)
    size, count = struct.unpack_from("<HH", header, 0x36)
    types = [struct.unpack_from("<I", header, phoff + i * size)[0] for i in range(count)]
    return 3 not in types  # PT_INTERP


@pytest.fixture(scope="session")
def binary() -> Path:
    require(BINARY.is_file(), f"{BINARY.relative_to(ROOT)} is missing (run scripts/build-binary)")
    return BINARY


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    require(not missing, f"{' and '.join(missing)} not installed (scripts/test installs them)")
    # Removed at the end: pytest keeps old temp dirs, and a store holds whole image copies.
    home = Path(tmp_path_factory.mktemp("podman", numbered=True))
    runtime = Podman(home)
    try:
        yield runtime
    finally:
        runtime.destroy()


@pytest.fixture(scope="session")
def image(podman: Podman, binary: Path) -> str:
    """The real image, built as the README says: the repository as context, target prebuilt."""
    tag = f"localhost/secrets-init-test:{uuid.uuid4().hex[:8]}"
    return podman.build(ROOT, tag, target="prebuilt")


@pytest.fixture(scope="session")
def busybox() -> Path:
    require(_static(BUSYBOX), f"{BUSYBOX} (Debian's busybox-static) is missing")
    return BUSYBOX


def _context(directory: Path, containerfile: str, busybox: Path) -> Path:
    directory.mkdir()
    shutil.copy2(busybox, directory / "busybox")
    (directory / "Containerfile").write_text(containerfile)
    return directory


@pytest.fixture(scope="session")
def image_with_child(
    podman: Podman, image: str, busybox: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The real image plus a static busybox at /bin/busybox, so there is a program to run."""
    context = _context(
        tmp_path_factory.mktemp("child") / "context",
        f"FROM {image}\nCOPY busybox /bin/busybox\n",
        busybox,
    )
    return podman.build(context, f"localhost/secrets-init-child:{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def app_image(podman: Podman, busybox: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An application image without secrets-init: scratch and a static busybox, user 65532.

    It stands for the main container of the Kubernetes examples, which runs the
    binary that an initContainer copied into a shared volume.
    """
    context = _context(
        tmp_path_factory.mktemp("app") / "context",
        "FROM scratch\nCOPY busybox /bin/busybox\nUSER 65532:65532\n",
        busybox,
    )
    return podman.build(context, f"localhost/app-test:{uuid.uuid4().hex[:8]}")

"""The programs under test, found or prepared once per run.

Two interpreters run the module. The shared development venv has an editable
install, whose `.pth` import hook makes `site` import pathlib, urllib and
more at every start; that is a property of `pip install -e`, not of
secrets-init. So the headline row runs the module from a fresh venv made for
this run, holding no import hook: a plain path line that puts the checkout
and the dev venv's packages on sys.path, which is what a regular
`pip install secrets-init[all]` gives. Both are the same real interpreter
binary (never a pyenv shim, which spawns processes of its own). An earlier
build to compare with (`--compare-with DIR`, a checkout of an older commit)
gets a venv of the same kind whose path line puts DIR first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from testing import process

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Subjects:
    dev_python: str  # the shared venv's interpreter (editable install)
    clean_python: str  # a venv without import hooks (see the module docstring)
    binary: str | None  # dist/secrets-init, None when not built
    tini: str | None
    dumb_init: str | None
    earlier_python: str | None = None  # a venv running an earlier checkout (--compare-with)
    earlier_commit: str = ""  # that checkout's commit, `-dirty` when it has changes

    def module(self, python: str | None = None) -> list[str]:
        return [python or self.clean_python, "-I", "-m", "secrets_init"]


def find(workdir: Path, earlier: Path | None = None) -> Subjects:
    dev_python = _dev_python()
    binary = ROOT / "dist" / "secrets-init"
    return Subjects(
        dev_python=dev_python,
        clean_python=_clean_venv(dev_python, workdir / "venv", ROOT),
        binary=str(binary) if os.access(binary, os.X_OK) else None,
        tini=shutil.which("tini"),
        dumb_init=shutil.which("dumb-init"),
        earlier_python=None
        if earlier is None
        else _clean_venv(dev_python, workdir / "earlier-venv", earlier.resolve()),
        earlier_commit="" if earlier is None else _commit(earlier),
    )


def _commit(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or "not a git checkout"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment every measured command gets: nothing from the caller's shell.

    The tests' environment (testing.process) without PYTHONPATH: the module
    runs from a venv that finds the checkout by itself (see above).
    """
    return {"PATH": process.PATH, "LANG": "C.UTF-8", "HOME": process.HOME, **extra}


def _dev_python() -> str:
    venv_python = ROOT / ".venv" / "bin" / "python"
    if os.access(venv_python, os.X_OK):
        return str(venv_python)
    return sys.executable


def _clean_venv(dev_python: str, target: Path, checkout: Path) -> str:
    site_dirs = subprocess.run(
        [dev_python, "-I", "-c", "import site; print('\\n'.join(site.getsitepackages()))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    subprocess.run(
        [dev_python, "-m", "venv", "--without-pip", str(target)],
        env=clean_env(),
        timeout=120,
        check=True,
    )
    python = target / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-I", "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    # Plain path lines: site appends them to sys.path without running anything.
    lines = [str(checkout), *(d for d in site_dirs if os.path.isdir(d))]
    Path(own_site, "bench-paths.pth").write_text("\n".join(lines) + "\n")
    return str(python)

"""Importing an SDK without the parts of it that a resolution never runs.

botocore's client module imports its documentation machinery, to give every
API method a docstring that is generated on the first `help()`; urllib3's
connection module imports its HTTP/2 package, whose `__init__` imports
importlib.metadata for an opt-in switch that checks h2's version. Together
they are a good part of botocore's import time, paid by every resolving
child, and neither ever runs there: the child execs the program right after
the answers.

`import_trimmed` imports with a finder that
- runs a listed package's `__init__` only when one of its own names is used
  (its submodules still import, from the real package directory);
- stands in for a listed docstring module: every class asked of it makes
  empty docstrings, which nothing in the child reads.

It relies on no name inside those modules, so an SDK release that moves
things around keeps working; and when the import fails with the finder in
place (a release that uses a stand-in in a new way), every module of those
packages that it imported is forgotten and the import runs again plainly.
The trim may cost speed, never correctness.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader


def import_trimmed(
    modules: Sequence[str], lazy_packages: Sequence[str], docstring_modules: Sequence[str]
) -> bool:
    """Import `modules`, trimmed; True if the trim applied, False if imported plainly."""
    if any(name in sys.modules for name in (*lazy_packages, *docstring_modules)):
        _import_all(modules)  # someone imported them for real already: nothing to save
        return False
    roots = {name.split(".", 1)[0] for name in (*modules, *lazy_packages, *docstring_modules)}
    before = set(sys.modules)
    finder = _Finder(lazy_packages, docstring_modules)
    sys.meta_path.insert(0, finder)
    try:
        _import_all(modules)
        return True
    except Exception:  # noqa: BLE001 - any failure: forget the attempt, import plainly
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:
            if name.split(".", 1)[0] in roots:
                del sys.modules[name]
        _import_all(modules)
        return False
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)


def _import_all(modules: Sequence[str]) -> None:
    """Import `modules` on a thread of their own, always starting at the same depth.

    CPython 3.11 keeps a thread's frames in 16 KiB chunks and frees a chunk
    as soon as the frame at its start returns: a call made over and over
    right at a chunk's end maps and unmaps a chunk every time. Whether the
    SDK's import hits that depends on how deep the import starts, so on
    every caller's frames: measured, one layout of the fetch threads cost the
    import ~5,000 page faults and ~25 ms more than another. On a thread of
    its own, the import starts at the same depth, whoever imports.
    """
    failed: list[BaseException] = []

    def run() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - raised again in the importing thread
            failed.append(error)

    thread = threading.Thread(target=run, name="sdk-import", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def _real_spec(
    name: str, path: Sequence[str] | None, skip: object
) -> importlib.machinery.ModuleSpec | None:
    """The spec the rest of the import system would give `name` (a frozen build's too)."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if finder is skip or find_spec is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find_spec(name, path)
        if spec is not None:
            return spec
    return None


class _Finder:
    def __init__(self, lazy_packages: Sequence[str], docstring_modules: Sequence[str]) -> None:
        self.lazy_packages = frozenset(lazy_packages)
        self.docstring_modules = frozenset(docstring_modules)

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name in self.docstring_modules:
            return importlib.machinery.ModuleSpec(name, cast("Loader", _Docstrings()))
        if name not in self.lazy_packages:
            return None
        real = _real_spec(name, path, self)
        if real is None or real.loader is None or real.submodule_search_locations is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            name, cast("Loader", _LazyInit(real)), origin=real.origin, is_package=True
        )
        spec.submodule_search_locations = list(real.submodule_search_locations)
        spec.has_location = real.has_location
        return spec


class _LazyInit:
    """Loads a package whose `__init__` runs on the first use of one of its own names."""

    def __init__(self, real: importlib.machinery.ModuleSpec) -> None:
        self.real = real
        self._lock = threading.Lock()

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> Any:
            if name.startswith("__") or self._is_submodule(module, name):
                raise AttributeError(name)  # `from package import submodule` imports it
            with self._lock:
                if module.__dict__.get("__getattr__") is __getattr__:
                    del module.__getattr__
                    assert self.real.loader is not None
                    self.real.loader.exec_module(module)
            return getattr(module, name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]

    def _is_submodule(self, module: ModuleType, name: str) -> bool:
        full = f"{module.__name__}.{name}"
        return full in sys.modules or _real_spec(full, list(module.__path__), None) is not None


class _Docstrings:
    """Loads a module whose every class is `_EmptyDocstring`, made on first request."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> type[_EmptyDocstring]:
            if name.startswith("__"):
                raise AttributeError(name)
            made = type(name, (_EmptyDocstring,), {"__module__": module.__name__})
            setattr(module, name, made)
            return made

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


class _EmptyDocstring(str):
    """Stands in for a docstring generated on demand: empty, whatever it was made from."""

    def __new__(cls, *args: object, **kwargs: object) -> _EmptyDocstring:
        return super().__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

"""The webhook is a separate program: secrets-init never imports it, and it takes from
secrets-init only what decides what a reference is (and its provider family) and what an
option is."""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

from testing.process import ROOT

PACKAGE = ROOT / "secrets_init"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_secrets_init_never_imports_the_webhook() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "webhook" in path.relative_to(PACKAGE).parts:
            continue
        assert not any("webhook" in name for name in _imports(path)), path


def test_the_webhook_takes_only_reference_and_option_rules_from_secrets_init() -> None:
    used = set()
    for path in (PACKAGE / "webhook").glob("*.py"):
        used |= {
            name
            for name in _imports(path)
            if name.startswith("secrets_init") and not name.startswith("secrets_init.webhook")
        }
    assert used == {
        "secrets_init",
        "secrets_init.config",
        "secrets_init.providers",
        "secrets_init.providers.FAMILIES",
        "secrets_init.providers.entry_for",
    }


def test_the_console_script() -> None:
    [entry] = [
        e
        for e in importlib.metadata.entry_points(group="console_scripts")
        if e.name == "secrets-init-webhook"
    ]
    assert entry.value == "secrets_init.webhook.__main__:main"
    script = Path(sys.executable).parent / "secrets-init-webhook"
    assert script.is_file() or shutil.which("secrets-init-webhook")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SECRETS_INIT_WEBHOOK_IMAGE" in done.stdout

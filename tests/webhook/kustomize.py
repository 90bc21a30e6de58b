"""Just enough kustomize to render deploy/webhook here, where kubectl is not installable.

Supports what those kustomizations use: `resources` (files and directories),
`components`, and inline JSON 6902 `patches` with a kind/name target.
test_deploy.py compares this rendering with `kubectl kustomize` when kubectl
is there, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonpatch
import yaml


def render(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            documents += render(path)
        else:
            documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for entry in kustomization.get("components") or []:
        component = yaml.safe_load(((directory / entry) / "kustomization.yaml").read_text())
        assert component["kind"] == "Component"
        documents = _patched(documents, component.get("patches") or [])
    return _patched(documents, kustomization.get("patches") or [])


def _patched(
    documents: list[dict[str, Any]], patches: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    for patch in patches:
        target = patch["target"]
        operations = yaml.safe_load(patch["patch"])
        matched = [
            d
            for d in documents
            if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
        ]
        assert len(matched) == 1, target
        index = documents.index(matched[0])
        documents[index] = jsonpatch.JsonPatch(operations).apply(matched[0])
    return documents

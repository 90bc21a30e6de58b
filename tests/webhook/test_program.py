"""Kubernetes' rules for what a container runs, as secrets-init's args."""

from __future__ import annotations

import pytest

from secrets_init.webhook.program import ImageConfig, NoProgramError, needs_image, program

IMAGE = ImageConfig(entrypoint=("/entry", "-x"), cmd=("serve", "--port=80"))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"command": ["/bin/app"], "args": ["a", "b"]}, ["/bin/app", "a", "b"]),
        ({"command": ["/bin/app"]}, ["/bin/app"]),  # the image's CMD is ignored
        ({"args": ["run"]}, ["/entry", "-x", "run"]),  # ENTRYPOINT + args, CMD ignored
        ({}, ["/entry", "-x", "serve", "--port=80"]),  # ENTRYPOINT + CMD
        ({"command": [], "args": []}, ["/entry", "-x", "serve", "--port=80"]),  # empty is unset
        ({"command": [], "args": ["x"]}, ["/entry", "-x", "x"]),
    ],
)
def test_kubernetes_rules(fields: dict[str, list[str]], expected: list[str]) -> None:
    container = {"name": "c", **fields}
    image = IMAGE if needs_image(container) else None
    assert program(container, image) == expected


def test_image_strings_are_escaped_for_the_kubelets_expansion() -> None:
    """In args the kubelet expands $(VAR); the image's own strings never were expanded."""
    image = ImageConfig(entrypoint=("/bin/sh", "-c"), cmd=("echo $(HOME) $$ $X",))
    assert program({"name": "c"}, image) == ["/bin/sh", "-c", "echo $$(HOME) $$$$ $$X"]
    # The pod's own strings are the kubelet's to expand, as before.
    own = {"name": "c", "args": ["$(HOME)"]}
    assert program(own, image) == ["/bin/sh", "-c", "$(HOME)"]


def test_cmd_only_image() -> None:
    assert program({"name": "c"}, ImageConfig(cmd=("/app",))) == ["/app"]


def test_nothing_to_run() -> None:
    with pytest.raises(NoProgramError, match="names a program"):
        program({"name": "c", "image": "x"}, ImageConfig())

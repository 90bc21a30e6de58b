"""The tree's parts: what decides which are unpacked agrees with the providers, and holds.

The launcher unpacks a provider family's parts when an environment value
starts with that family's prefix (packaging/parts.py, copied into the
binary's trailer). Here: those prefixes are the ones the provider registry
and PID 1's look (secrets_init.candidates) use; the built binary carries
them; and a run with only AWS references leaves no Google file on disk, and
the reverse.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

from secrets_init import candidates, providers
from testing.fake_secretmanager import FakeSecretManager
from testing.moto import DUMMY_CREDENTIALS, Aws
from testing.process import ROOT
from tests.binary.conftest import BINARY, EmptyRoot, cache_name, require_binary

sys.path.insert(0, str(ROOT / "packaging"))
import parts  # packaging/parts.py, which is not a package

SHOW = ["/bin/sh", "-c", 'echo "[$FIRST]"']
FAMILY = struct.Struct("<16s32s")
PART = struct.Struct("<16s32sQQ")
HEAD = struct.Struct("<8sQQQQIIIIII")  # packaging/pack.py's TRAILER, up to the tables


def _literal_head(prefix: str) -> str:
    """A registry prefix up to its first `*` field: what every reference starts with."""
    return prefix.split("*", 1)[0]


def test_family_prefixes_agree_with_the_provider_registry() -> None:
    prefixes = dict(parts.FAMILIES)
    assert set(prefixes) == set(providers.FAMILIES)
    for entry in providers.REGISTRY:
        for prefix in entry.prefixes:
            # Every reference of this entry starts with its family's prefix...
            assert _literal_head(prefix).startswith(prefixes[entry.family]), entry.name
            # ...and with no other family's: one look picks the one family.
            others = [p for f, p in prefixes.items() if f != entry.family]
            assert not any(_literal_head(prefix).startswith(p) for p in others), entry.name
    # PID 1's byte-prefix look is the same one.
    assert set(candidates.SCHEMES) == {p.encode() for p in prefixes.values()}


def test_every_family_has_its_parts_and_core_comes_first() -> None:
    assert parts.PARTS[0] == ("core", ())
    needed_by = {family for _, families in parts.PARTS for family in families}
    assert needed_by == {family for family, _ in parts.FAMILIES}
    assert {name for name, _ in parts.PARTS} >= {family for family, _ in parts.FAMILIES}


def test_the_binary_carries_these_prefixes_and_parts() -> None:
    require_binary()
    with BINARY.open("rb") as handle:
        handle.seek(-992, os.SEEK_END)
        trailer = handle.read()
    head = HEAD.unpack_from(trailer)
    assert head[0] == b"SIBUNDL3"
    family_count, part_count = head[7], head[8]
    at = HEAD.size
    families = []
    for i in range(family_count):
        name, prefix = FAMILY.unpack_from(trailer, at + i * FAMILY.size)
        families.append((name.rstrip(b"\0").decode(), prefix.rstrip(b"\0").decode()))
    assert tuple(families) == parts.FAMILIES
    at += 4 * FAMILY.size
    found = []
    for i in range(part_count):
        name, needed_by, _, size = PART.unpack_from(trailer, at + i * PART.size)
        assert size > 0
        found.append((name.rstrip(b"\0").decode(), needed_by.rstrip(b"\0").decode()))
    assert found == [(name, ",".join(families)) for name, families in parts.PARTS]


def _unpacked(root: EmptyRoot) -> Path:
    return root.path / "tmp" / cache_name()


def _manifests(tree: Path) -> list[str]:
    return sorted(p.name for p in tree.glob("secrets-init.*.manifest"))


def _show_first(root: EmptyRoot, env: dict[str, str], shown: str) -> tuple[list[str], set[str]]:
    """Run the binary showing FIRST; the manifests and the file names of the tree it unpacked."""
    done = root.run(["/secrets-init", "--", *SHOW], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shown
    tree = _unpacked(root)
    return _manifests(tree), {p.name for p in tree.rglob("*")}


def test_aws_references_unpack_no_google_file(empty_root: EmptyRoot, aws: Aws) -> None:
    aws.parameter("flag", "on")
    env = {
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
        "FIRST": aws.ssm_ref("flag"),
    }
    manifests, names = _show_first(empty_root, env, "[on]")
    assert manifests == [f"secrets-init.{p}.manifest" for p in ("aws", "core", "tls")]
    assert not names & {"cryptography", "google", "charset_normalizer"}
    assert "botocore" in names


def test_google_references_unpack_no_aws_file(
    empty_root: EmptyRoot, gsm: FakeSecretManager
) -> None:
    gsm.add_secret("my-project", "key", "g-value")
    env = {
        "SECRETMANAGER_EMULATOR_HOST": gsm.address,
        "FIRST": "gcp:secretmanager:projects/my-project/secrets/key",
    }
    manifests, names = _show_first(empty_root, env, "[g-value]")
    assert manifests == [f"secrets-init.{p}.manifest" for p in ("core", "google", "tls")]
    assert not names & {"botocore", "dateutil", "jmespath"}
    assert {"google", "cryptography"} <= names


def test_no_references_unpack_only_core(empty_root: EmptyRoot) -> None:
    manifests, names = _show_first(empty_root, {"FIRST": "plain"}, "[plain]")
    assert manifests == ["secrets-init.core.manifest"]
    assert not names & {"botocore", "google", "libssl.so.3", "libcrypto.so.3"}


def test_a_later_run_adds_the_parts_it_needs_to_the_same_tree(
    empty_root: EmptyRoot, gsm: FakeSecretManager
) -> None:
    """A malformed AWS reference fails in the child, after the aws part was unpacked."""
    gsm.add_secret("my-project", "key", "g-value")
    done = empty_root.run(["/secrets-init", "--", "true"], {"FIRST": "arn:aws:ssm:x"})
    assert done.returncode == 1 and "FIRST" in done.stderr
    tree = _unpacked(empty_root)
    marker = tree / "marker"
    marker.write_text("same tree")
    env = {
        "SECRETMANAGER_EMULATOR_HOST": gsm.address,
        "FIRST": "gcp:secretmanager:projects/my-project/secrets/key",
    }
    done = empty_root.run(["/secrets-init", "--", *SHOW], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[g-value]"
    assert marker.read_text() == "same tree"
    assert _manifests(tree) == [
        f"secrets-init.{p}.manifest" for p in ("aws", "core", "google", "tls")
    ]
    assert not list(tree.rglob("*.unpacking"))


@pytest.mark.parametrize("family", ["aws", "google"])
def test_two_starts_at_once_that_need_different_parts_both_run(
    tmp_path: Path, empty_root: EmptyRoot, family: str
) -> None:
    """Two containers of one pod, one /tmp volume: one needs core only, the other a family more."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    value = "arn:aws:ssm:x" if family == "aws" else "gcp:secretmanager:bad name"
    argv = ["/secrets-init", "--", "/bin/sh", "-c", "echo ran"]
    starts = [
        empty_root.start(argv, {"FIRST": v}, binds=[(shared, "tmp")])
        for v in ("plain", value, "plain", value)
    ]
    results = [start.communicate(timeout=120) for start in starts]
    statuses = [start.returncode for start in starts]
    # The plain ones run; those with a malformed reference get as far as parsing it.
    assert statuses == [0, 1, 0, 1], results
    assert all("ran" in out for (out, _), s in zip(results, statuses, strict=True) if s == 0)
    tree = shared / cache_name()
    assert _manifests(tree) == sorted(f"secrets-init.{p}.manifest" for p in ("core", "tls", family))
    assert sorted(p.name for p in shared.iterdir()) == [cache_name()]

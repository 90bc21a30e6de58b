"""The scratch image, built from dist/secrets-init with podman and run with runc.

What the README's "Use it in Docker" and "Use it in Kubernetes" sections
promise, checked in real containers: the image holds only /secrets-init and
runs as a non-root user; `podman stop` ends a supervised program through
secrets-init as PID 1 with status 143 (SIGTERM forwarded, not the SIGKILL
that follows the stop timeout); secrets from a local AWS emulator reach the
program inside the container; and the initContainer patterns work with
read-only root filesystems, no shell and no cp: `lay` (examples/kubernetes),
after which the application container writes nothing for secrets-init, and
`copy`, for images that copy the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.moto import ACCOUNT, DUMMY_CREDENTIALS, start_moto
from tests.container.examples import size_limits
from tests.container.podman import Podman

HELPER = "/helper/bin"  # the shared volume's mount path in examples/kubernetes

pytestmark = pytest.mark.container

NON_ROOT = "65532:65532"
# The image has no directory of its own to unpack into; a tmpfs that allows
# executables will do (Docker's and podman's --tmpfs default to noexec).
EXEC_TMP = ("--tmpfs", "/tmp:rw,exec,nosuid,nodev,mode=1777")
# A read-only root as Kubernetes' readOnlyRootFilesystem makes it (and as Docker's
# --read-only does): podman's --read-only alone would add writable tmpfs mounts.
READ_ONLY = ("--read-only", "--read-only-tmpfs=false")


def test_image_holds_only_the_binary(
    podman: Podman, image: str, binary: Path, tmp_path: Path
) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == NON_ROOT
    assert config["Entrypoint"] == ["/secrets-init"]
    assert not config.get("Cmd")

    archive = tmp_path / "image.tar"
    podman("save", "--format", "docker-archive", "--output", str(archive), image)
    files: dict[str, tuple[int, int, bytes]] = {}
    with tarfile.open(archive) as saved:
        manifest = json.load(_member(saved, "manifest.json"))
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=_member(saved, layer_name)) as layer:
                for entry in layer.getmembers():
                    if not entry.isdir():
                        files[entry.name.removeprefix("./")] = (
                            stat.S_IMODE(entry.mode),
                            entry.uid,
                            _member(layer, entry.name).read(),
                        )
    assert list(files) == ["secrets-init"]
    mode, uid, content = files["secrets-init"]
    assert mode == 0o755
    assert uid == 0  # owned by root: the user the image runs as cannot replace it
    assert content == binary.read_bytes()


def _member(archive: tarfile.TarFile, name: str) -> Any:
    extracted = archive.extractfile(name)
    assert extracted is not None, name
    return extracted


def test_stop_ends_the_program_with_143(podman: Podman, image_with_child: str) -> None:
    """SIGTERM from `podman stop` reaches the program: 143, not 137 from the SIGKILL after -t."""
    name = podman.start(
        image_with_child,
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        'echo "ready pid=$$ ppid=$PPID uid=$(/bin/busybox id -u)"; exec /bin/busybox sleep 600',
        options=[*EXEC_TMP, "--network", "none"],
    )
    try:
        logs = podman.wait_for_output(name, "ready")
        # secrets-init is PID 1 and the program's parent; the program runs as the image's user.
        assert "ppid=1 " in logs
        assert "uid=65532" in logs
        started = time.monotonic()
        podman("stop", "--time", "30", name, timeout=60)
        took = time.monotonic() - started
        assert podman.exit_code(name) == 143
        print(f"podman stop took {took:.2f}s (stop timeout 30s)")
    finally:
        podman.remove(name)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with start_moto() as server:
        yield server.url


def _aws_options(endpoint: str) -> list[str]:
    """Reach AWS only at the emulator on this host's loopback, with dummy credentials."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
    }
    options = ["--network", "host"]
    for key, value in env.items():
        options += ["--env", f"{key}={value}"]
    return options


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _secrets(endpoint: str) -> dict[str, tuple[str, str]]:
    """Fresh secrets in the emulator: variable -> (reference, the value the program must see)."""
    prefix = f"container-{os.urandom(4).hex()}"
    sm = _client(endpoint, "secretsmanager")
    whole = sm.create_secret(Name=f"{prefix}/token", SecretString="tok-4711")["ARN"]
    sm.create_secret(Name=f"{prefix}/db", SecretString='{"password": "pw-from-json"}')
    _client(endpoint, "ssm").put_parameter(
        Name=f"/{prefix}/level", Value="param-42", Type="SecureString"
    )
    account_region = f"us-east-1:{ACCOUNT}"
    return {
        "API_TOKEN": (whole, "tok-4711"),
        "DB_PASSWORD": (
            f"arn:aws:secretsmanager:{account_region}:secret:{prefix}/db:password::",
            "pw-from-json",
        ),
        "LOG_LEVEL": (f"arn:aws:ssm:{account_region}:parameter/{prefix}/level", "param-42"),
    }


def _show(variables: list[str]) -> list[str]:
    """A busybox program that prints each variable as NAME=value, then its parent's pid."""
    script = "; ".join(f'echo "{name}=${name}"' for name in variables)
    return ["/bin/busybox", "sh", "-c", f'{script}; echo "ppid=$PPID"']


def test_secrets_reach_the_program_in_the_container(
    podman: Podman, image_with_child: str, moto: str
) -> None:
    secrets = _secrets(moto)
    options = [*EXEC_TMP, *_aws_options(moto)]
    for variable, (reference, _) in secrets.items():
        options += ["--env", f"{variable}={reference}"]
    done = podman.run(image_with_child, "--", *_show(list(secrets)), options=options)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for variable, (_, value) in secrets.items():
        assert f"{variable}={value}" in lines
    assert "ppid=1" in lines


def test_without_a_writable_directory_it_says_what_to_do(podman: Podman, image: str) -> None:
    done = podman.run(image, "--version", options=[*READ_ONLY, "--network", "none"])
    assert done.returncode == 125
    assert "SECRETS_INIT_CACHE" in done.stderr


@pytest.fixture
def helper_volume(tmp_path: Path) -> Iterator[Path]:
    """A host directory standing for the pod's emptyDir, which is world-writable like one."""
    volume = tmp_path / "helper-bin"
    volume.mkdir()
    volume.chmod(0o777)
    yield volume
    shutil.rmtree(volume)  # the binary: 13 MB that pytest would keep


def _init_container(podman: Podman, image: str, volume: Path) -> None:
    """examples/kubernetes: the initContainer, read-only root, no shell, no cp.

    The volume is its only writable directory, and nothing says where to
    unpack: `copy` is done by the launcher, which unpacks nothing.
    """
    done = podman.run(
        image,
        "copy",
        "/helper/bin",
        options=[*READ_ONLY, "--network", "none", "--volume", f"{volume}:/helper/bin"],
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "secrets-init: info: copied to /helper/bin/secrets-init\n"


def test_copy_into_a_volume(podman: Podman, image: str, binary: Path, helper_volume: Path) -> None:
    _init_container(podman, image, helper_volume)
    assert os.listdir(helper_volume) == ["secrets-init"]  # no unpacked tree, no temporary file
    copied = helper_volume / "secrets-init"
    assert copied.read_bytes() == binary.read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o755
    assert copied.stat().st_uid == 65532
    # It fits the examples' memory-backed emptyDir for the binary.
    assert -(-copied.stat().st_size // 4096) * 4096 <= min(size_limits(HELPER))


def test_kubernetes_copy_pattern(
    podman: Podman, image: str, app_image: str, helper_volume: Path, moto: str
) -> None:
    """The older pattern, for images that copy the file: copy, then run from the volume.

    The application image has no secrets-init, no shell in PATH and a read-only
    root; it runs the copied binary from the shared volume, mounted read-only,
    which unpacks itself into the container's own /tmp: a memory-backed
    emptyDir (a tmpfs of its sizeLimit), 64Mi here.
    """
    _init_container(podman, image, helper_volume)
    secrets = _secrets(moto)
    tmp_size = 64 * 2**20
    options = [
        *READ_ONLY,
        "--volume",
        f"{helper_volume}:/helper/bin:ro",
        "--tmpfs",
        f"/tmp:rw,exec,nosuid,nodev,mode=1777,size={tmp_size}",
        *_aws_options(moto),
    ]
    for variable, (reference, _) in secrets.items():
        options += ["--env", f"{variable}={reference}"]
    program = _show(list(secrets))
    program[-1] += '; echo "pid1=$(/bin/busybox readlink /proc/1/exe)"'
    done = podman.run(app_image, "/helper/bin/secrets-init", "--", *program, options=options)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for variable, (_, value) in secrets.items():
        assert f"{variable}={value}" in lines
    assert "ppid=1" in lines
    # PID 1 is the bootloader of the tree unpacked in /tmp; the shared volume is untouched.
    [pid1] = [line for line in lines if line.startswith("pid1=")]
    assert re.fullmatch(r"pid1=/tmp/\.secrets-init-65532-[0-9a-f]+/secrets-init", pid1), pid1
    assert os.listdir(helper_volume) == ["secrets-init"]


def _lay(podman: Podman, image: str, volume: Path, *families: str) -> str:
    """examples/kubernetes: the initContainer lays the tree; its stderr."""
    done = podman.run(
        image,
        "lay",
        HELPER,
        *families,
        options=[*READ_ONLY, "--network", "none", "--volume", f"{volume}:{HELPER}"],
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def _snapshot(volume: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under the volume with its mode, size and modification time."""
    found = {}
    for path in sorted(volume.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(volume))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def test_kubernetes_lay_pattern(
    podman: Podman, image: str, app_image: str, tmp_path: Path, moto: str
) -> None:
    """examples/kubernetes/eks, played by podman: lay once, then run the tree in place.

    The shared volume stands for a memory-backed emptyDir (a tmpfs: mode 1777).
    The application container, another user, has a read-only root and no
    writable directory at all but the runtime's /dev/shm; the volume is
    mounted read-only. It resolves its secrets, and afterwards the volume is
    exactly as the initContainer left it and /dev/shm is empty: it wrote nothing.
    """
    volume = tmp_path / "helper-bin"
    volume.mkdir()
    volume.chmod(0o1777)
    said = _lay(podman, image, volume, "aws")
    assert re.fullmatch(
        r"secrets-init: info: laid core\+tls\+aws in /helper/bin/\.secrets-init-[0-9a-f]+; "
        r"run /helper/bin/secrets-init\n",
        said,
    ), said
    [tree] = [p for p in volume.iterdir() if p.name.startswith(".secrets-init-")]
    assert sorted(p.name for p in volume.iterdir()) == [tree.name, "secrets-init"]
    # Only AWS references: no Google file on disk.
    internal = tree / "_internal"
    assert not (internal / "grpc").exists() and not (internal / "cryptography").exists()
    assert not (internal / "google").exists()
    assert (internal / "botocore").is_dir()
    size = sum(p.lstat().st_size for p in volume.rglob("*") if not p.is_dir())
    assert size <= min(size_limits(HELPER))
    before = _snapshot(volume)

    secrets = _secrets(moto)
    options = [*READ_ONLY, "--user", "1000:1000", "--volume", f"{volume}:{HELPER}:ro"]
    options += _aws_options(moto)
    for variable, (reference, _) in secrets.items():
        options += ["--env", f"{variable}={reference}"]
    program = _show(list(secrets))
    program[-1] += '; echo "pid1=$(/bin/busybox readlink /proc/1/exe)"'
    program[-1] += '; echo "shm=$(/bin/busybox ls -A /dev/shm)"'
    done = podman.run(app_image, f"{HELPER}/secrets-init", "--", *program, options=options)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for variable, (_, value) in secrets.items():
        assert f"{variable}={value}" in lines
    assert "ppid=1" in lines
    assert f"pid1={HELPER}/{tree.name}/secrets-init" in lines  # the laid tree, in place
    assert "shm=" in lines
    assert _snapshot(volume) == before


def test_a_reference_of_a_family_not_laid_says_what_to_lay(
    podman: Podman, image: str, app_image: str, tmp_path: Path
) -> None:
    volume = tmp_path / "helper-bin"
    volume.mkdir()
    volume.chmod(0o1777)
    _lay(podman, image, volume, "aws")
    done = podman.run(
        app_image,
        f"{HELPER}/secrets-init", "--", "/bin/busybox", "true",
        options=[
            *READ_ONLY, "--network", "none", "--volume", f"{volume}:{HELPER}:ro",
            "--env", "KEY=gcp:secretmanager:projects/p/secrets/key",
        ],
    )  # fmt: skip
    assert done.returncode == 125
    assert "lacks google (not laid, or incomplete), which references here need" in done.stderr
    assert f"`secrets-init lay {HELPER} google`" in done.stderr

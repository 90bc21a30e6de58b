"""A pod spec played with podman the way the kubelet would run it, for what these pods use.

initContainers one after another, each to completion, then the first
container; `command`/`args` over the image's ENTRYPOINT/CMD with `$(VAR)`
expanded as the kubelet does; env values; emptyDir volumes (a memory-backed
one is a sticky tmpfs in Kubernetes: here a host directory of mode 1777 when
containers share it, a tmpfs of its sizeLimit when one container has it);
read-only mounts; the security context: user and group, a read-only root,
dropped capabilities, no privilege escalation.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Protocol

from kubernetes.utils import parse_quantity

_VARIABLE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's expansion: `$$` is `$`, `$(NAME)` a defined variable's value."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VARIABLE.sub(one, text)


class Runtime(Protocol):
    """What the kubelet asks of podman (tests/container/podman.py's Podman)."""

    def run(
        self, image: str, *args: str, options: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]: ...


class Kubelet:
    def __init__(self, podman: Runtime, directory: Path, images: dict[str, str]) -> None:
        self.podman = podman
        self.directory = directory
        self.images = images  # the pod's image names -> local podman tags

    def run(self, pod: dict[str, Any], network: str = "host") -> subprocess.CompletedProcess[str]:
        """Run the pod; returns the first container's result (an initContainer's if one fails)."""
        spec = pod["spec"]
        containers = [*spec.get("initContainers", []), *spec["containers"][:1]]
        users = {v["name"]: 0 for v in spec.get("volumes", [])}
        for container in containers:
            for mount in container.get("volumeMounts", []):
                users[mount["name"]] += 1
        sources: dict[str, list[str]] = {}
        for volume in spec.get("volumes", []):
            empty = volume["emptyDir"]
            if users[volume["name"]] > 1:
                host = self.directory / volume["name"]
                host.mkdir()
                host.chmod(0o1777 if empty.get("medium") == "Memory" else 0o777)
                sources[volume["name"]] = ["--volume", f"{host}:{{path}}{{ro}}"]
            else:
                size = int(parse_quantity(empty.get("sizeLimit", "64Mi")))
                sources[volume["name"]] = [
                    "--tmpfs",
                    f"{{path}}:rw,exec,nosuid,nodev,mode=1777,size={size}",
                ]
        pod_context = spec.get("securityContext") or {}
        done = None
        for container in containers:
            done = self._container(container, pod_context, sources, network)
            if done.returncode != 0:
                return done
        assert done is not None
        return done

    def _container(
        self,
        container: dict[str, Any],
        pod_context: dict[str, Any],
        sources: dict[str, list[str]],
        network: str,
    ) -> subprocess.CompletedProcess[str]:
        context = {**pod_context, **(container.get("securityContext") or {})}
        options = ["--network", network, "--cap-drop", "ALL"]
        if "runAsUser" in context:
            options += ["--user", f"{context['runAsUser']}:{context.get('runAsGroup', 0)}"]
        if context.get("readOnlyRootFilesystem"):
            options += ["--read-only", "--read-only-tmpfs=false"]
        if context.get("allowPrivilegeEscalation") is False:
            options += ["--security-opt", "no-new-privileges"]
        env: dict[str, str] = {}
        for variable in container.get("env", []):
            env[variable["name"]] = expand(variable["value"], env)
            options += ["--env", f"{variable['name']}={env[variable['name']]}"]
        for mount in container.get("volumeMounts", []):
            template = sources[mount["name"]]
            ro = ":ro" if mount.get("readOnly") else ""
            options += [template[0], template[1].format(path=mount["mountPath"], ro=ro)]
        image = self.images[container["image"]]
        argv = [expand(a, env) for a in container.get("args", [])]
        if container.get("command"):
            command = [expand(c, env) for c in container["command"]]
            options += ["--entrypoint", json.dumps(command)]
        return self.podman.run(image, *argv, options=options, timeout=180)

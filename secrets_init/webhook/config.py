"""The webhook's options, each with a `SECRETS_INIT_WEBHOOK_*` environment twin.

argparse is fine here: the webhook is a long-running server, unlike
secrets-init, whose start-up cost every container pays. A flag on the command
line wins over its twin, as in secrets-init.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PREFIX = "SECRETS_INIT_WEBHOOK_"


@dataclass(frozen=True)
class Options:
    tls_cert_file: str
    tls_key_file: str
    image: str
    host: str
    port: int
    namespace: str
    exclude_namespaces: tuple[str, ...]
    platform: str
    tag_cache_seconds: float
    registry_timeout: float
    api_timeout: float
    log_level: str


class OptionsError(Exception):
    """A bad command line or twin; the message names the option."""


def _twin(flag: str) -> str:
    return PREFIX + flag[2:].replace("-", "_").upper()


# flag, required, default, help
_TABLE: tuple[tuple[str, bool, str, str], ...] = (
    ("--tls-cert-file", True, "", "server certificate (PEM); reloaded when it changes"),
    ("--tls-key-file", True, "", "its private key (PEM); reloaded when it changes"),
    ("--image", True, "", "the secrets-init image the injected initContainer runs"),
    ("--listen", False, "0.0.0.0:8443", "HOST:PORT to serve HTTPS on"),
    ("--namespace", False, "", "the webhook's own namespace, never mutated"),
    ("--exclude-namespaces", False, "", "more namespaces never mutated, comma-separated"),
    ("--platform", False, "linux/amd64", "OS/ARCH picked from a multi-platform image"),
    ("--tag-cache-seconds", False, "300", "how long a tag's ENTRYPOINT/CMD is cached"),
    ("--registry-timeout", False, "4", "seconds for one image's registry lookup"),
    ("--api-timeout", False, "3", "seconds for one Kubernetes API read"),
    ("--log-level", False, "info", "debug, info, warning or error"),
)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="secrets-init-webhook",
        description="Mutating admission webhook that injects secrets-init into pods "
        "with secret references. Every option can also be set as "
        f"{PREFIX}<NAME> (e.g. {PREFIX}IMAGE); the command line wins.",
        exit_on_error=False,
    )
    for flag, required, default, help in _TABLE:
        twin = _twin(flag)
        value = environ.get(twin, default)
        parser.add_argument(
            flag,
            default=value,
            required=required and not value,
            help=f"{help} (env {twin}" + (f", default {default})" if default else ")"),
        )
    try:
        args = parser.parse_args(list(argv))
    except argparse.ArgumentError as error:
        raise OptionsError(str(error)) from None
    host, _, port = str(args.listen).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionsError(f"--listen: expected HOST:PORT, got {args.listen!r}")
    if args.log_level not in ("debug", "info", "warning", "error"):
        raise OptionsError(f"--log-level: {args.log_level!r} is not debug, info, warning or error")
    if "/" not in args.platform:
        raise OptionsError(f"--platform: expected OS/ARCH, got {args.platform!r}")
    return Options(
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        image=args.image,
        host=host.strip("[]"),
        port=int(port),
        namespace=args.namespace,
        exclude_namespaces=tuple(n for n in str(args.exclude_namespaces).split(",") if n),
        platform=args.platform,
        tag_cache_seconds=_seconds("--tag-cache-seconds", args.tag_cache_seconds),
        registry_timeout=_seconds("--registry-timeout", args.registry_timeout),
        api_timeout=_seconds("--api-timeout", args.api_timeout),
        log_level=args.log_level,
    )


def _seconds(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OptionsError(f"{flag}: not a number of seconds: {text!r}") from None
    if value < 0:
        raise OptionsError(f"{flag}: must not be negative")
    return value

"""Command line and `SECRETS_INIT_*` environment, turned into one `Settings` value.

Hand-written rather than argparse: this runs on every container start, and the
option set is small and fixed. Every option has an environment twin
(`--log-level` is `SECRETS_INIT_LOG_LEVEL`); a flag on the command line wins.
`--check` deliberately has no twin, so a container can never get stuck in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secrets_init import signals

USAGE = """\
usage: secrets-init [OPTIONS] [--] COMMAND [ARG...]
       secrets-init copy DEST_DIR
       secrets-init --version | --help
"""

HELP = (
    USAGE
    + """
Resolve cloud secret references in the environment (AWS Secrets Manager and
SSM Parameter Store ARNs, gcp:secretmanager: names), then run COMMAND with the
resolved environment as a child, forward signals to it, reap zombies, and exit
with its status.

options (each also settable as SECRETS_INIT_<NAME>, e.g. SECRETS_INIT_LOG_LEVEL;
the command line wins):
  --log-level {debug,info,warning,error}   log verbosity on stderr (default info)
  --log-format {text,json}                 one text or JSON line per event (default text)
  --provider {aws,google}                  only resolve this provider's references
                                           (default: every reference by its prefix)
  --wait-all                               after COMMAND exits, wait for every descendant
                                           (default: SIGTERM what is left of its group)
  --signal-mode {group,child}              forward signals to COMMAND's process group
                                           or to its pid only (default group)
  --rewrite SIG:SIG                        rewrite a received signal before forwarding;
                                           repeatable; env: comma-separated; 0 drops it
  --timeout SECONDS                        deadline for resolving all secrets (default 30)
  --expand-json                            a JSON-object secret without a key becomes one
                                           variable per key (the original tool's behaviour)
  --google-project PROJECT                 project for short gcp:secretmanager:<secret> names
  --secrets-dir DIR                        where ?destination=tempfile files go
                                           (default /dev/shm if writable, else the temp dir)
  -i, --interactive                        accepted for compatibility (stdin is always passed)
  --check                                  resolve everything, print one status line per
                                           reference (never a value), exit 0 or 1; COMMAND
                                           is not run; no environment twin
  --version                                print the version and exit
  -h, --help                               print this help and exit

subcommands:
  copy DEST_DIR                            copy this executable to DEST_DIR/secrets-init
                                           (mode 0755), for Kubernetes initContainers
"""
)

_TRUE = frozenset(("1", "true", "yes"))
_FALSE = frozenset(("0", "false", "no", ""))
_CHOICES = {
    "log_level": ("debug", "info", "warning", "error"),
    "log_format": ("text", "json"),
    "provider": ("aws", "google"),
    "signal_mode": ("group", "child"),
}
_BOOLEANS = ("wait_all", "interactive", "expand_json")
_VALUED = ("log_level", "log_format", "provider", "signal_mode", "timeout", "google_project",
           "secrets_dir", "rewrite")  # fmt: skip


class UsageError(Exception):
    """Bad command line or SECRETS_INIT_* value; exit status 2."""


class Settings:
    """Everything one run needs to know. A plain class, not a dataclass: the
    `dataclasses` import (through `inspect`) would add ~7 ms to every start."""

    __slots__ = (
        "action",
        "command",
        "copy_dest",
        "expand_json",
        "google_project",
        "interactive",
        "log_format",
        "log_level",
        "provider",
        "rewrite",
        "secrets_dir",
        "signal_mode",
        "timeout",
        "wait_all",
    )  # fmt: skip

    def __init__(self) -> None:
        self.action = "run"  # run | check | copy | version | help
        self.command: list[str] = []
        self.copy_dest = ""
        self.log_level = "info"
        self.log_format = "text"
        self.provider: str | None = None
        self.wait_all = False
        self.signal_mode = "group"
        self.rewrite: dict[int, int] = {}
        self.timeout = 30.0
        self.interactive = False
        self.expand_json = False
        self.google_project: str | None = None
        self.secrets_dir: str | None = None


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Build Settings from the environment, then let the command line override it."""
    settings = Settings()
    raw: dict[str, str | bool | list[str]] = {}
    for name in (*_VALUED, *_BOOLEANS):
        value = environ.get("SECRETS_INIT_" + name.upper())
        if value is not None:
            raw[name] = _env_bool(name, value) if name in _BOOLEANS else value
    if isinstance(raw.get("rewrite"), str):
        raw["rewrite"] = [part for part in str(raw["rewrite"]).split(",") if part.strip()]

    args = list(argv)
    flag_rewrites: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            settings.command = args[index + 1 :]
            break
        if not arg.startswith("-") or arg == "-":
            if index == 0 and arg == "copy":
                if len(args) != 2:
                    raise UsageError("copy takes exactly one argument: DEST_DIR")
                settings.action = "copy"
                settings.copy_dest = args[1]
                break
            settings.command = args[index:]
            break
        name, has_value, inline = arg.partition("=")
        key = name.lstrip("-").replace("-", "_")
        if name in ("-h", "--help"):
            settings.action = "help"
            return settings
        if name == "--version":
            settings.action = "version"
            return settings
        if name == "--check":
            settings.action = "check"
        elif name in ("-i", "--interactive") or (name.startswith("--") and key in _BOOLEANS):
            if has_value:
                raise UsageError(f"{name} takes no value")
            raw["interactive" if name == "-i" else key] = True
        elif name.startswith("--") and key in _VALUED:
            if has_value:
                value = inline
            else:
                index += 1
                if index >= len(args):
                    raise UsageError(f"{name} needs a value")
                value = args[index]
            if key == "rewrite":
                flag_rewrites.append(value)
            else:
                raw[key] = value
        else:
            raise UsageError(f"unknown option: {arg}")
        index += 1
    if flag_rewrites:
        raw["rewrite"] = flag_rewrites

    _apply(settings, raw)
    if settings.action == "run" and not settings.command:
        raise UsageError("missing COMMAND to run (use: secrets-init [OPTIONS] -- COMMAND [ARG...])")
    return settings


def _env_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(
        f"SECRETS_INIT_{name.upper()}: expected 1/true/yes or 0/false/no, got {value!r}"
    )


def _apply(settings: Settings, raw: Mapping[str, str | bool | list[str]]) -> None:
    for key, value in raw.items():
        if key in _CHOICES:
            assert isinstance(value, str)
            if value not in _CHOICES[key]:
                choices = ", ".join(_CHOICES[key])
                raise UsageError(f"--{key.replace('_', '-')}: {value!r} is not one of {choices}")
            setattr(settings, key, value)
        elif key == "timeout":
            assert isinstance(value, str)
            try:
                settings.timeout = float(value)
            except ValueError:
                raise UsageError(f"--timeout: not a number of seconds: {value!r}") from None
            if not 0 < settings.timeout < 86400:
                raise UsageError(f"--timeout: must be between 0 and 86400 seconds: {value!r}")
        elif key == "rewrite":
            assert isinstance(value, list)
            settings.rewrite = parse_rewrites(value)
        elif key in ("google_project", "secrets_dir"):
            assert isinstance(value, str)
            setattr(settings, key, value or None)
        else:
            setattr(settings, key, bool(value))


def parse_rewrites(specs: Sequence[str]) -> dict[int, int]:
    table: dict[int, int] = {}
    for spec in specs:
        source, sep, target = spec.partition(":")
        if not sep:
            raise UsageError(f"--rewrite: expected SIG:SIG, got {spec!r}")
        try:
            from_number = signals.parse_signal(source)
            to_number = signals.parse_signal(target)
        except ValueError as error:
            raise UsageError(f"--rewrite {spec}: {error}") from None
        if from_number == 0:
            raise UsageError(f"--rewrite {spec}: cannot rewrite signal 0")
        table[from_number] = to_number
    return table

"""Command line and `SECRETS_INIT_*` environment, turned into one `Settings` value.

Every option is declared once, in `OPTIONS`: its flag, environment twin,
default and help come from that one row, and both parsing and `--help` read
it. Hand-written rather than argparse: this runs on every container start, and
the option set is small and fixed. A flag on the command line wins over its
twin. `--check` deliberately has no twin, so a container can never get stuck
in it.
"""

from secrets_init import signals

# Annotations only: PID 1 imports this module, and collections.abc (through collections)
# or typing would add a millisecond or more to every container start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

USAGE = """\
usage: secrets-init [OPTIONS] [--] COMMAND [ARG...]
       secrets-init copy DEST_DIR
       secrets-init lay DEST_DIR [aws|google|all|none...]
       secrets-init --version | --help
"""

_ABOUT = """
Resolve cloud secret references in the environment (AWS Secrets Manager and
SSM Parameter Store ARNs, gcp:secretmanager: names), then run COMMAND with the
resolved environment as a child, forward signals to it, reap zombies, and exit
with its status.

options (each also settable as SECRETS_INIT_<NAME>, e.g. SECRETS_INIT_LOG_LEVEL;
the command line wins):
"""

_SUBCOMMANDS = """
subcommands:
  copy DEST_DIR                            copy this executable to DEST_DIR/secrets-init
                                           (mode 0755), for Kubernetes initContainers
  lay DEST_DIR [FAMILY...]                 single-file binary only: unpack what references of
                                           these provider families need (all when none is
                                           named) into DEST_DIR, ready to run read-only as
                                           DEST_DIR/secrets-init, for Kubernetes initContainers
"""

# How an option's value is read. FLAG takes none (its twin is a boolean);
# LIST may repeat on the command line and is comma-separated in its twin.
FLAG, VALUE, LIST = "flag", "value", "list"


class Option:
    """One row of the option table.

    A plain class, not a dataclass: PID 1 parses the options, and importing
    `dataclasses` (through `inspect`) would add ~7 ms to every container start.
    """

    __slots__ = (
        "choices",
        "default",
        "default_help",
        "flag",
        "help",
        "kind",
        "metavar",
        "short",
        "twin",
    )

    def __init__(
        self,
        flag: str,
        kind: str,
        help: tuple[str, ...],
        *,
        metavar: str = "",
        choices: tuple[str, ...] = (),
        default: object = None,
        default_help: str = "",
        short: str = "",
        twin: bool = True,
    ) -> None:
        self.flag = flag
        self.kind = kind
        self.help = help  # lines as --help prints them, without the default
        self.metavar = metavar or ("{" + ",".join(choices) + "}" if choices else "")
        self.choices = choices
        self.default = default  # the Settings value when neither flag nor twin is given
        # What --help says the default is, when the value itself does not say it.
        self.default_help = default_help or (
            f"{default:g}" if isinstance(default, float) else str(default or "")
        )
        self.short = short
        self.twin = twin

    @property
    def attribute(self) -> str:
        """The Settings attribute, and the twin's suffix in upper case."""
        return self.flag[2:].replace("-", "_")

    @property
    def variable(self) -> str:
        return "SECRETS_INIT_" + self.attribute.upper()


OPTIONS: tuple[Option, ...] = (
    Option(
        "--log-level",
        VALUE,
        ("log verbosity on stderr",),
        choices=("debug", "info", "warning", "error"),
        default="info",
    ),
    Option(
        "--log-format",
        VALUE,
        ("one text or JSON line per event",),
        choices=("text", "json"),
        default="text",
    ),
    Option(
        "--provider",
        VALUE,
        ("only resolve this provider's references",),
        choices=("aws", "google"),  # providers.FAMILIES (a test keeps them equal)
        default_help="every reference by its prefix",
    ),
    Option(
        "--wait-all",
        FLAG,
        ("after COMMAND exits, wait for every descendant",),
        default=False,
        default_help="SIGTERM what is left of its group",
    ),
    Option(
        "--signal-mode",
        VALUE,
        ("forward signals to COMMAND's process group", "or to its pid only"),
        choices=("group", "child"),
        default="group",
    ),
    Option(
        "--rewrite",
        LIST,
        (
            "rewrite a received signal before forwarding;",
            "repeatable; env: comma-separated; 0 drops it",
        ),
        metavar="SIG:SIG",
        default={},
    ),
    Option(
        "--timeout",
        VALUE,
        ("deadline for resolving all secrets",),
        metavar="SECONDS",
        default=30.0,
    ),
    Option(
        "--expand-json",
        FLAG,
        (
            "a JSON-object secret without a key becomes one",
            "variable per key (the original tool's behaviour)",
        ),
        default=False,
    ),
    Option(
        "--google-project",
        VALUE,
        ("project for short gcp:secretmanager:<secret> names",),
        metavar="PROJECT",
    ),
    Option(
        "--secrets-dir",
        VALUE,
        ("where ?destination=tempfile files go",),
        metavar="DIR",
        default_help="/dev/shm if writable, else the temp dir",
    ),
    Option(
        "--interactive",
        FLAG,
        ("accepted for compatibility (stdin is always passed)",),
        default=False,
        short="-i",
    ),
    Option(
        "--refresh",
        VALUE,
        (
            "fetch every reference again every DURATION",
            "(90, 90s, 5m, 1h; at least 1s; +-10% jitter);",
            "see docs/rotation.md",
        ),
        metavar="DURATION",
        default_help="off",
    ),
    Option(
        "--refresh-signal",
        VALUE,
        ("sent to COMMAND when a secret file changed;", "0 for none"),
        metavar="SIG",
        default=signals.SIGHUP,
        default_help="HUP",
    ),
    Option(
        "--on-change",
        VALUE,
        (
            "when an environment secret changed: restart",
            "COMMAND, or stop it and exit with status 75",
        ),
        choices=("restart", "exit"),
        default="restart",
    ),
    Option(
        "--stop-timeout",
        VALUE,
        ("SIGKILL a program told to stop after DURATION",),
        metavar="DURATION",
        default=10.0,
        default_help="10s",
    ),
    Option(
        "--check",
        FLAG,
        (
            "resolve everything, print one status line per",
            "reference (never a value), exit 0 or 1; COMMAND",
            "is not run; no environment twin",
        ),
        twin=False,
    ),
)

_BY_FLAG = {name: option for option in OPTIONS for name in (option.flag, option.short) if name}
_TRUE = frozenset(("1", "true", "yes"))
_FALSE = frozenset(("0", "false", "no", ""))
_HELP_COLUMN = 43


def help_text() -> str:
    """`--help`, built from OPTIONS so that a new option cannot be left out of it."""
    rows: list[tuple[str, tuple[str, ...]]] = []
    for option in OPTIONS:
        left = f"{option.short}, {option.flag}" if option.short else option.flag
        lines = list(option.help)
        shown = option.default_help
        if shown and len(lines[-1]) + len(f" (default {shown})") <= 48:
            lines[-1] += f" (default {shown})"
        elif shown:
            lines.append(f"(default: {shown})")
        rows.append((f"{left} {option.metavar}".rstrip(), tuple(lines)))
    rows.append(("--version", ("print the version and exit",)))
    rows.append(("-h, --help", ("print this help and exit",)))
    body = []
    for left, text in rows:
        body.append(f"  {left:<{_HELP_COLUMN - 2}}{text[0]}")
        body.extend(" " * _HELP_COLUMN + line for line in text[1:])
    return USAGE + _ABOUT + "\n".join(body) + "\n" + _SUBCOMMANDS


class UsageError(Exception):
    """Bad command line or SECRETS_INIT_* value; exit status exits.USAGE."""


class Settings:
    """Everything one run needs to know. A plain class for the reason given on Option."""

    __slots__ = (
        "action",
        "command",
        "copy_dest",
        "expand_json",
        "google_project",
        "interactive",
        "log_format",
        "log_level",
        "on_change",
        "provider",
        "refresh",
        "refresh_signal",
        "rewrite",
        "secrets_dir",
        "signal_mode",
        "stop_timeout",
        "timeout",
        "wait_all",
    )  # fmt: skip

    # The option attributes' types; their defaults come from OPTIONS.
    log_level: str
    log_format: str
    provider: str | None
    wait_all: bool
    signal_mode: str
    rewrite: dict[int, int]
    timeout: float
    interactive: bool
    expand_json: bool
    google_project: str | None
    secrets_dir: str | None
    refresh: float | None  # seconds; None: resolve once, at start
    refresh_signal: int  # 0: none
    on_change: str
    stop_timeout: float

    def __init__(self) -> None:
        self.action = "run"  # run | check | copy | version | help
        self.command: list[str] = []
        self.copy_dest = ""
        for option in OPTIONS:
            if option.twin:  # --check is an action, not a setting
                default = option.default
                setattr(
                    self, option.attribute, dict(default) if isinstance(default, dict) else default
                )


def parse(argv: "Sequence[str]", environ: "Mapping[str, str]") -> Settings:
    """Build Settings from the environment, then let the command line override it."""
    settings = Settings()
    raw: dict[Option, str | bool | list[str]] = {}
    for option in OPTIONS:
        value = environ.get(option.variable) if option.twin else None
        if value is None:
            continue
        if option.kind == FLAG:
            raw[option] = _env_bool(option, value)
        elif option.kind == LIST:
            raw[option] = [part for part in value.split(",") if part.strip()]
        else:
            raw[option] = value

    args = list(argv)
    listed: dict[Option, list[str]] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            settings.command = args[index + 1 :]
            break
        if not arg.startswith("-") or arg == "-":
            if index == 0 and arg == "lay":
                raise UsageError("lay needs the single-file binary (scripts/build-binary)")
            if index == 0 and arg == "copy":
                if len(args) != 2:
                    raise UsageError("copy takes exactly one argument: DEST_DIR")
                settings.action = "copy"
                settings.copy_dest = args[1]
                break
            settings.command = args[index:]
            break
        name, has_value, inline = arg.partition("=")
        if name in ("-h", "--help"):
            settings.action = "help"
            return settings
        if name == "--version":
            settings.action = "version"
            return settings
        given = _BY_FLAG.get(name)
        if given is None:
            raise UsageError(f"unknown option: {arg}")
        if given.kind == FLAG:
            if has_value:
                raise UsageError(f"{name} takes no value")
            raw[given] = True
        else:
            if has_value:
                text = inline
            else:
                index += 1
                if index >= len(args):
                    raise UsageError(f"{name} needs a value")
                text = args[index]
            if given.kind == LIST:
                listed.setdefault(given, []).append(text)
            else:
                raw[given] = text
        index += 1
    raw.update(listed)  # a repeated flag replaces its twin's whole list

    for option, setting in raw.items():
        _apply(settings, option, setting)
    if settings.action == "run" and not settings.command:
        raise UsageError("missing COMMAND to run (use: secrets-init [OPTIONS] -- COMMAND [ARG...])")
    return settings


def _env_bool(option: Option, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{option.variable}: expected 1/true/yes or 0/false/no, got {value!r}")


def _apply(settings: Settings, option: Option, value: str | bool | list[str]) -> None:
    key = option.attribute
    if option.kind == FLAG:
        if key == "check":
            if value:
                settings.action = "check"
        else:
            setattr(settings, key, bool(value))
    elif option.kind == LIST:
        assert isinstance(value, list)
        settings.rewrite = parse_rewrites(value)
    elif option.choices:
        assert isinstance(value, str)
        if value not in option.choices:
            choices = ", ".join(option.choices)
            raise UsageError(f"{option.flag}: {value!r} is not one of {choices}")
        setattr(settings, key, value)
    elif key == "timeout":
        assert isinstance(value, str)
        try:
            settings.timeout = float(value)
        except ValueError:
            raise UsageError(f"--timeout: not a number of seconds: {value!r}") from None
        if not 0 < settings.timeout < 86400:
            raise UsageError(f"--timeout: must be between 0 and 86400 seconds: {value!r}")
    elif key in ("refresh", "stop_timeout"):
        assert isinstance(value, str)
        if key == "refresh" and not value.strip():
            settings.refresh = None  # an empty twin: off, as if unset
            return
        seconds = parse_duration(option.flag, value)
        if key == "refresh" and seconds < 1:
            raise UsageError(f"--refresh: must be at least 1s: {value!r}")
        setattr(settings, key, seconds)
    elif key == "refresh_signal":
        assert isinstance(value, str)
        try:
            number = signals.parse_signal(value)
        except ValueError as error:
            raise UsageError(f"--refresh-signal: {error}") from None
        if number and (number in (signals.SIGKILL, signals.SIGSTOP) or signals.reserved(number)):
            name = signals.signal_name(number)
            raise UsageError(f"--refresh-signal: {name} cannot be a refresh signal")
        settings.refresh_signal = number
    else:
        assert isinstance(value, str)
        setattr(settings, key, value or None)


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(flag: str, text: str) -> float:
    """`90`, `90s`, `1.5m`, `1h` in seconds: a number with an optional unit (seconds by default)."""
    spec = text.strip().lower()
    unit = _UNITS.get(spec[-1:], 0)
    number = spec[:-1] if unit else spec
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 366 * 86400 or number.strip() != number or "_" in number:
        raise UsageError(f"{flag}: not a duration (90, 90s, 5m, 1h): {text!r}")
    return seconds


def parse_rewrites(specs: "Sequence[str]") -> dict[int, int]:
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
        # A rewrite that can never fire is refused rather than accepted in silence.
        reason = signals.never_forwarded(from_number)
        if reason is not None:
            raise UsageError(f"--rewrite {spec}: {signals.signal_name(from_number)} {reason}")
        if signals.reserved(to_number):
            name = signals.signal_name(to_number)
            raise UsageError(
                f"--rewrite {spec}: {name} is reserved by the C library for its threads"
            )
        table[from_number] = to_number
    return table

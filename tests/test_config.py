"""Settings from flags and SECRETS_INIT_* variables (pure logic)."""

from __future__ import annotations

import signal

import pytest

from secrets_init import config
from secrets_init.signals import parse_signal, signal_name


def test_defaults() -> None:
    settings = config.parse(["--", "app"], {})
    assert settings.command == ["app"]
    assert settings.log_level == "info"
    assert settings.signal_mode == "group"
    assert settings.timeout == 30.0
    assert settings.rewrite == {}
    assert not settings.wait_all and not settings.expand_json


def test_environment_and_flag_precedence() -> None:
    env = {
        "SECRETS_INIT_LOG_LEVEL": "debug",
        "SECRETS_INIT_WAIT_ALL": "Yes",
        "SECRETS_INIT_EXPAND_JSON": "TRUE",
        "SECRETS_INIT_TIMEOUT": "5",
        "SECRETS_INIT_REWRITE": "TERM:QUIT, HUP:USR1",
        "SECRETS_INIT_GOOGLE_PROJECT": "p1",
    }
    settings = config.parse(["--log-level=warning", "--timeout", "7", "app"], env)
    assert settings.log_level == "warning"
    assert settings.timeout == 7.0
    assert settings.wait_all and settings.expand_json
    assert settings.rewrite == {signal.SIGTERM: signal.SIGQUIT, signal.SIGHUP: signal.SIGUSR1}
    assert settings.google_project == "p1"
    flagged = config.parse(["--rewrite", "INT:0", "app"], env)
    assert flagged.rewrite == {signal.SIGINT: 0}


def test_command_arguments_are_not_options() -> None:
    settings = config.parse(["app", "--log-level", "x"], {})
    assert settings.command == ["app", "--log-level", "x"]
    assert settings.log_level == "info"


def test_check_copy_help_version() -> None:
    assert config.parse(["--check"], {}).action == "check"
    copy = config.parse(["copy", "/x"], {})
    assert (copy.action, copy.copy_dest) == ("copy", "/x")
    assert config.parse(["--help", "--bogus"], {}).action == "help"
    assert config.parse(["--version"], {}).action == "version"
    with pytest.raises(config.UsageError):
        config.parse(["copy"], {})


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--timeout"],
        ["--timeout", "-1", "a"],
        ["--wait-all=1", "a"],
        ["--signal-mode", "pid", "a"],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(config.UsageError):
        config.parse(argv, {})


def test_signal_names() -> None:
    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("15") == signal.SIGTERM
    assert parse_signal("rtmin+2") == signal.SIGRTMIN + 2
    assert parse_signal("RTMAX-1") == signal.SIGRTMAX - 1
    assert parse_signal("0") == 0
    for bad in ("NOPE", "99", "RTMIN+99", "RTMINx"):
        with pytest.raises(ValueError):
            parse_signal(bad)
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"


@pytest.mark.parametrize("option", config.OPTIONS, ids=lambda option: option.flag)
def test_every_option_is_in_help_and_has_its_twin(option: config.Option) -> None:
    """One table drives both: an option added to it appears in --help and reads its twin."""
    help_text = config.help_text()
    assert f"  {option.flag}" in help_text or f", {option.flag}" in help_text
    sample = {config.FLAG: "1", config.LIST: "TERM:QUIT", config.VALUE: ""}[option.kind]
    if option.choices:
        sample = option.choices[-1]
    elif option.attribute in ("timeout", "refresh", "stop_timeout"):
        sample = "7"
    elif option.attribute == "refresh_signal":
        sample = "USR1"
    elif option.kind == config.VALUE:
        sample = "/somewhere"
    settings = config.parse(["app"], {option.variable: sample})
    if not option.twin:
        assert settings.action == "run", f"{option.variable} must have no effect"
        assert option.variable not in help_text
        return
    default = config.Settings()
    assert getattr(settings, option.attribute) != getattr(default, option.attribute)


def test_provider_choices_are_the_registry_families() -> None:
    from secrets_init import providers

    (provider,) = [option for option in config.OPTIONS if option.flag == "--provider"]
    assert provider.choices == providers.FAMILIES


def test_launcher_uses_the_same_status_as_python() -> None:
    """The launcher's C source defines its own copy of the 'cannot start' status."""
    import re
    from pathlib import Path

    from secrets_init import exits

    source = (Path(__file__).resolve().parent.parent / "launcher" / "launcher.c").read_text()
    match = re.search(r"#define EXIT_LAUNCHER (\d+)", source)
    assert match is not None
    assert int(match.group(1)) == exits.LAUNCHER


def test_exit_statuses_are_distinct_and_below_the_signal_range() -> None:
    from secrets_init import exits

    statuses = [exits.OK, exits.ERROR, exits.USAGE, exits.LAUNCHER]
    statuses += [exits.CANNOT_EXECUTE, exits.NOT_FOUND]
    assert len(set(statuses)) == len(statuses)
    assert max(statuses) < exits.killed_by(1) == 129

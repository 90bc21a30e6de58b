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

"""Rotation (`--refresh`): new values reach the program, unchanged ones change nothing, a failing
store stops nothing, and the supervisor's promises hold throughout.

Real processes against moto (through the fault proxy) and the fake Google server. The
program below records each start (its pid and what it saw) and every signal it gets, so
"restarted once with the new value" and "signalled, same pid" are read off its files.
secrets-init logs at debug into a file, so a test waits for the Nth refresh it reports
instead of sleeping for a guessed time.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secrets_init import config, exits, rotation
from testing import process
from testing.aws_proxy import AwsProxy, Fault
from testing.fake_secretmanager import FakeSecretManager, gsm_env
from testing.moto import Aws, aws_env
from testing.supervised import children_of, init_pid, readable_memory, stopping, wait_for

# Records its start (DIR/<pid>.env: the variables named, and the files they point to when
# they hold a path) and every signal (DIR/<pid>.signals). TERM ends it with status 0,
# after --slow-exit seconds when given.
PROGRAM = r"""
import json, os, signal, sys, time
directory, names = sys.argv[1], sys.argv[2:]
slow = 0.0
if names[:1] == ["--slow-exit"]:
    slow, names = float(names[1]), names[2:]
def record(number, frame):
    with open(os.path.join(directory, f"{os.getpid()}.signals"), "a") as out:
        out.write(f"{number}\n")
    if number == signal.SIGTERM:
        time.sleep(slow)
        sys.exit(0)
for number in (signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(number, record)
seen = {}
for name in names:
    value = os.environ.get(name)
    seen[name] = value
    if value and value.startswith("/") and os.path.isfile(value):
        seen[name + ":file"] = open(value).read()
tmp = os.path.join(directory, f".{os.getpid()}.tmp")
with open(tmp, "w") as out:
    json.dump(seen, out)
os.rename(tmp, os.path.join(directory, f"{os.getpid()}.env"))
while True:
    signal.pause()
"""

NO_CHANGE = "refresh: no secret changed"


class Rotating:
    """secrets-init --refresh 1s --log-level debug around PROGRAM; its log goes to a file."""

    def __init__(
        self,
        tmp: Path,
        env: dict[str, str],
        names: list[str],
        options: list[str] = (),  # type: ignore[assignment]
        pid1: bool = False,
        cwd: Path | None = None,
    ) -> None:
        self.dir = tmp / "program"
        self.dir.mkdir()
        self.log_path = tmp / "secrets-init.log"
        argv = [*process.command(), "--refresh", "1s", "--log-level", "debug", *options]
        argv += ["--", sys.executable, "-c", PROGRAM, str(self.dir), *names]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                process.as_pid1(argv) if pid1 else argv,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                cwd=cwd,
            )
        self.pid1 = pid1

    @property
    def init_pid(self) -> int:
        return init_pid(self.proc, self.pid1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = 30) -> None:
        self._wait(lambda: self.log().count(text) >= count, timeout, f"{count}x {text!r}")

    def _wait(self, predicate: object, timeout: float, what: str) -> None:
        try:
            wait_for(predicate, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}; secrets-init's log:\n{self.log()[-3000:]}") from None

    def starts(self) -> list[tuple[int, dict[str, str | None]]]:
        """(pid, what it saw) of every start of the program, in order."""
        files = sorted(self.dir.glob("*.env"), key=lambda path: path.stat().st_mtime_ns)
        return [(int(path.stem), json.loads(path.read_text())) for path in files]

    def wait_starts(
        self, count: int, timeout: float = 30
    ) -> list[tuple[int, dict[str, str | None]]]:
        self._wait(lambda: len(self.starts()) >= count, timeout, f"{count} starts of the program")
        return self.starts()

    def received(self, pid: int) -> list[int]:
        path = self.dir / f"{pid}.signals"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def leftovers(self) -> list[int]:
        """Processes still running with this run's program directory in their argv."""
        mark = str(self.dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and mark in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def send(self, number: int) -> None:
        os.kill(self.init_pid, number)

    def finish(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        for start in self.starts():
            try:
                os.kill(start[0], signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def started() -> Iterator[list[Rotating]]:
    with stopping(Rotating.kill) as runs:
        yield runs


def rotating(
    started: list[Rotating], tmp: Path, env: dict[str, str], names: list[str], **kw: object
) -> Rotating:
    item = Rotating(tmp, env, names, **kw)  # type: ignore[arg-type]
    started.append(item)
    return item


MODES = [pytest.param(False, id="process"), pytest.param(True, id="pid1", marks=pytest.mark.pid1)]


def store_with(
    kind: str, aws: Aws, proxy: AwsProxy, gsm: FakeSecretManager, value: str
) -> tuple[dict[str, str], object]:
    """An environment whose DB references a `kind` secret holding `value`; how to rotate it."""
    if kind == "secretsmanager":
        aws.secret("db", value)
        return aws_env(proxy.url, DB=aws.sm_ref("db")), lambda new: aws.new_version("db", new)
    if kind == "ssm":
        aws.parameter("db", value, kind="SecureString")
        env = aws_env(proxy.url, DB=aws.ssm_ref("db"))
        return env, lambda new: aws.parameter("db", new, kind="SecureString")
    gsm.add_secret("proj-1", "db", value)
    env = gsm_env(gsm, DB="gcp:secretmanager:projects/proj-1/secrets/db")
    return env, lambda new: gsm.add_secret("proj-1", "db", new)


@pytest.mark.parametrize("pid1", MODES)
@pytest.mark.parametrize("kind", ["secretsmanager", "ssm", "google"])
def test_a_new_version_restarts_the_program_once_with_it(
    kind: str,
    pid1: bool,
    aws: Aws,
    proxy: AwsProxy,
    gsm: FakeSecretManager,
    tmp_path: Path,
    started: list[Rotating],
) -> None:
    env, rotate = store_with(kind, aws, proxy, gsm, "first-value")
    item = rotating(started, tmp_path, env, ["DB"], pid1=pid1)
    [(first, seen)] = item.wait_starts(1)
    assert seen == {"DB": "first-value"}
    item.wait_log(NO_CHANGE)
    rotate("second-value")  # type: ignore[operator]
    starts = item.wait_starts(2)
    assert starts[1][1] == {"DB": "second-value"}
    assert item.received(first) == [signal.SIGTERM]
    before = item.log().count(NO_CHANGE)
    item.wait_log(NO_CHANGE, before + 2)  # two more refreshes: nothing new
    assert len(item.starts()) == 2
    assert item.log().count("secrets changed: DB (environment); restarting the program") == 1
    item.send(signal.SIGTERM)
    assert item.finish() == 0
    assert item.received(starts[1][0]) == [signal.SIGTERM]


def test_unchanged_values_change_nothing_over_several_refreshes(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    aws.secret("db", "same")
    aws.parameter("p", "same too")
    destination = tmp_path / "db.secret"
    env = aws_env(
        proxy.url,
        DB=aws.sm_ref("db"),
        P=aws.ssm_ref("p"),
        F=aws.ssm_ref("p") + f"?destination={destination}",
    )
    item = rotating(started, tmp_path, env, ["DB", "P", "F"])
    [(pid, seen)] = item.wait_starts(1)
    inode = destination.stat().st_ino
    proxy.reset()
    item.wait_log(NO_CHANGE, 4)
    assert item.starts() == [(pid, seen)]
    assert item.received(pid) == []
    assert destination.stat().st_ino == inode  # not rewritten
    refreshes = item.log().count(NO_CHANGE)
    calls = proxy.counts
    # As at start: one call per service and refresh (P and F share one fetch), counted while
    # the next refresh may have made one of its two calls already.
    assert set(calls) == {"BatchGetSecretValue", "GetParameters"}
    for api in calls:
        assert refreshes - 1 <= calls[api] <= refreshes + 1, calls


def test_a_changed_file_is_replaced_and_the_program_signalled_not_restarted(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    gsm.add_secret("proj-1", "cert", "cert-1")
    gsm.add_secret("proj-1", "key", "key-1")
    destination = tmp_path / "tls" / "cert.pem"
    destination.parent.mkdir()
    ref = "gcp:secretmanager:projects/proj-1/secrets/"
    env = gsm_env(
        gsm, CERT=f"{ref}cert?destination={destination}", KEY=f"{ref}key?destination=tempfile"
    )
    item = rotating(started, tmp_path, env, ["CERT", "KEY"], options=["--rewrite", "HUP:USR2"])
    [(pid, seen)] = item.wait_starts(1)
    assert seen["CERT:file"] == "cert-1" and seen["KEY:file"] == "key-1"
    key_path = Path(seen["KEY"] or "")
    inodes = (destination.stat().st_ino, key_path.stat().st_ino)
    gsm.add_secret("proj-1", "cert", "cert-2")
    gsm.add_secret("proj-1", "key", "key-2")
    wait_for(lambda: signal.SIGUSR2 in item.received(pid), what="the refresh signal, rewritten")
    assert destination.read_text() == "cert-2" and key_path.read_text() == "key-2"
    for path, inode in zip((destination, key_path), inodes, strict=True):
        assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert sorted(os.listdir(destination.parent)) == ["cert.pem"]  # no staging file left
    assert item.starts() == [(pid, seen)]
    assert item.received(pid) == [signal.SIGUSR2]  # HUP, through --rewrite
    assert "secrets changed: CERT, KEY (file); files replaced, sending SIGHUP" in item.log()


def test_refresh_signal_0_replaces_files_and_sends_nothing(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    gsm.add_secret("proj-1", "cert", "cert-1")
    destination = tmp_path / "cert.pem"
    env = gsm_env(
        gsm, CERT=f"gcp:secretmanager:projects/proj-1/secrets/cert?destination={destination}"
    )
    item = rotating(started, tmp_path, env, ["CERT"], options=["--refresh-signal", "0"])
    [(pid, _)] = item.wait_starts(1)
    gsm.add_secret("proj-1", "cert", "cert-2")
    item.wait_log("files replaced (--refresh-signal 0: no signal)")
    assert destination.read_text() == "cert-2"
    item.wait_log(NO_CHANGE, item.log().count(NO_CHANGE) + 1)
    assert item.received(pid) == []
    assert len(item.starts()) == 1


def test_another_key_of_a_json_secret_changing_changes_nothing(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    gsm.add_secret("proj-1", "db", json.dumps({"password": "pw-1", "comment": "a"}))
    env = gsm_env(gsm, PASSWORD="gcp:secretmanager:projects/proj-1/secrets/db#password")
    item = rotating(started, tmp_path, env, ["PASSWORD"])
    [(pid, _)] = item.wait_starts(1)
    gsm.add_secret("proj-1", "db", json.dumps({"password": "pw-1", "comment": "b"}))
    item.wait_log(NO_CHANGE, item.log().count(NO_CHANGE) + 3)
    assert [start[0] for start in item.starts()] == [pid]
    gsm.add_secret("proj-1", "db", json.dumps({"password": "pw-2", "comment": "b"}))
    assert item.wait_starts(2)[1][1] == {"PASSWORD": "pw-2"}  # the selected key does count


FAULTS = {
    "denied": lambda proxy, aws: proxy.faults.append(Fault.error("", "AccessDeniedException")),
    "500s": lambda proxy, aws: proxy.faults.append(Fault.server_error()),
    "deleted": lambda proxy, aws: aws.client("secretsmanager").delete_secret(
        SecretId=f"{aws.prefix}/db", ForceDeleteWithoutRecovery=True
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_refresh_leaves_the_program_running_and_is_tried_again(
    fault: str, aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    aws.secret("db", "v1")
    aws.parameter("p", "p1")
    env = aws_env(proxy.url, DB=aws.sm_ref("db"), P=aws.ssm_ref("p"))
    item = rotating(started, tmp_path, env, ["DB", "P"], options=["--timeout", "3"])
    [(pid, _)] = item.wait_starts(1)
    FAULTS[fault](proxy, aws)
    aws.parameter("p", "p2")  # a change that must wait: the refresh is all or nothing
    item.wait_log("warning: refresh: DB: ", 2)  # failed, and tried again on schedule
    assert [start[0] for start in item.starts()] == [pid]
    assert item.received(pid) == []
    assert "p2" not in item.log() and "v1" not in item.log()
    if fault != "deleted":
        proxy.faults.clear()
        assert item.wait_starts(2)[1][1] == {"DB": "v1", "P": "p2"}
    item.send(signal.SIGTERM)
    assert item.finish() == 0


def test_a_failing_google_refresh_names_each_variable(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    gsm.add_secret("proj-1", "a", "a-1")
    gsm.add_secret("proj-1", "b", "b-1")
    env = gsm_env(
        gsm,
        A="gcp:secretmanager:projects/proj-1/secrets/a",
        B="gcp:secretmanager:projects/proj-1/secrets/b",
    )
    item = rotating(started, tmp_path, env, ["A", "B"])
    [(pid, _)] = item.wait_starts(1)
    gsm.fail_always("PERMISSION_DENIED", secret="b")
    item.wait_log("warning: refresh: B: ", 2)
    assert "warning: refresh: A: " not in item.log()
    assert [start[0] for start in item.starts()] == [pid]


def test_on_change_exit_stops_the_program_and_exits_75(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    aws.secret("db", "v1")
    item = rotating(
        started,
        tmp_path,
        aws_env(proxy.url, DB=aws.sm_ref("db")),
        ["DB"],
        options=["--on-change", "exit"],
    )
    [(pid, _)] = item.wait_starts(1)
    aws.new_version("db", "v2")
    assert item.finish() == exits.SECRETS_CHANGED == 75
    assert item.received(pid) == [signal.SIGTERM]
    assert len(item.starts()) == 1
    assert (
        "secrets changed: DB (environment); stopping the program, then exiting with status 75"
        in item.log()
    )


def test_a_program_that_ignores_term_is_killed_after_the_stop_timeout(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    aws.secret("db", "v1")
    env = aws_env(proxy.url, DB=aws.sm_ref("db"))
    item = rotating(
        started, tmp_path, env, ["--slow-exit", "60", "DB"], options=["--stop-timeout", "1s"]
    )
    [(_pid, _)] = item.wait_starts(1)
    aws.new_version("db", "v2")
    starts = item.wait_starts(2)
    assert starts[1][1] == {"DB": "v2"}
    assert "did not stop within 1s; sending SIGKILL" in item.log()


@pytest.mark.parametrize("pid1", MODES)
def test_signals_during_a_refresh_are_forwarded_and_term_stops_everything(
    pid1: bool, aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    aws.secret("db", "v1")
    item = rotating(started, tmp_path, aws_env(proxy.url, DB=aws.sm_ref("db")), ["DB"], pid1=pid1)
    [(pid, _)] = item.wait_starts(1)
    proxy.faults.append(Fault.hang_up())  # every refresh from now on waits for its --timeout
    init = item.init_pid
    wait_for(lambda: len(children_of(init)) == 2, what="a refresh child next to the program")
    refresher = next(child for child in children_of(init) if child != _host_pid(item, pid, init))
    item.send(signal.SIGUSR1)
    wait_for(lambda: signal.SIGUSR1 in item.received(pid), what="USR1 at the program")
    item.send(signal.SIGTERM)
    assert item.finish() == 0  # the program's own status
    assert item.received(pid) == [signal.SIGUSR1, signal.SIGTERM]
    assert not Path(f"/proc/{refresher}").exists()  # no refresh child outlives secrets-init
    assert item.leftovers() == []
    assert len(item.starts()) == 1


def _host_pid(item: Rotating, pid: int, init: int) -> int:
    """The program's pid as the host sees it (the namespace numbers it differently)."""
    if not item.pid1:
        return pid
    for child in children_of(init):
        status = Path(f"/proc/{child}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:")).split()
        if int(nspid[-1]) == pid:
            return child
    raise AssertionError("the program is not a child of PID 1")


def _stopping_for_a_restart(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> tuple[Rotating, int]:
    """A run whose program was told to stop (its secret rotated) and takes 1.5 s to do so:
    the window the next two tests send their signal in. Returns the run and that program's pid."""
    aws.secret("db", "v1")
    env = aws_env(proxy.url, DB=aws.sm_ref("db"))
    item = rotating(started, tmp_path, env, ["--slow-exit", "1.5", "DB"])
    [(old, _)] = item.wait_starts(1)
    aws.new_version("db", "v2")
    wait_for(lambda: item.received(old) == [signal.SIGTERM], what="the old program told to stop")
    return item, old


def test_a_signal_while_the_program_stops_for_a_restart_goes_to_the_new_one(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    """Held, then delivered as the new program starts: before it has handlers, so USR1 kills it.

    (The same holds at the first start; see docs/signals.md.) That death is the proof
    that the signal reached the new program, and not the one that was stopping.
    """
    item, old = _stopping_for_a_restart(aws, proxy, tmp_path, started)
    item.send(signal.SIGUSR1)
    assert item.finish() == 128 + signal.SIGUSR1
    assert item.received(old) == [signal.SIGTERM]
    assert "restarting the program" in item.log()


def test_term_while_the_program_stops_for_a_restart_starts_nothing_new(
    aws: Aws, proxy: AwsProxy, tmp_path: Path, started: list[Rotating]
) -> None:
    item, old = _stopping_for_a_restart(aws, proxy, tmp_path, started)
    item.send(signal.SIGTERM)
    assert item.finish() == 0  # the stopping program's status
    assert item.received(old) == [signal.SIGTERM, signal.SIGTERM]
    assert len(item.starts()) == 1
    assert "received SIGTERM while the program stops; not starting it again" in item.log()
    assert item.leftovers() == []  # the refresh child that was to replace it is gone too


@pytest.mark.pid1
def test_pid1_memory_holds_no_value_after_several_refreshes(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    values = [
        "Zq7-rot-Env-One-81a",
        "Zq7-rot-Env-Two-82b",
        "Zq7-rot-File-One-83c",
        "Zq7-rot-File-Two-84d",
    ]
    gsm.add_secret("proj-1", "env", values[0])
    gsm.add_secret("proj-1", "file", values[2])
    ref = "gcp:secretmanager:projects/proj-1/secrets/"
    env = gsm_env(gsm, E=f"{ref}env", F=f"{ref}file?destination=tempfile")
    item = rotating(started, tmp_path, env, ["E", "F"], pid1=True)
    item.wait_starts(1)
    gsm.add_secret("proj-1", "file", values[3])
    item.wait_log("files replaced")
    gsm.add_secret("proj-1", "env", values[1])
    item.wait_starts(2)
    item.wait_log(NO_CHANGE, item.log().count(NO_CHANGE) + 3)
    memory = readable_memory(item.init_pid)
    environ = Path(f"/proc/{item.init_pid}/environ").read_bytes()
    assert b"gcp:secretmanager:" in environ  # the right process was read
    for value in values:
        assert value.encode() not in memory and value.encode() not in environ, value
        assert value not in item.log()


def _switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


@pytest.mark.parametrize("pid1", MODES)
def test_between_refreshes_pid1_sleeps_until_the_timer(
    pid1: bool, gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    """A handful of wake-ups per refresh (timer, report, child's exit), none in between."""
    gsm.add_secret("proj-1", "a", "a-1")
    env = gsm_env(gsm, A="gcp:secretmanager:projects/proj-1/secrets/a")
    item = rotating(started, tmp_path, env, ["A"], pid1=pid1)
    item.wait_starts(1)
    item.wait_log(NO_CHANGE)
    init = item.init_pid
    before_refreshes, before = item.log().count(NO_CHANGE), _switches(init)
    item.wait_log(NO_CHANGE, before_refreshes + 4)
    refreshes = item.log().count(NO_CHANGE) - before_refreshes
    woken = _switches(init) - before
    # A 100 ms poll would add ten per refresh; the refreshes themselves take about four.
    assert woken <= 8 * (refreshes + 1), (woken, refreshes)
    assert _lingering_zombies(init) == []  # every refresh child was reaped


def _lingering_zombies(parent: int) -> list[int]:
    """Children of `parent` that are zombies now and still are a moment later."""

    def zombies() -> set[int]:
        found = set()
        for child in children_of(parent):
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
            except OSError:
                continue
            if stat.rpartition(")")[2].split()[0] == "Z":
                found.add(child)
        return found

    first = zombies()
    time.sleep(0.3)
    return sorted(first & zombies())


def test_the_program_exiting_by_itself_is_not_restarted(
    gsm: FakeSecretManager, tmp_path: Path
) -> None:
    gsm.add_secret("proj-1", "a", "a-1")
    env = gsm_env(gsm, A="gcp:secretmanager:projects/proj-1/secrets/a")
    done = subprocess.run(
        [*process.command(), "--refresh", "1s", "--", "sh", "-c", "sleep 2.5; exit 7"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 7


def test_a_restarted_program_starts_where_the_first_did(
    gsm: FakeSecretManager, tmp_path: Path, started: list[Rotating]
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    gsm.add_secret("proj-1", "a", "a-1")
    env = gsm_env(gsm, A="gcp:secretmanager:projects/proj-1/secrets/a")
    item = rotating(started, tmp_path, env, ["A"], cwd=workdir)
    item.wait_starts(1)
    gsm.add_secret("proj-1", "a", "a-2")
    [_, (new, _)] = item.wait_starts(2)
    assert os.readlink(f"/proc/{new}/cwd") == str(workdir)


# -- options and PID 1's half, without processes ------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("1.5s", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    settings = config.parse(["--refresh", text, "--stop-timeout", text, "app"], {})
    assert settings.refresh == settings.stop_timeout == seconds


@pytest.mark.parametrize("text", ["0.5s", "0", "-1", "5d", "m", "1e999", "nan", "1_0"])
def test_refresh_refuses_what_is_no_duration_or_under_a_second(text: str) -> None:
    with pytest.raises(config.UsageError):
        config.parse(["--refresh", text, "app"], {})


def test_an_empty_refresh_twin_is_off() -> None:
    assert config.parse(["app"], {"SECRETS_INIT_REFRESH": ""}).refresh is None


def test_refresh_defaults_and_twins() -> None:
    default = config.parse(["app"], {})
    assert default.refresh is None
    assert (default.refresh_signal, default.on_change, default.stop_timeout) == (
        signal.SIGHUP,
        "restart",
        10.0,
    )
    twins = {
        "SECRETS_INIT_REFRESH": "5m",
        "SECRETS_INIT_REFRESH_SIGNAL": "USR1",
        "SECRETS_INIT_ON_CHANGE": "exit",
        "SECRETS_INIT_STOP_TIMEOUT": "30",
    }
    settings = config.parse(["app"], twins)
    assert (
        settings.refresh,
        settings.refresh_signal,
        settings.on_change,
        settings.stop_timeout,
    ) == (
        300,
        signal.SIGUSR1,
        "exit",
        30,
    )
    assert config.parse(["--refresh-signal", "0", "app"], {}).refresh_signal == 0
    for bad in (["--refresh-signal", "KILL"], ["--on-change", "reload"], ["--stop-timeout", "x"]):
        with pytest.raises(config.UsageError):
            config.parse([*bad, "app"], {})


def test_jitter_stays_within_ten_percent_and_spreads() -> None:
    moments = [rotation.next_refresh(100.0, now=0.0) for _ in range(2000)]
    assert all(90.0 <= moment <= 110.0 for moment in moments)
    assert min(moments) < 92 and max(moments) > 108


def test_a_report_short_of_its_end_is_a_failed_refresh() -> None:
    name, digest = b"DB".hex(), "ab" * 32
    whole = f"digest {name} {digest}\nenv {name}\naction restart\nend\n".encode()
    report = rotation.parse_report(whole)
    assert (report.action, report.changed_env, report.digests) == (
        "restart",
        [b"DB"],
        {b"DB": bytes.fromhex(digest)},
    )
    assert rotation.parse_report(whole[:-4]).action == "failed"
    assert rotation.parse_report(b"action reboot\nend\n").action == "failed"


def test_the_refresh_benchmark_measures_the_batched_minimum(tmp_path: Path) -> None:
    """`python -m bench.refresh --quick` runs end to end, and its section survives a rewrite."""
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\n## 1. Start-up\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.refresh", "--quick", "--out", str(out)],
        env=process.child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\n## 1. Start-up\n")
    assert "| API calls per refresh | 1 BatchGetSecretValue, 2 GetParameters (minimum: 1 " in text
    assert "after 5 more, KiB |" in text
    from bench import refresh

    kept = refresh.kept_section(out)
    assert kept.strip() == text.partition("## 1. Start-up\n")[2].strip()
    refresh.write_section(out, kept.strip() + "\n")
    assert out.read_text().count(refresh.BEGIN) == 1


@pytest.mark.parametrize("pid1", MODES)
def test_a_restarted_program_gets_the_terminal_and_ctrl_c(
    pid1: bool, gsm: FakeSecretManager, tmp_path: Path
) -> None:
    """Under `docker run -it`, the new program is the terminal's foreground group, as the
    first was: Ctrl-C reaches it."""
    from tests.test_terminal import CTRL_C, LeaderRun

    gsm.add_secret("proj-1", "a", "a-1")
    env = gsm_env(gsm, A="gcp:secretmanager:projects/proj-1/secrets/a", SECRETS_INIT_REFRESH="1s")
    run = LeaderRun(tmp_path, pid1=pid1, env=env)
    try:
        first = run.facts()
        assert first["foreground"] == first["pgrp"]
        gsm.add_secret("proj-1", "a", "a-2")

        def restarted() -> bool:
            run.drain()
            return json.loads(run.facts_path.read_text())["pgrp"] != first["pgrp"]

        wait_for(restarted, timeout=30, what="the restarted program")
        second = json.loads(run.facts_path.read_text())
        assert second["foreground"] == second["pgrp"]
        run.type(CTRL_C)
        assert run.wait() == 128 + signal.SIGINT
    finally:
        run.close()

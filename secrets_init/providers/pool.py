"""The worker pool every provider's fetch runs its calls on, bounded by the deadline.

A provider submits jobs (a job may submit more: a refused batch becomes
single calls) and each job settles targets; `wait` hands back an outcome for
every target by the deadline, whatever the jobs did. This is the one place
that decides how a target that is still missing is reported: with the
timeout wording when the deadline passed, with the "unexpected" wording when
a job raised.

Why not concurrent.futures: its workers are joined when the interpreter
exits, so a call stuck in a dead network would keep `--check` (or a child
that fails) alive past `--timeout`. Here workers are daemon threads that are
simply abandoned at the deadline.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable

from secrets_init.providers import Failure, FetchContext, Outcome


def seconds(value: float) -> str:
    """`30s`, `2.5s`: a duration as the user would write it for `--timeout`."""
    return f"{max(0.0, round(value, 1)):g}s"


def timed_out(timeout: float, doing: str = "") -> str:
    """Why a target has no outcome at the deadline: `timed out after 30s waiting for ...`."""
    return f"timed out after {seconds(timeout)} {doing}".rstrip()


def unexpected(error: BaseException, provider: str) -> str:
    """Why a target failed through a bug; only the type, as the text could quote a response."""
    return f"unexpected {type(error).__name__} in the {provider} provider"


class Pool:
    """One provider's calls in flight, the outcomes they settled, and the deadline."""

    def __init__(self, provider: str, context: FetchContext, workers: int) -> None:
        self.provider = provider
        self.deadline = context.deadline
        self.timeout = context.timeout
        self.log = context.log
        self._most_workers = workers
        self._lock = threading.Condition()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._pending = 0
        self._workers = 0
        self._crash: BaseException | None = None
        self._outcomes: dict[Hashable, Outcome] = {}
        self._doing: dict[Hashable, str] = {}
        self._flags: set[str] = set()
        self._calls: Counter[str] = Counter()
        self._started = time.monotonic()

    # -- jobs ----------------------------------------------------------------

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on a worker; workers are started as needed, up to the limit."""
        with self._lock:
            self._pending += 1
            start_worker = self._workers < min(self._most_workers, self._pending)
            if start_worker:
                self._workers += 1
        self._jobs.put(job)
        if start_worker:
            threading.Thread(target=self._work, name=f"{self.provider}-call", daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as error:  # noqa: BLE001 - reported by type in `wait`
                with self._lock:
                    self._crash = self._crash or error
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def wait(self, targets: Iterable[Hashable]) -> dict[Hashable, Outcome]:
        """An outcome for every target, once every job is done or the deadline has passed."""
        with self._lock:
            while self._pending and (left := self.deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            for _ in range(self._workers):
                self._jobs.put(None)  # idle workers exit; a stuck one is a daemon
            outcomes = dict(self._outcomes)
            crash = self._crash
            doing = dict(self._doing)
            calls = ", ".join(f"{n} {call}" for call, n in sorted(self._calls.items()))
        for target in targets:
            if target not in outcomes:
                cause = (
                    unexpected(crash, self.provider)
                    if crash is not None
                    else timed_out(self.timeout, doing.get(target, ""))
                )
                outcomes[target] = Failure(cause)
        if self.log.enabled("debug"):
            elapsed = (time.monotonic() - self._started) * 1000
            self.debug(f"{len(outcomes)} targets, calls: {calls or 'none'}, {elapsed:.0f} ms")
        return outcomes

    # -- outcomes ------------------------------------------------------------

    def settle(self, targets: Iterable[Hashable], outcome: Outcome) -> None:
        """Give `targets` their outcome; a target keeps the first one it was given."""
        with self._lock:
            for target in targets:
                self._outcomes.setdefault(target, outcome)

    def fail(self, targets: Iterable[Hashable], cause: str) -> None:
        self.settle(targets, Failure(cause))

    def settled(self, target: Hashable) -> bool:
        with self._lock:
            return target in self._outcomes

    def doing(self, targets: Iterable[Hashable], what: str) -> None:
        """What `targets` wait on, for the timeout message: `waiting for https://...`."""
        with self._lock:
            for target in targets:
                self._doing[target] = what

    # -- for the calls -------------------------------------------------------

    def left(self) -> float:
        """Seconds until the deadline; zero or less once it has passed."""
        return self.deadline - time.monotonic()

    def timed_out(self, doing: str = "") -> str:
        """The timeout cause for a call that gives up at the deadline itself."""
        return timed_out(self.timeout, doing)

    def count(self, call: str) -> None:
        """One more request of this kind, for the debug summary."""
        with self._lock:
            self._calls[call] += 1

    def flag(self, name: str) -> bool:
        """Raise a flag for the rest of this fetch; True only for the caller that raised it."""
        with self._lock:
            first = name not in self._flags
            self._flags.add(name)
            return first

    def flagged(self, name: str) -> bool:
        with self._lock:
            return name in self._flags

    def debug(self, message: str) -> None:
        """One line at --log-level debug: names, counts and timings, never a value."""
        self.log.debug(f"{self.provider}: {message}")

"""The providers' worker pool (secrets_init/providers/pool.py): real threads, a real deadline.

A job that never finishes is released when its test ends; every `wait` runs
under a hang guard, so a pool that ignores its deadline fails instead of
blocking the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator

import pytest

from secrets_init.log import Logger
from secrets_init.providers import Failure, FetchContext, Outcome
from secrets_init.providers.pool import Pool, timed_out, unexpected

HANG_GUARD = 30.0  # far past any deadline used here


def pool(timeout: float, workers: int = 4, provider: str = "demo") -> Pool:
    context = FetchContext(
        deadline=time.monotonic() + timeout, timeout=timeout, log=Logger("error")
    )
    return Pool(provider, context, workers)


def wait(subject: Pool, targets: list[Hashable]) -> dict[Hashable, Outcome]:
    """`subject.wait(targets)`, failing the test if it does not return."""
    answer: list[dict[Hashable, Outcome]] = []
    waiter = threading.Thread(target=lambda: answer.append(subject.wait(targets)), daemon=True)
    waiter.start()
    waiter.join(HANG_GUARD)
    assert answer, "Pool.wait did not return by its deadline"
    return answer[0]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set when the test ends, so a job stuck on it does not outlive the test."""
    event = threading.Event()
    yield event
    event.set()


def test_every_target_settled_by_a_job_gets_its_outcome() -> None:
    subject = pool(timeout=30)
    subject.submit(lambda: subject.settle(["a", "b"], b"value"))
    subject.submit(lambda: subject.fail(["c"], "not found"))
    assert wait(subject, ["a", "b", "c"]) == {
        "a": b"value",
        "b": b"value",
        "c": Failure("not found"),
    }


def test_a_target_keeps_the_first_outcome_it_was_given() -> None:
    subject = pool(timeout=30)

    def job() -> None:
        subject.settle(["t"], b"first")
        subject.settle(["t"], b"second")
        subject.fail(["t"], "too late")

    subject.submit(job)
    assert wait(subject, ["t"]) == {"t": b"first"}


def test_jobs_submitted_by_jobs_are_waited_for() -> None:
    subject = pool(timeout=30)
    subject.submit(lambda: subject.submit(lambda: subject.settle(["inner"], b"x")))
    assert wait(subject, ["inner"]) == {"inner": b"x"}


def test_what_is_missing_at_the_deadline_times_out_saying_what_it_waited_for(
    release: threading.Event,
) -> None:
    subject = pool(timeout=0.5)

    def stuck() -> None:
        subject.doing(["slow"], "waiting for https://example.test")
        release.wait()

    subject.submit(stuck)
    subject.submit(release.wait)  # nothing said about "quiet": the bare wording
    subject.submit(lambda: subject.settle(["fast"], b"ok"))
    outcomes = wait(subject, ["slow", "quiet", "fast"])
    assert outcomes == {
        "slow": Failure("timed out after 0.5s waiting for https://example.test"),
        "quiet": Failure("timed out after 0.5s"),
        "fast": b"ok",
    }


def test_a_job_that_raises_fails_what_is_left_by_type_only() -> None:
    subject = pool(timeout=30, provider="demo")

    def broken() -> None:
        subject.settle(["done"], b"ok")
        raise KeyError("s3cr3t-from-a-response")

    subject.submit(broken)
    outcomes = wait(subject, ["done", "left"])
    assert outcomes == {"done": b"ok", "left": Failure("unexpected KeyError in the demo provider")}
    assert "s3cr3t" not in repr(outcomes)


def test_no_more_workers_than_the_limit(release: threading.Event) -> None:
    subject = pool(timeout=30, workers=2, provider="capped")
    for _ in range(5):
        subject.submit(release.wait)
    started = [t for t in threading.enumerate() if t.name == "capped-call" and t.is_alive()]
    assert len(started) == 2


@pytest.mark.parametrize(
    ("timeout", "doing", "expected"),
    [
        (30.0, "", "timed out after 30s"),
        (2.5, "waiting for https://x", "timed out after 2.5s waiting for https://x"),
        (1.04, "while looking for Google credentials", "timed out after 1s while looking for "
         "Google credentials"),
    ],
)  # fmt: skip
def test_the_one_timeout_wording(timeout: float, doing: str, expected: str) -> None:
    assert timed_out(timeout, doing) == expected


def test_the_one_unexpected_wording() -> None:
    assert (
        unexpected(ValueError("text"), "google") == "unexpected ValueError in the google provider"
    )


def test_a_flag_is_raised_once() -> None:
    subject = pool(timeout=30)
    raised: list[bool] = []
    jobs: list[Callable[[], None]] = [lambda: raised.append(subject.flag("denied"))] * 8
    for job in jobs:
        subject.submit(job)
    wait(subject, [])
    assert sorted(raised) == [False] * 7 + [True]
    assert subject.flagged("denied")

"""A program for secrets-init to supervise: it records every signal it receives.

usage: recorder.py DIR [--grandchild] [--exit-on-term]

Writes DIR/<pid>.ready once its handlers are installed, then appends one line
per received signal number to DIR/<pid>.signals. With --grandchild it forks a
second recorder in its own process group (as a shell job would be not, i.e.
the same group), to tell group from child delivery.
"""

import os
import signal
import sys
import time

directory = sys.argv[1]
exit_on_term = "--exit-on-term" in sys.argv


def record(number: int, frame: object) -> None:
    with open(os.path.join(directory, f"{os.getpid()}.signals"), "a") as log:
        log.write(f"{number}\n")
    if exit_on_term and number == signal.SIGTERM:
        sys.exit(0)


def install() -> None:
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            signal.signal(number, record)
        except (OSError, ValueError):
            pass


install()
role = "child"
if "--grandchild" in sys.argv and os.fork() == 0:
    role = "grandchild"
with open(os.path.join(directory, f"{role}.ready.tmp{os.getpid()}"), "w") as ready:
    ready.write(str(os.getpid()))
os.rename(
    os.path.join(directory, f"{role}.ready.tmp{os.getpid()}"),
    os.path.join(directory, f"{role}.ready"),
)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)

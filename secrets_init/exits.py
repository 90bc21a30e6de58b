"""Every exit status that secrets-init chooses itself, in one place.

Orchestrators and scripts branch on these numbers (a Job's backoff, a
readiness script, `docker run`'s own 125/126/127 convention), so they are a
contract: the README's table is checked against this module, and the
single-file launcher's C copy of `LAUNCHER` against it too. Plain integers,
not an enum: PID 1 imports this, and `enum` would cost it start-up time and
memory for the container's whole life.

When the program ran, secrets-init exits with the program's own status
instead, and with `killed_by(N)` when signal N ended it.
"""

OK = 0
# A secret reference could not be resolved (the program was not started),
# `--check` found a problem, `copy` failed, or secrets-init itself failed.
ERROR = 1
USAGE = 2  # a bad option or SECRETS_INIT_* value
# The single-file launcher could not start secrets-init at all (nowhere to
# unpack, a refused cache directory): set in launcher/launcher.c, where the
# same number is defined as EXIT_LAUNCHER.
LAUNCHER = 125
CANNOT_EXECUTE = 126  # the program exists but exec() refused it
NOT_FOUND = 127  # the program is not on PATH / does not exist
# With `--on-change exit`: a secret that goes to an environment variable
# changed, and the program was stopped so that the orchestrator starts the
# container again with it (sysexits' EX_TEMPFAIL, "try again").
SECRETS_CHANGED = 75
_SIGNALLED = 128


def killed_by(signal_number: int) -> int:
    """The shell's convention for death by a signal; also how we exit when told to stop early."""
    return _SIGNALLED + signal_number

"""Benchmarks: what secrets-init costs against the init wrappers people use instead.

`python -m bench` (or `scripts/bench`, which also installs tini and dumb-init)
measures start-up, resident memory, secret resolution and zombie reaping in
one run and writes docs/benchmarks.md and docs/benchmarks.png. The machine it
runs on is shared and noisy, so every claim is a ratio between numbers taken
in the same run, with runs of the different commands interleaved.

Nothing here is a test: no timing decides whether the suite passes.
"""

"""Where the numbers were taken: they mean little without the machine beside them."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    date: str
    cores: int
    usable_cores: int
    cpu_model: str
    kernel: str
    python: str
    load_before: tuple[float, float, float]


def describe(python: str) -> Machine:
    """`python` is the interpreter the module runs under (its version is reported)."""
    version = subprocess.run(
        [python, "-I", "-S", "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    return Machine(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"CPython {version} ({os.path.realpath(python)})",
        load_before=os.getloadavg(),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

"""Reading /proc: process trees, resident memory and zombie counts.

The kernel here has no /proc/PID/task/TID/children, so a tree is rebuilt from
every process's parent pid; that is a full scan, which the callers keep rare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    comm: str


def read_proc(pid: int) -> Proc | None:
    """None when the process is gone (it may vanish between listdir and open)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # comm is in parentheses and may itself contain spaces or parentheses.
    open_paren, close_paren = raw.find(b"("), raw.rfind(b")")
    fields = raw[close_paren + 2 :].split()
    comm = raw[open_paren + 1 : close_paren].decode("utf-8", "replace")
    return Proc(pid, int(fields[1]), fields[0].decode(), comm)


def all_procs() -> list[Proc]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = read_proc(int(name))
            if proc is not None:
                found.append(proc)
    return found


def tree(root: int) -> list[Proc]:
    """`root` and all of its descendants that exist right now."""
    procs = all_procs()
    children: dict[int, list[Proc]] = {}
    for proc in procs:
        children.setdefault(proc.ppid, []).append(proc)
    top = next((p for p in procs if p.pid == root), None)
    if top is None:
        return []
    result, todo = [top], [top]
    while todo:
        for child in children.get(todo.pop().pid, []):
            result.append(child)
            todo.append(child)
    return result


def rss_kib(pid: int) -> int | None:
    """VmRSS in KiB; None for a zombie or a vanished process."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def ns_pid(pid: int) -> int | None:
    """The process's pid inside its own (innermost) PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")

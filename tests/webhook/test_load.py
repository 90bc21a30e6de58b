"""testing/load.py, the benchmark's load generator: it counts a stall in every request it
delays (open loop), and once per request in a closed loop."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from testing.loopback import LoopbackServer, QuietHandler
from testing.process import ROOT

STALL = 1.0  # seconds the server holds its fifth answer


def _stalling_server() -> LoopbackServer:
    seen = 0
    lock = threading.Lock()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            nonlocal seen
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                seen += 1
                stall = seen == 5
            if stall:
                threading.Event().wait(STALL)
            self.send(200, b'{"ok": true}')

    return LoopbackServer(Handler)


def _load(url: str, body: Path, *options: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "testing.load", url, "--body", str(body), "--requests", "40",
         "--connections", "1", "--expect", '"ok"', *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def test_open_loop_counts_a_stall_in_every_request_it_delays(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text("{}")
    server = _stalling_server()
    try:
        open_loop = _load(f"{server.url}/", body, "--rate", "20")
    finally:
        server.close()
    server = _stalling_server()
    try:
        closed_loop = _load(f"{server.url}/", body)
    finally:
        server.close()
    for summary in (open_loop, closed_loop):
        assert summary["answers"] == 40 and summary["matched"] == 40
        assert summary["statuses"] == {"200": 40}
    # 20 requests a second were due during the 1 s stall and waited behind it: a quarter
    # of the answers took long from when they were due.
    assert float(str(open_loop["p90_ms"])) > STALL * 1000 / 2
    # Closed loop, the next request waits to be sent, so only the stalled one was slow.
    assert float(str(closed_loop["p90_ms"])) < STALL * 1000 / 2
    assert float(str(closed_loop["max_ms"])) >= STALL * 1000

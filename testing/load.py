"""An HTTPS load generator that does not hide a slow server: POST one body over N keep-alive
connections, open-loop at a fixed rate or closed-loop as fast as answers come.

Open-loop (`rate`): request i is due at start + i/rate, dealt round-robin to
the connections, so each connection sends every N/rate seconds and the
connections are spread evenly over that period (not in step). A request that
finds its connection still waiting for an earlier answer goes as soon as it
can, and its latency counts from when it was due, as wrk2 measures: a stall
shows in every request it delays, not in one (no coordinated omission).
Closed-loop (no rate): each connection sends its next request when the last is
answered, and latency counts from the send.

One process and one thread, asyncio: run it in a process of its own
(`python -m testing.load`, JSON on stdout) so it shares no interpreter with
what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answer
    statuses: dict[int, int] = field(default_factory=dict)
    matched: int = 0  # answers whose body holds the expected bytes
    elapsed: float = 0.0  # from the first due time to the last answer

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "answers": len(self.latencies),
            "per_second": len(self.latencies) / self.elapsed if self.elapsed else 0.0,
            "p50_ms": self.percentile(0.50) * 1000,
            "p90_ms": self.percentile(0.90) * 1000,
            "p99_ms": self.percentile(0.99) * 1000,
            "max_ms": max(self.latencies, default=0.0) * 1000,
            "statuses": {str(code): n for code, n in self.statuses.items()},
            "matched": self.matched,
        }


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _run(
    url: str,
    body: bytes,
    total: int,
    connections: int,
    rate: float | None,
    context: ssl.SSLContext,
    expect: bytes,
) -> Result:
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    host, _, port_text = authority.rpartition(":")
    port = int(port_text)
    request = _request(host, port, "/" + path, body)
    result = Result()
    streams = [
        await asyncio.open_connection(host, port, ssl=context if scheme == "https" else None)
        for _ in range(connections)
    ]
    start = time.perf_counter() + 0.05
    sent = 0

    def record(status: int, answer: bytes, since: float) -> None:
        result.latencies.append(time.perf_counter() - since)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if expect in answer:
            result.matched += 1

    async def open_loop(index: int) -> None:
        reader, writer = streams[index]
        assert rate is not None
        for number in range(index, total, connections):
            due = start + number / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(request)
            record(*await _answer(reader), due)

    async def closed_loop(index: int) -> None:
        nonlocal sent
        reader, writer = streams[index]
        while sent < total:
            sent += 1
            since = time.perf_counter()
            writer.write(request)
            record(*await _answer(reader), since)

    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    worker = closed_loop if rate is None else open_loop
    await asyncio.gather(*(worker(index) for index in range(connections)))
    result.elapsed = time.perf_counter() - start
    for _, writer in streams:
        writer.close()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.load", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--body", type=Path, required=True, help="the request body, a file")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, help="requests per second in all; none: closed")
    parser.add_argument("--cafile", help="the CA that signed the server's certificate")
    parser.add_argument("--expect", default="", help="count answers whose body holds this")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.cafile)
    body = args.body.read_bytes()
    result = asyncio.run(
        _run(
            args.url,
            body,
            args.requests,
            args.connections,
            args.rate,
            context,
            args.expect.encode(),
        )
    )
    json.dump(result.summary(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A small closed-loop HTTP/1.1 load generator for ``benchmarks/serving.py``.

    python _loadgen.py --url http://127.0.0.1:8080/invocations --body-file B.json \
        --concurrency 64 --seconds 10 --out R.json

Each of ``--concurrency`` keep-alive connections sends the same POST, waits for the
whole response, and sends the next one, for ``--seconds`` after a one-second warm-up.
Raw asyncio streams keep the client cheap (it runs in its own process, so it does not
share a GIL with the server). Reports requests/s, p50/p90/p99 latency, errors, and
``answered``: every successful response, warm-up included (what a prediction log of the
run must hold).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit


def _request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str,
    port: int,
    payload: bytes,
    start: float,
    stop: float,
    out: list[float],
    errors: list[int],
    answered: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(payload)
            try:
                status = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                errors.append(0)
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            t1 = time.perf_counter()
            if status == 200:
                answered[0] += 1
            if t0 >= start:
                if status == 200:
                    out.append(t1 - t0)
                else:
                    errors.append(status)
    finally:
        writer.close()


async def run(
    url: str, body: bytes, content_type: str, concurrency: int, seconds: float
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    payload = _request(host, port, path, body, content_type)
    now = time.perf_counter()
    start, stop = now + 1.0, now + 1.0 + seconds
    latencies: list[float] = []
    errors: list[int] = []
    answered = [0]  # every 200 answer, warm-up included: what a prediction log must hold
    await asyncio.gather(
        *(
            _worker(host, port, payload, start, stop, latencies, errors, answered)
            for _ in range(concurrency)
        )
    )
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "rps": n / seconds,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "errors": len(errors),
        "answered": answered[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    body = Path(args.body_file).read_bytes()
    result = asyncio.run(run(args.url, body, args.content_type, args.concurrency, args.seconds))
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()

"""HTTP load on raw kept-alive sockets for the serving benchmarks: pre-built requests, so the client is
the cheap side of the exchange and the figures are the server's.

``open_loop`` starts requests on a fixed schedule whatever the latency (a request waits for a free
connection if all are busy), and times each from the moment the client starts it, the wait for a
connection included: a server that falls behind shows it in the tail instead of slowing the client
down. The schedule's due times are absolute, so the event loop's late wake-ups (asyncio sleeps to
whole milliseconds: up to 1 ms late, which would be the client's latency, not the server's) do not
accumulate; the report says how late the client started requests.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass

import numpy as np


def request_bytes(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One request on a kept-alive connection; the response's status (its body read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    await reader.readexactly(length)
    return int(lines[0].split()[1])


@dataclass
class LoadResult:
    latency_ms: np.ndarray  # per request, from when the client started it to the end of its response
    start_lag_ms: np.ndarray  # how late the client started each request against its schedule
    rate: float  # requests answered per second over the run
    errors: int  # non-200 answers and transport errors

    def p(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q))


async def _open_loop(port: int, requests: list[bytes], rate: float, seconds: float, connections: int,
                     warmup: int) -> LoadResult:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    lags: list[float] = []
    errors = 0

    async def one(i: int, due: float | None) -> None:
        began = time.perf_counter()
        nonlocal errors
        conn = await pool.get()
        try:
            status = await exchange(*conn, requests[i % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
            status = -1
            conn[1].close()
            conn = await asyncio.open_connection("127.0.0.1", port)
        pool.put_nowait(conn)
        errors += status != 200
        if due is not None:
            latencies.append(time.perf_counter() - began)
            lags.append(began - due)

    for i in range(warmup):  # every connection and every request once before the clock starts
        await one(i, None)
    n = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return LoadResult(np.array(latencies) * 1e3, np.array(lags) * 1e3, n / wall, errors)


def open_loop(port: int, requests: list[bytes], rate: float, seconds: float, connections: int = 32,
              warmup: int = 200) -> LoadResult:
    """``rate`` requests per second for ``seconds``, cycling through ``requests``. The client's own
    heap is frozen first so that its full collections (~20 ms with pandas and catboost imported) do
    not show up as the server's latency."""
    gc.collect()
    gc.freeze()
    return asyncio.run(_open_loop(port, requests, rate, seconds, connections, warmup))


def highest_rate(port: int, requests: list[bytes], p99_ms: float, start: float = 500, step: float = 250,
                 seconds: float = 8.0) -> tuple[float, LoadResult | None]:
    """The highest rate (start, start + step, ...) the server sustains with p99 under ``p99_ms``, no
    errors and the schedule kept (answered rate within 2% of the offered one). A rate that misses is
    tried once more before the search stops (a stall of the shared host is not the server's limit)."""
    best: tuple[float, LoadResult | None] = (0.0, None)
    rate = start
    while True:
        for _ in range(2):
            result = open_loop(port, requests, rate, seconds)
            if not result.errors and result.p(99) < p99_ms and result.rate >= 0.98 * rate:
                break
        else:
            return best
        best = (rate, result)
        rate += step


def one_by_one(port: int, requests: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """Each request sent when the last is answered, on one kept-alive connection: latencies (ms) and
    statuses."""
    async def run() -> tuple[list[float], list[int]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        took, statuses = [], []
        for r in requests:
            t = time.perf_counter()
            statuses.append(await exchange(reader, writer, r))
            took.append(time.perf_counter() - t)
        writer.close()
        return took, statuses

    took, statuses = asyncio.run(run())
    return np.array(took) * 1e3, statuses

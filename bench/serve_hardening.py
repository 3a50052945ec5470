"""The inference server under hostile and heavy use: the fuzz's 10,000 generated requests (payloads and
model loads, strategies from ``tests/fuzz_requests.py``) counted by status, then 50 concurrent clients on
127.0.0.1 for 30 s (closed loop on raw kept-alive sockets: valid one-row invocations mixed with malformed ones),
with the server's RSS sampled every second. Goals (issue 14): 0 server errors, 0 transport errors, RSS
flat once warm.

    python bench/serve_hardening.py [--clients 50] [--seconds 30] [--fuzz 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzz_requests import FEATURES, MODEL, PAYLOAD, Case, loads, package_files, problem, send  # noqa: E402
from httpload import exchange, request_bytes  # noqa: E402  (bench/httpload.py)
from serve import rss_bytes  # noqa: E402  (bench/serve.py)

from bqx.serving.launch import bqx_serve, free_port, started  # noqa: E402
from bqx.serving.synthetic import synthetic_model  # noqa: E402


def fuzz(client: httpx.Client, root: Path, n: int) -> None:
    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    good = package_files(root / f"{MODEL}.tar.gz")

    def record(case: Case) -> None:
        r = send(client, case, root)
        statuses[r.status_code] += 1
        if (p := problem(case, r)) is not None:
            problems.append(p)

    t = time.perf_counter()
    for strategy, count in ((PAYLOAD, n * 3 // 4), (loads(good), n - n * 3 // 4)):
        @settings(max_examples=count, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: Case) -> None:
            record(case)

        run()
    seconds = time.perf_counter() - t
    total = sum(statuses.values())
    print(f"fuzz requests: {total} count")
    print(f"fuzz server errors (5xx): {sum(v for k, v in statuses.items() if k >= 500)} count")
    print(f"fuzz answers not JSON errors: {len(problems) - sum(v for k, v in statuses.items() if k >= 500)} count")
    print(f"fuzz ok (2xx): {sum(v for k, v in statuses.items() if k < 300)} count")
    print(f"fuzz refused (4xx): {sum(v for k, v in statuses.items() if 400 <= k < 500)} count")
    shown = ", ".join(f"{k}x{v}" for k, v in sorted(statuses.items()))
    print(f"fuzz distinct statuses: {len(statuses)} count ({shown})")
    print(f"fuzz wall time: {seconds:.1f} s")
    for p in problems[:5]:
        print(f"  problem: {p}", file=sys.stderr)


async def load(port: int, clients: int, seconds: float, pid: int) -> None:
    """``clients`` kept-alive connections, each sending its next request when the last is answered: 4 in 5
    valid one-row invocations, 1 in 5 malformed (deep JSON, unknown fields, unknown model, a load outside
    the root, a listing). The client writes pre-built requests on raw sockets so that it, not the server,
    is the cheap side of the exchange."""
    rng = np.random.default_rng(0)
    valid = [request_bytes("POST", f"/models/{MODEL}/invoke", json.dumps({"features": dict(zip(
        FEATURES, rng.standard_normal(len(FEATURES)).tolist(), strict=True))}).encode()) for _ in range(32)]
    bad = [request_bytes("POST", f"/models/{MODEL}/invoke", b"[" * 20_000),
           request_bytes("POST", f"/models/{MODEL}/invoke", b'{"rows": [{"x": 1}]}'),
           request_bytes("POST", "/models/nope/invoke", b'{"features": {}}'),
           request_bytes("POST", "/models", b'{"model_name": "x", "url": "/etc/passwd"}'),
           request_bytes("GET", "/models")]
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    transport_errors = 0
    rss: list[int] = []
    stop = time.perf_counter() + seconds

    def sample() -> None:
        while time.perf_counter() < stop:
            rss.append(rss_bytes(pid))
            time.sleep(1.0)

    async def one_client(i: int) -> None:
        nonlocal transport_errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        k = i
        while time.perf_counter() < stop:
            k += 1
            t = time.perf_counter()
            try:
                status = await exchange(reader, writer, bad[k % len(bad)] if k % 5 == 0 else valid[k % len(valid)])
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                transport_errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - t)
            statuses[status] += 1
        writer.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    wall = time.perf_counter() - t0
    sampler.join()
    lat = np.array(latencies) * 1e3
    first, last = rss[min(2, len(rss) - 1)], rss[-1]
    print(f"load clients: {clients} count")
    print(f"load duration: {wall:.1f} s")
    print(f"load requests: {len(lat)} count")
    print(f"load throughput: {len(lat) / wall:.0f} req/s")
    print(f"load server errors (5xx): {sum(v for k, v in statuses.items() if k >= 500)} count")
    print(f"load transport errors: {transport_errors} count")
    print(f"load answered 4xx (malformed on purpose): {sum(v for k, v in statuses.items() if 400 <= k < 500)} count")
    print(f"load latency p50: {np.percentile(lat, 50):.2f} ms")
    print(f"load latency p99: {np.percentile(lat, 99):.2f} ms")
    print(f"server RSS after warm-up (2 s in): {first / 1e6:.1f} MB")
    print(f"server RSS at the end: {last / 1e6:.1f} MB")
    print(f"server RSS peak: {max(rss) / 1e6:.1f} MB")
    print(f"server RSS growth after warm-up: {(last - first) / 1e6:+.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fuzz", type=int, default=10_000)
    args = ap.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    s3_url = f"http://127.0.0.1:{moto_port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="bqx-fuzz")
    s3.put_object(Bucket="bqx-fuzz", Key="junk.tar.gz", Body=b"\x1f\x8b\x08" + b"\x00" * 64)
    with tempfile.TemporaryDirectory(prefix="bqx-bench-hardening-") as tmp:
        root = Path(tmp)
        synthetic_model(root / f"{MODEL}.tar.gz", MODEL, FEATURES, rows=300, iterations=10)
        port = free_port()
        with started(bqx_serve(port, "--model-root", str(root)), f"http://127.0.0.1:{port}",
                     {"BQX_AWS_ENDPOINT_URL": s3_url, **creds}, quiet=True) as running:
            with httpx.Client(base_url=running.url, timeout=60) as client:
                client.post("/models", json={"model_name": MODEL, "url": f"{MODEL}.tar.gz"}).raise_for_status()
                if args.fuzz:
                    fuzz(client, root, args.fuzz)
            asyncio.run(load(port, args.clients, args.seconds, running.proc.pid))
    moto.stop()


if __name__ == "__main__":
    main()

"""Serving: one-row invocations of a 250-feature model over HTTP, the HTTP layer apart from the model,
model memory, the online feature engine's update time per bar, and raw-bars requests end to end.

Starts ``bqx serve`` as a subprocess on 127.0.0.1 (as the image runs it), loads 28 real models (250
features, 300 trees of depth 6, trained by the training entrypoint on synthetic rows) and drives it
open-loop on raw kept-alive sockets (``httpload``): requests start on a fixed schedule whatever the
latency, so queueing shows up in the tail. References in the same run: ``GET /ping`` at the same rate
(the HTTP layer with no model), the server's own handler called in-process (no HTTP), and CatBoost's
own one-row predict next to the served predictor (the model's JSON export evaluated with numpy).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from bqx.model_package import load_dir, unpacked
from bqx.pairs import PAIRS
from bqx.serving.launch import bqx_serve, free_port, started
from bqx.serving.synthetic import feature_names, synthetic_model

FEATURES = 250
RATE = 500.0  # requests per second (issue 19's goal: p99 <= 1 ms at this rate)
SECONDS = 20.0
TAIL_MS = 5.0  # the highest sustained rate is the highest with p99 under this


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def online_updates(steps: int = 500) -> None:
    """Update time per bar of one pair's online state for every table (1,080 features), with the
    28-pair market the cross-pair tables read, seeded with 12 days; the market advance (once per
    minute, shared by every pair) is timed apart. Reference: recomputing the pair's 25 tables over the
    same history with the batch engine for each new bar (what a server without state would do)."""
    from bqx.config import Settings
    from bqx.extract import pair_inputs
    from bqx.features.registry import FAMILIES
    from bqx.panel import build_panel
    from bqx.sample import generate
    from bqx.serving.engine import PairEngine, market_keep
    from bqx.serving.market import Market

    settings = Settings()
    tables = list(FAMILIES)
    bars = generate(list(PAIRS), days=12, seed=5)
    grid = np.unique(np.concatenate([b["ts_utc"].astype("int64").to_numpy() for b in bars.values()]))
    cut = grid[-steps]
    before = {p: b[b["ts_utc"].astype("int64") < cut] for p, b in bars.items()}
    t = time.perf_counter()
    market = Market(before, settings, market_keep(settings))
    seeded_market = time.perf_counter() - t
    t = time.perf_counter()
    engine = PairEngine("eurusd", before["eurusd"], tables, settings, max_lag=240, market=market)
    print(f"market seed (28 pairs, {len(grid) - steps} grid rows, {market.n} kept): {seeded_market:.2f} s")
    print(f"online seed ({len(before['eurusd'])} bars, {len(engine.columns)} features): "
          f"{time.perf_counter() - t:.2f} s")
    minutes: dict[int, dict[str, dict[str, float]]] = {}
    for p, b in bars.items():
        late = b[b["ts_utc"].astype("int64") >= cut]
        for row in late.itertuples(index=False):
            minutes.setdefault(row.ts_utc.value, {})[p] = {k: float(getattr(row, k)) for k in late.columns
                                                           if k != "ts_utc"}
    advance = []
    for ts in sorted(minutes):
        t = time.perf_counter()
        market.advance(ts, {p: bar["close"] for p, bar in minutes[ts].items()})
        advance.append(time.perf_counter() - t)
        if "eurusd" in minutes[ts]:
            engine.update(minutes[ts]["eurusd"], ts)
    u = np.array(engine.update_seconds) * 1e3
    m = np.array(advance) * 1e3
    print(f"feature update p50 (one pair, {len(engine.columns)} features): {np.percentile(u, 50):.2f} ms")
    print(f"feature update p99 (one pair, {len(engine.columns)} features): {np.percentile(u, 99):.2f} ms")
    print(f"market advance p50 (28 pairs, once per minute): {np.percentile(m, 50):.3f} ms")
    print(f"market advance p99 (28 pairs, once per minute): {np.percentile(m, 99):.3f} ms")
    per_pair = np.percentile(m, 99) / len(PAIRS) + np.percentile(u, 99)
    print(f"feature update p99 per pair per bar (market shared by 28 pairs): {per_pair:.2f} ms")
    panel = build_panel(before, settings)
    t = time.perf_counter()
    _, inp = pair_inputs(before["eurusd"], settings, "eurusd", panel=panel)
    for key in tables:
        FAMILIES[key].compute(inp, settings)
    full = (time.perf_counter() - t) * 1e3
    print(f"batch recompute per bar (reference, {len(before['eurusd'])} bars): {full:.1f} ms")
    print(f"update speed ratio (batch recompute / online p50): {full / np.percentile(u, 50):.0f} x")


def raw_bars_invocations(url: str, root: Path, minutes: int = 1000) -> None:
    """End to end with raw bars: a 250-feature model drawing on all 25 tables (cross-pair ones too),
    seeded by one request with every pair's recent history, then one request per minute carrying the
    new bar of every pair, sent one after another; latency includes parsing, validation, the market
    advance, the pair's feature update and the prediction."""
    from bqx.config import Settings
    from bqx.features.registry import FAMILIES
    from bqx.sample import generate

    every = [f"{t}.{n}" for t, fam in FAMILIES.items() for n in fam.names(Settings())]
    names = [n if i % 2 else f"{n}_lag60" for i, n in enumerate(every[::4][:FEATURES])]
    path = synthetic_model(root / "models" / "raw.tar.gz", "eurusd", names, rows=2000, iterations=300)
    bars = generate(list(PAIRS), days=4, seed=9)
    grid = np.unique(np.concatenate([b["ts_utc"].astype("int64").to_numpy() for b in bars.values()]))
    start, cut = grid[-(3200 + minutes)], grid[-minutes]

    def records(frame: pd.DataFrame) -> list[dict]:
        out = frame.assign(ts_utc=frame["ts_utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return out.to_dict(orient="records")

    ts_of = {p: b["ts_utc"].astype("int64").to_numpy() for p, b in bars.items()}
    first = {p: records(b[(ts_of[p] >= start) & (ts_of[p] < cut)]) for p, b in bars.items()}
    later = []
    for t in grid[-minutes:]:
        minute = {p: records(b[ts_of[p] == t]) for p, b in bars.items()}
        later.append(json.dumps({"bars": {p: v for p, v in minute.items() if v}}).encode())
    with httpx.Client(base_url=url, timeout=120) as c:
        c.post("/models", json={"model_name": "eurusd-raw", "url": str(path)}).raise_for_status()
        # history in pieces under SageMaker's ~6 MB request limit; 202 until the state can start
        chunk, sizes, statuses = 800, [], []
        t0 = time.perf_counter()
        for lo in range(0, len(first["eurusd"]), chunk):
            body = json.dumps({"bars": {p: v[lo:lo + chunk] for p, v in first.items()}}).encode()
            r = c.post("/models/eurusd-raw/invoke", content=body, headers={"Content-Type": "application/json"})
            sizes.append(len(body))
            statuses.append(r.status_code)
            if r.status_code not in (200, 202):
                raise SystemExit(f"seed request failed: {r.status_code} {r.text[:300]}")
        if statuses[-1] != 200:
            raise SystemExit(f"still warming up after the history: {r.text[:300]}")
        print(f"raw-bars warm-up: {len(sizes)} requests of at most {max(sizes) / 1e6:.1f} MB "
              f"({statuses.count(202)} answered 202), seeded in {time.perf_counter() - t0:.2f} s")
    import httpload

    port = int(url.rsplit(":", 1)[1])
    ms, statuses = httpload.one_by_one(port, [httpload.request_bytes("POST", "/models/eurusd-raw/invoke", b)
                                              for b in later])
    if set(statuses) != {200}:
        raise SystemExit(f"raw-bars requests answered {sorted(set(statuses))}")
    print(f"raw-bars invoke p50 (28 pairs' new minute, {FEATURES} features from 25 tables): "
          f"{np.percentile(ms, 50):.2f} ms")
    print(f"raw-bars invoke p99 (28 pairs' new minute, {FEATURES} features from 25 tables): "
          f"{np.percentile(ms, 99):.2f} ms")


def predictors(tarball: Path, rng: np.random.Generator) -> None:
    """One-row predict in process: CatBoost's own (numpy row, and a one-row DataFrame as the plain-pandas
    reference) against the served predictor on the same rows; they agree to 1e-9 (tests/test_trees.py)."""
    with unpacked(tarball) as d:
        cat = load_dir(d, with_reference=False, predictor="catboost")
        trees = load_dir(d, with_reference=False, predictor="trees")
    rows = rng.standard_normal((500, FEATURES))
    timed: dict[str, list[float]] = {"catboost": [], "pandas": [], "trees": []}
    for k, row in enumerate(np.concatenate([rows[:50], rows])):
        frame = pd.DataFrame([row], columns=cat.features)
        for name, fn, x in (("catboost", cat.predict, row[None, :]), ("pandas", cat.predict, frame),
                            ("trees", trees.predict, row[None, :])):
            t = time.perf_counter()
            fn(x)
            if k >= 50:
                timed[name].append(time.perf_counter() - t)
    p50 = {k: float(np.median(v)) * 1e3 for k, v in timed.items()}
    print(f"in-process predict p50 (served: trees from model.json, numpy row): {p50['trees']:.3f} ms")
    print(f"in-process predict p50 (catboost, numpy row, reference): {p50['catboost']:.3f} ms")
    print(f"in-process predict p50 (catboost, one-row DataFrame, reference): {p50['pandas']:.3f} ms")
    print(f"predict speed ratio (catboost / served): {p50['catboost'] / p50['trees']:.1f} x")
    gap = np.abs(trees.predict(rows) - cat.predict(rows)).max()
    print(f"served vs catboost max difference (500 rows): {gap:.2e} abs")


def handler_in_process(models: Path, bodies: list[bytes], names: list[str]) -> None:
    """The server's request handling without HTTP (App.handle: parse, validate, predict, respond)."""
    from bqx.serving.config import ServeConfig
    from bqx.serving.server import App

    app = App(ServeConfig(models=str(models), model_root=str(models)))
    app.preload()
    headers = {"content-type": "application/json"}
    took = []
    for i in range(3000):
        t = time.perf_counter()
        status, _ = app.handle("POST", f"/models/{names[i % len(names)]}/invoke", headers, bodies[i % len(bodies)])
        took.append(time.perf_counter() - t)
        assert status == 200
    ms = np.array(took[500:]) * 1e3
    print(f"invoke handled in process (no HTTP) p50: {np.percentile(ms, 50):.3f} ms")
    print(f"invoke handled in process (no HTTP) p99: {np.percentile(ms, 99):.3f} ms")


def main() -> None:
    import httpload

    online_updates()
    names = feature_names(FEATURES)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bqx-bench-serve-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        first = synthetic_model(root / "models" / "eurusd.tar.gz", "eurusd", names, rows=3000, iterations=300)
        for pair in (p for p in PAIRS if p != "eurusd"):  # the same trees under 28 names (memory, latency)
            (root / "models" / f"{pair}.tar.gz").write_bytes(first.read_bytes())
        print(f"model build: {time.perf_counter() - t0:.1f} s")
        predictors(first, rng)
        model_names = list(PAIRS)
        bodies = [json.dumps({"features": dict(zip(names, rng.standard_normal(FEATURES).tolist(),
                                                   strict=True))}).encode() for _ in range(64)]
        handler_in_process(root / "models", bodies, model_names)

        port = free_port()
        with started(bqx_serve(port, "--model-root", str(root / "models")), f"http://127.0.0.1:{port}",
                     quiet=True) as running:
            url, proc = running.url, running.proc
            before = rss_bytes(proc.pid)
            print(f"server RSS before models: {before / 1e6:.1f} MB")
            with httpx.Client(base_url=url, timeout=60) as c:
                t = time.perf_counter()
                for p in model_names:
                    c.post("/models", json={"model_name": p, "url": str(root / "models" / f"{p}.tar.gz")})
                load_s = time.perf_counter() - t
                accounted = c.get("/models/eurusd").json()["memoryBytes"]
            after = rss_bytes(proc.pid)
            print(f"model load (28 models): {load_s / len(model_names) * 1e3:.1f} ms per model")
            print(f"server RSS with 28 models: {after / 1e6:.1f} MB")
            print(f"measured bytes per loaded model: {(after - before) / len(model_names) / 1e6:.2f} MB")
            print(f"accounted bytes per loaded model: {accounted / 1e6:.2f} MB")

            invokes = [httpload.request_bytes("POST", f"/models/{model_names[i % len(model_names)]}/invoke", b)
                       for i, b in enumerate(bodies)]
            ping = httpload.open_loop(port, [httpload.request_bytes("GET", "/ping")], RATE, SECONDS)
            print(f"ping (HTTP layer, no model) at {RATE:.0f} req/s p50: {ping.p(50):.3f} ms")
            print(f"ping (HTTP layer, no model) at {RATE:.0f} req/s p99: {ping.p(99):.3f} ms")
            res = httpload.open_loop(port, invokes, RATE, SECONDS)
            print(f"invoke requests: {len(res.latency_ms)} count")
            print(f"invoke errors: {res.errors + ping.errors} count")
            print(f"invoke throughput: {res.rate:.1f} req/s")
            print(f"invoke p50 at {RATE:.0f} req/s: {res.p(50):.3f} ms")
            print(f"invoke p99 at {RATE:.0f} req/s: {res.p(99):.3f} ms")
            print(f"invoke p99.9 at {RATE:.0f} req/s: {res.p(99.9):.3f} ms")
            print(f"invoke max at {RATE:.0f} req/s: {res.latency_ms.max():.2f} ms")
            print(f"client start lag p99 (its own timer, not counted): {np.percentile(res.start_lag_ms, 99):.3f} ms")
            best, at = httpload.highest_rate(port, invokes, TAIL_MS)
            print(f"highest sustained rate with p99 under {TAIL_MS:.0f} ms: {best:.0f} req/s")
            if at is not None:
                print(f"invoke p99 at that rate: {at.p(99):.3f} ms")
            raw_bars_invocations(url, root)
            print(f"server RSS at the end: {rss_bytes(proc.pid) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

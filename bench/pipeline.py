"""The whole training pipeline at scale: ``bqx run --local --pairs all --days 259`` (28 pairs x a
trading year of seeded synthetic 1-minute bars), exactly as a user runs it, on this machine.

Prints the wall time of the run and of generating its bars, each stage's task time (sum over pairs,
mean and longest) and peak RSS, the critical path (ingest, panel, the longest pair's chain, deploy),
how busy the cores were, the share of task time outside the stages' own work (Python start-up, imports,
KFP's executor, artifact copies), the imports the prefork server does once for all tasks
(bqx.kubeflow.prefork), the peak memory of the whole process tree (proportional set size: pages the
forked tasks share with the server counted once) and the disk the run left.
The per-task figures come from the stages' own progress lines, which end with
``(work W s, task T s, cpu C s, peak P GB)`` (``bqx.progress``): a task's processor time against its
task time tells waiting for a core (more tasks than cores) from doing more work.

    python bench/pipeline.py                  # 28 pairs x 259 days (about half an hour here)
    python bench/pipeline.py --pairs 4 --days 20
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bqx.pairs import PAIRS
from bqx.progress import COST

LINE = re.compile(r"^\[\s*(?P<at>[\d.]+)s\] (?P<stage>\w+)\s+(?P<subject>\S+)\s+(?P<text>.*)$")
PER_PAIR = ("extract", "lag", "select", "train", "drift")


def proportional_rss(pid: int) -> int:
    """Bytes resident in ``pid``, pages shared with other processes counted in proportion (Pss): tasks
    forked from the prefork server share its imports, which RSS would count once per task."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and every process below it (shared pages counted once)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(d))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += proportional_rss(pid)
        todo += children.get(pid, [])
    return total


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=len(PAIRS), help="how many of the 28 pairs (default all)")
    ap.add_argument("--days", type=int, default=259, help="trading days of bars (default 259)")
    ap.add_argument("--out", help="output directory (default: a temporary one under /var/tmp, removed after)")
    args = ap.parse_args()
    pairs = ",".join(PAIRS[: args.pairs])
    out = Path(args.out or tempfile.mkdtemp(prefix="bqx-bench-pipeline-", dir="/var/tmp"))
    cmd = [sys.executable, "-m", "bqx.cli", "run", "--local", "--pairs", pairs, "--days", str(args.days),
           "--out", str(out)]
    print(f"command: bqx run --local --pairs <{args.pairs} pairs> --days {args.days}", file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started_run, tasks, tail = None, [], collections.deque(maxlen=30)
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip())
        if line.startswith("running bqx-train"):
            started_run = time.perf_counter() - t0
        m = LINE.match(line.strip())
        cost = COST.search(line.strip())
        if m and cost:
            tasks.append({"stage": m["stage"], "subject": m["subject"], "at": float(m["at"]),
                          **{k: float(v) for k, v in cost.groupdict().items()}})
            print(line.rstrip(), file=sys.stderr, flush=True)
    proc.wait()
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode != 0:
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"bqx run exited {proc.returncode}")
    disk = du(out)
    prefork = re.search(r"stage imports ready in ([\d.]+) s", "".join(
        f.read_text() for f in (out / "runs").glob("*/prefork.log")))
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)

    run_wall = wall - (started_run or 0.0)
    print(f"pairs: {args.pairs} count")
    print(f"trading days: {args.days} days")
    print(f"sample bars generated: {started_run or 0.0:.1f} s")
    print(f"pipeline wall time: {run_wall:.1f} s")
    print(f"total wall time: {wall:.1f} s")
    by_stage: dict[str, list[dict]] = collections.defaultdict(list)
    for t in tasks:
        by_stage[t["stage"]].append(t)
    for stage in ("ingest", "panel", *PER_PAIR, "deploy"):
        rows = by_stage.get(stage, [])
        if not rows:
            continue
        task_s = sum(r["task"] for r in rows)
        print(f"{stage} tasks: {len(rows)} count")
        print(f"{stage} task time (sum): {task_s:.1f} s")
        print(f"{stage} task time (longest): {max(r['task'] for r in rows):.1f} s")
        print(f"{stage} processor time (sum): {sum(r['cpu'] for r in rows):.1f} s")
        print(f"{stage} work share: {sum(r['work'] for r in rows) / task_s:.2f} ratio")
        print(f"{stage} peak RSS (largest task): {max(r['peak'] for r in rows):.2f} GB")
    chains = collections.defaultdict(float)
    for t in tasks:
        if t["stage"] in PER_PAIR:
            chains[t["subject"]] += t["task"]
    fixed = sum(r["task"] for s in ("ingest", "panel", "deploy") for r in by_stage.get(s, []))
    longest = max(chains.items(), key=lambda kv: kv[1]) if chains else ("-", 0.0)
    print(f"critical path (ingest + panel + longest pair chain + deploy): {fixed + longest[1]:.1f} s")
    print(f"longest pair chain ({longest[0]}): {longest[1]:.1f} s")
    all_task = sum(t["task"] for t in tasks)
    all_work = sum(t["work"] for t in tasks)
    cores = os.cpu_count() or 1
    print(f"task time (sum over tasks): {all_task:.1f} s")
    print(f"stage work (sum over tasks): {all_work:.1f} s")
    print(f"processor time (sum over tasks): {sum(t['cpu'] for t in tasks):.1f} s")
    print(f"outside the stages' work (start-up, imports, executor): {1 - all_work / all_task:.2f} ratio")
    print(f"cores busy with tasks: {all_task / (cores * run_wall):.2f} ratio")
    if prefork:
        print(f"prefork server imports (once, beside the first tasks): {prefork[1]} s")
    import resource

    whole = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"processor time of the whole run (every process): {whole.ru_utime + whole.ru_stime:.1f} s")
    print(f"of which system time: {whole.ru_stime:.1f} s")
    print(f"peak PSS (whole process tree): {peak[0] / 1e9:.2f} GB")
    print(f"disk left by the run: {disk / 1e9:.2f} GB")
    print(f"disk per pair: {disk / max(args.pairs, 1) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()

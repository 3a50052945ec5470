"""The ``bqx`` command line.

    bqx run --local          the whole pipeline on this machine (kfp.local), on the seeded sample by default
    bqx monitor --local      the recurring drift pipeline on fresh bars against a model repository
    bqx sample-data          write the seeded synthetic bars for the 28 pairs
    bqx validate PATH        check bar files; exit 1 with the file, pair, row and field of the first problem
    bqx plan                 feature counts from the catalog and the settings
    bqx compile              write the pipeline's KFP IR YAML
    bqx train                the SageMaker training entrypoint (reads /opt/ml)
    bqx serve                the inference server (SageMaker single- and multi-model contracts, port 8080)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bqx import __version__
from bqx.artifacts import MODEL_TARBALL
from bqx.config import Settings
from bqx.costs import DEFAULT_CRON
from bqx.pairs import PAIRS

if TYPE_CHECKING:
    from bqx.kubeflow.local_run import Runner

DEFAULT_SAMPLE_PAIRS = ("eurusd", "gbpusd", "usdjpy", "audusd")
DEFAULT_SAMPLE_DAYS = 10


def _pairs(text: str | None, default: tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    if text == "all":
        return list(PAIRS)
    from bqx.pairs import listed_twice, normalise_pair

    pairs = [normalise_pair(p) for p in text.split(",") if p.strip()]
    twice = listed_twice(pairs)
    if twice:
        raise ValueError(f"--pairs lists {', '.join(twice)} twice")
    return pairs


def _interval(text: str) -> int:
    import pandas as pd

    try:
        seconds = pd.Timedelta(text).total_seconds()
    except ValueError:
        raise ValueError(f"--bar-interval {text!r}: not a duration (write e.g. 1min, 5min, 1h)") from None
    if seconds < 60 or seconds % 60:
        raise ValueError(f"--bar-interval {text!r}: must be a whole number of minutes")
    return int(seconds)


def _settings(path: str | None, bar_interval: str | None = None) -> Settings:
    settings = Settings.load(path) if path else Settings()
    return settings.replace(bar_interval_s=_interval(bar_interval)) if bar_interval else settings


def _check_disk(out: Path, settings: Settings, n_pairs: int, rows: int | None, bars: str | None) -> None:
    """Refuse to start a run the disk cannot hold (a run that dies at pair 22 with 'No space left' helps
    nobody): the need is bqx plan's, for the sample's rows or, for your bars, their rows as read from
    the files' metadata."""
    import shutil

    from bqx.plan import disk_bytes

    if rows is None:
        rows = _rows_in(bars) if bars and not str(bars).startswith("s3://") else 0
        rows = rows // max(n_pairs, 1)
    if not rows:
        return
    need = disk_bytes(settings, rows=rows, n_pairs=n_pairs)
    anchor = next((p for p in (out, *out.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(anchor).free
    if need > free:
        raise ValueError(f"this run needs about {need / 2**30:,.1f} GiB under {out} ({n_pairs} pairs x {rows:,} "
                         f"rows, bqx plan's estimate) and only {free / 2**30:,.1f} GiB are free there")


def _rows_in(bars: str) -> int:
    """Bars in the Parquet files under ``bars`` (from their metadata; CSV counted by lines)."""
    import pyarrow.parquet as pq

    total = 0
    for f in Path(bars).rglob("*"):
        if f.suffix == ".parquet":
            total += pq.ParquetFile(f).metadata.num_rows
        elif f.suffix in (".csv", ".txt"):
            with open(f, "rb") as fh:
                total += sum(1 for _ in fh)
    return total


def _runner(args: argparse.Namespace) -> Runner:
    from bqx.kubeflow.local_run import Runner

    if args.runner == "subprocess" and (args.registry or args.tag):
        raise ValueError("--registry and --tag choose the images of --runner docker")
    if args.runner == "docker":
        from bqx.ship import engine

        engine()  # one line now if no engine answers, not a failed task later
    return Runner(args.runner, args.registry or "", args.tag or "")


def cmd_sample(args: argparse.Namespace) -> int:
    from bqx.sample import write_sample

    pairs = _pairs(args.pairs, PAIRS)
    paths = write_sample(args.out, pairs, days=args.days, seed=args.seed, fmt=args.format, start=args.start)
    where = Path(args.out).resolve()
    print(f"wrote {len(paths)} bar files ({args.days} trading days each, seed {args.seed}) to {where}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bqx.bars import describe_interval
    from bqx.ingest import check_coverage, load_pairs

    settings = _settings(args.settings, args.bar_interval)
    pairs = _pairs(args.pairs, ()) or None
    bars = load_pairs(args.path, pairs)
    coverage = check_coverage(bars, settings)
    for pair, df in bars.items():
        interval = coverage[pair].interval_s
        warn = "" if interval == 60 else " (the catalog is designed for 1-minute bars)"
        print(f"{pair}: {len(df):,} bars of {describe_interval(interval)}{warn}, {df['ts_utc'].iloc[0]} .. "
              f"{df['ts_utc'].iloc[-1]}, ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bqx.kubeflow.local_run import run_local
    from bqx.sample import write_sample

    if not args.local:
        print("only the local backend runs from this command; submit to a cluster with the compiled YAML "
              "(see README). Running locally.", file=sys.stderr)
    settings = _settings(args.settings, args.bar_interval)
    if args.days < 1:
        raise ValueError(f"--days must be at least 1, got {args.days}")
    out = Path(args.out).resolve()
    if not settings.registry.uri:  # runs into the same --out share one model registry
        settings = settings.replace(registry=dataclasses.replace(settings.registry, uri=str(out / "registry")))
    runner = _runner(args)
    _check_disk(out, settings, len(_pairs(args.pairs, settings.features.pairs if args.bars else DEFAULT_SAMPLE_PAIRS)),
                args.days * 1440 if not args.bars else None, args.bars)
    if args.bars:
        source = args.bars if str(args.bars).startswith("s3://") else Path(args.bars)
        pairs = _pairs(args.pairs, settings.features.pairs)
    else:
        pairs = _pairs(args.pairs, DEFAULT_SAMPLE_PAIRS)
        source = out / "sample_bars"
        write_sample(source, pairs, days=args.days)
        print(f"sample: {len(pairs)} pairs x {args.days} trading days of seeded synthetic bars in {source}")
    if runner.kind == "subprocess":
        _ready_kernels(settings)
    print(f"running bqx-train locally (kfp.local, {runner.kind} runner) for {', '.join(pairs)}")
    result = run_local(source, out, settings, pairs, runner=runner)
    print(summary_text(result))
    return 0


def _ready_kernels(settings: Settings) -> None:
    """Compile the declared feature kernels here, once, before the extract tasks start (in parallel
    they would each compile them); on a machine that has them cached this only loads them."""
    import os

    from bqx.features.registry import compile_declared

    for table, seconds, _ in compile_declared(settings, workers=min(2, os.cpu_count() or 1)):
        if seconds > 2.0:
            print(f"feature kernel {table} compiled in {seconds:.0f} s (once per machine; cached from now on)",
                  flush=True)


def summary_text(result: object) -> str:
    """Where every output went, with the headline numbers."""
    from bqx.kubeflow.local_run import LocalRunResult

    assert isinstance(result, LocalRunResult)
    lines = [f"\nfinished in {result.seconds:.0f} s; outputs under the run directory {result.run_dir}/"]

    def rel(uri: str) -> str:
        return str(Path(uri).relative_to(result.run_dir))

    ingest = result.find("ingest-bars")[0]
    lines.append(f"  bars (validated)       {rel(ingest.artifacts['bars']['uri'])}")
    by_pair: dict[str, dict[str, dict]] = {}  # pair -> task -> output name -> artifact
    for task in result.tasks:
        if task.pair:
            by_pair.setdefault(task.pair, {})[task.task.rsplit("/", 1)[-1]] = task.artifacts
    shown = (("extract-features", "features", "features"), ("lag-features", "candidates", "lag plan, splits"),
             ("select-features", "dataset", "selection"), ("train-model", "model", MODEL_TARBALL),
             ("train-model", "model_card", "model card"), ("train-model", "evaluation", "evaluation (HTML)"),
             ("drift-report", "report", "drift report (HTML)"),
             ("drift-report", "summary", "drift summary"))
    failed: dict[str, str] = {}
    for pair, tasks in sorted(by_pair.items()):
        lines.append(f"  {pair}")
        failure = next((a["metadata"] for t in tasks.values() for a in t.values()
                        if a["metadata"].get("status") == "failed"), None)
        if failure is not None:  # a pair that failed in a per-pair stage: the others went on (bqx.pair_status)
            failed[pair] = failure.get("failed_stage", "?")
            lines.append(f"    FAILED at {failed[pair]}: {str(failure.get('reason', ''))[:300]}")
            continue
        for task_name, output, label in shown:
            if output in tasks.get(task_name, {}):
                lines.append(f"    {label:<20} {rel(tasks[task_name][output]['uri'])}")
        m = tasks.get("train-model", {}).get("metrics", {}).get("metadata", {})
        if "model_rmse" in m:
            from bqx.train.evaluate import headline

            lines.append("    " + headline(m))
    deploy = result.find("deploy-models")
    not_served: dict[str, str] = {}
    deployed = len(by_pair) - len(failed)
    if deploy:
        repo = deploy[0].artifacts["repository"]
        lines.append(f"  model repository       {rel(repo['uri'])}")
        not_served = repo["metadata"].get("not_served", {})
        deployed = len(repo["metadata"].get("pairs", []))
        for pair, why in sorted(not_served.items()):
            lines.append(f"  gate: {pair} not deployed: {why}")
    if failed or not_served:
        lines.append(f"  deployed {deployed} of {len(by_pair)} pairs"
                     + (f"; not approved: {', '.join(sorted(not_served))}" if not_served else "")
                     + ("; FAILED: " + ", ".join(f"{p} (at {stage})" for p, stage in sorted(failed.items()))
                        if failed else ""))
    lines.append(f"  log                    {result.log_path}")
    return "\n".join(lines)


def cmd_monitor(args: argparse.Namespace) -> int:
    from bqx.kubeflow.local_run import run_local_drift

    settings = _settings(args.settings)
    pairs = _pairs(args.pairs, settings.features.pairs)
    out = Path(args.out).resolve()
    runner = _runner(args)
    print(f"running bqx-drift locally ({runner.kind} runner) for {', '.join(pairs)} against {args.models}")
    result = run_local_drift(args.bars, args.models, out, settings, pairs, runner=runner,
                             prediction_log=args.served or "", apply_ab=args.apply_ab)
    print(f"\nfinished in {result.seconds:.0f} s; outputs under {result.run_dir}/")
    for task in result.find("decide-ab"):
        verdict = task.artifacts["verdict"]
        print(f"  A/B test: {verdict['metadata'].get('action')} (the verdict: {verdict['uri']})")
    for task in sorted(result.find("monitor-drift"), key=lambda t: t.pair or ""):
        meta = task.artifacts["summary"]["metadata"]
        states = ", ".join(f"{k.removeprefix('status_')} {v}" for k, v in sorted(meta.items())
                           if k.startswith("status_"))
        lines = [f"  {task.pair}: {states}", f"    report {task.artifacts['report']['uri']}"]
        print("\n".join(lines))
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from bqx.kubeflow.schedule import Wanted, ensure_recurring_run, params_from

    wanted = Wanted(args.name, args.pipeline, args.version, args.cron, args.experiment,
                    params_from(args.settings, args.source, args.param), args.service_account, args.namespace)
    outcome = ensure_recurring_run(_kfp_client(args.host, args.token_path), wanted)
    print(f"recurring run {args.name}: {outcome}")
    return 0


def _kfp_client(host: str, token_path: str | None) -> object:
    """kfp.Client for ``host``; with a token file (a projected service-account token, as multi-user Kubeflow
    wants: --token-path or KF_PIPELINES_SA_TOKEN_PATH) every call carries it as a bearer token."""
    import os

    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    path = token_path or os.environ.get("KF_PIPELINES_SA_TOKEN_PATH")
    if path and not os.path.isfile(path):
        raise ValueError(f"--token-path {path}: no such file (mount the pipelines.kubeflow.org service account token)")
    return kfp.Client(host=host, credentials=ServiceAccountTokenVolumeCredentials(path) if path else None)


def cmd_images(args: argparse.Namespace) -> int:
    from bqx.ship import build_images, image_plan, write_constraints

    if args.write_constraints:
        print(f"wrote {write_constraints(Path(args.root) / 'images' / 'constraints.txt')}")
        return 0
    if args.dry_run:
        for b in image_plan(Path(args.root), args.registry, args.tag, args.python_image):
            target = f" --target {b.target}" if b.target else ""
            args_text = " ".join(f"--build-arg {k}={v}" for k, v in b.buildargs.items())
            print(f"{b.ref}  <- {b.dockerfile}{target} {args_text}")
        return 0
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    built = build_images(Path(args.root), args.registry, args.tag, args.python_image, args.ca_bundle, args.push,
                         only, jobs=args.jobs)
    for b in built:
        print(f"image size {b.ref}: {b.size_bytes / 1e6:,.0f} MB")
    print(f"{'pushed' if args.push else 'built'} {len(built)} images; compile with "
          f"`bqx compile --registry {args.registry} --tag {args.tag}`")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from bqx.kubeflow.schedule import params_from
    from bqx.ship import submit

    run_id = submit(args.host, Path(args.package), args.pipeline, args.version, args.experiment, args.run_name,
                    params_from(args.settings, args.source))
    print(f"submitted run {run_id}")
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    from bqx.kubeflow.manifests import write_pipeline_objects

    print(f"wrote {write_pipeline_objects(args.out)}")
    return 0


def cmd_ack_manifests(args: argparse.Namespace) -> int:
    from bqx.ack.manifests import pair_objects, write

    objects = pair_objects(args.pair, _settings(args.settings), args.dataset, args.run, args.namespace)
    if args.crds:
        from bqx.ack.schema import load, problems

        schemas = load(args.crds)
        found = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in objects for p in problems(o, schemas)]
        if found:
            raise ValueError("the objects do not match the CRDs in " + args.crds + ": " + "; ".join(found))
    for path in write(objects, args.out):
        print(f"wrote {path}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from bqx.predict import run

    pairs = [p.strip() for p in args.pairs.split(",")] if args.pairs else None
    summary = run(args.bars, args.models, args.out, pairs, args.since,
                  progress=lambda pair, text: print(f"predict {pair}: {text}", flush=True), backend=args.backend,
                  settings=_settings(args.settings))
    print(f"wrote {summary.path}: {summary.rows:,} predictions for {len(summary.pairs)} pairs in "
          f"{summary.seconds:.1f} s")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from bqx.pairs import check_pair
    from bqx.registry.gate import APPROVED, REJECTED

    check_pair(args.pair)
    if args.dir:
        from bqx.registry.local import LocalRegistry

        registry = LocalRegistry(args.dir)
    else:
        from bqx.registry.sagemaker import SageMakerRegistry

        registry = SageMakerRegistry(_settings(args.settings))
    if args.action == "list":
        versions = registry.versions(args.pair)
        if not versions:
            print(f"{args.pair}: no versions registered")
        for v in versions:
            rmse = v.metrics.get("model_rmse")
            print(f"v{v.version:<4} {v.status:<22} {v.created:<26} "
                  f"{'' if rmse is None else f'test RMSE {rmse:.4g}  '}{v.reason}")
        return 0
    if args.version is None:
        raise ValueError(f"bqx registry {args.action} needs --version")
    status = APPROVED if args.action == "approve" else REJECTED
    reason = args.reason or f"{status.lower()} by hand (bqx registry {args.action})"
    v = registry.set_status(args.pair, args.version, status, reason)
    print(f"{v.name} is {v.status}: {v.reason}; the next deploy serves the newest approved version")
    return 0


def cmd_ab(args: argparse.Namespace) -> int:
    from bqx.ab import CANDIDATE, CURRENT
    from bqx.ab.endpoint import finish_ab, verdict_due
    from bqx.locations import read_manifest

    settings = _settings(args.settings)
    a = settings.aws
    repository = args.models or (f"s3://{a.bucket}/{a.prefix}/models/" if a.bucket else "")
    if args.action in ("promote", "rollback"):
        done = finish_ab(settings, args.action, args.reason or f"{args.action} by hand (bqx ab {args.action})")
        print(f"A/B test {done.ab}: {done.action}; the {done.winner} variant serves all traffic on endpoint "
              f"{a.endpoint_name} ({done.endpoint_config})")
        return 0
    if not repository:
        raise ValueError("bqx ab needs --models (a model repository) or aws.bucket in --settings")
    if args.action == "status":
        ab = read_manifest(repository).get("ab")
        if not ab:
            print(f"{repository}: no A/B test is running")
            return 0
        changed = sorted(p for p in ab[CANDIDATE] if ab[CURRENT].get(p, {}).get("sha256") != ab[CANDIDATE][p]["sha256"])
        due = verdict_due(ab, settings)
        print(f"A/B test {ab['id']} since {ab['started']}: the candidate takes {ab['candidate_percent']}% of the "
              f"traffic; it changes {len(changed)} pair(s): {', '.join(changed) or 'none'}; verdict due from "
              f"{due.isoformat()} (registry.ab_window_h {settings.registry.ab_window_h:g} h); deploys of other "
              "models wait until it ends")
        return 0
    from bqx.ab.live import review

    if not args.served or not args.bars:
        raise ValueError("bqx ab decide needs --served (the prediction log or Data Capture) and --bars")
    ab, verdict, done = review(repository, args.served, args.bars, settings, args.apply,
                               _utc_time(args.now) if args.now else None)
    for v in verdict.variants:
        print(f"{v.variant:<10} {v.rows:>8,} answers scored   live RMSE {v.rmse:.5g}")
    print(f"A/B test {ab['id']}: {verdict.action}: {verdict.why}")
    if done is not None:
        print(f"applied: the {done.winner} variant serves all traffic on endpoint {a.endpoint_name}")
    return 0


def _utc_time(text: str) -> object:
    import pandas as pd

    return pd.Timestamp(text, tz="UTC") if pd.Timestamp(text).tzinfo is None else pd.Timestamp(text)


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from bqx.costs import CostLine, MonthlyCost, monthly_text
    from bqx.io import write_json
    from bqx.plan import compare_text, diff_text, plan_data, plan_text

    settings = _settings(args.settings).replace(profile=args.profile)
    if args.years <= 0:
        raise ValueError(f"--years {args.years}: must be above 0")
    if args.tune_trials is None:
        args.tune_trials = settings.training.tune_trials
    if args.tune_trials < 0:
        raise ValueError(f"--tune-trials {args.tune_trials}: must be 0 or more")
    if args.batch_runs < 0:
        raise ValueError(f"--batch-runs {args.batch_runs}: must be 0 or more")
    data = plan_data(settings, args.prices, args.cron, args.years, args.tune_trials, args.batch_runs) \
        if args.monthly or args.json or args.diff else None
    if args.diff:
        try:
            old = json.loads(Path(args.diff).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--diff {args.diff}: not a plan written by bqx plan --json ({err})") from None
        if not isinstance(old, dict) or "monthly" not in old:
            raise ValueError(f"--diff {args.diff}: not a plan written by bqx plan --json (no monthly section)")
        print(diff_text(old, data or {}))
    else:
        print(plan_text(settings, args.prices, args.model))
        if args.profile == "base":
            print(compare_text(settings))
        if args.monthly and data:
            m = data["monthly"]
            lines = [CostLine(**line) for line in m["lines"]]
            print("\n" + monthly_text(MonthlyCost(lines, m["runs_per_month"], m["years"])))
    if args.json and data:
        write_json(data, args.json)
        print(f"wrote {args.json}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from bqx.kubeflow.compile import DEFAULT_PATH, DRIFT_PATH, PREDICT_PATH, compile_pipeline

    path = compile_pipeline(args.out, "train", args.registry, args.tag)
    print(f"wrote {path}")
    for which, default in (("drift", DRIFT_PATH), ("predict", PREDICT_PATH)):
        print(f"wrote {compile_pipeline(Path(args.out).with_name(default.name), which, args.registry, args.tag)}")
    if Path(args.out) == DEFAULT_PATH and Path("manifests/base").is_dir():  # keep the GitOps objects in step
        from bqx.kubeflow.manifests import write_pipeline_objects

        print(f"wrote {write_pipeline_objects()}")
    return 0


def cmd_kernels(args: argparse.Namespace) -> int:
    import os

    from bqx.features.registry import compile_declared

    settings = _settings(args.settings)
    total = 0.0
    for table, seconds, state in compile_declared(settings, workers=os.cpu_count() or 1):
        total += seconds
        print(f"{table:<22} {seconds:6.1f} s  ({state} state slots)", flush=True)
    from bqx.extract import warm_extract

    seconds = warm_extract(settings)
    total += seconds
    print(f"{'other tables':<22} {seconds:6.1f} s  (their numba functions, through a short extract)", flush=True)
    where = os.environ.get("NUMBA_CACHE_DIR", "beside the generated source")
    print(f"feature kernels ready ({total:.1f} s of compiling or loading; machine code cached {where})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bqx.train.entrypoint import main as train_main

    return train_main()


def cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses

    from bqx.serving.config import writable_kernel_cache

    writable_kernel_cache()  # before anything imports numba (bqx.targets does, through the features)

    if args.compile_only:
        from bqx.serving.online import compile_kernels

        print(f"online feature kernels compiled (or loaded from the cache) in {compile_kernels():.1f} s")
        return 0

    from bqx.serving.config import ServeConfig, check, read_token
    from bqx.serving.server import serve

    config = ServeConfig.from_env()
    flags = {"host": args.host, "port": args.port, "models": args.models, "log_dir": args.log_dir,
             "signal_threshold": args.signal_threshold,
             "budget_bytes": int(args.memory_mb * 1024 * 1024) if args.memory_mb is not None else None,
             "access_log": True if args.access_log else None, "model_root": args.model_root,
             "auth_token": read_token(args.auth_token_file) if args.auth_token_file else None,
             "variant": args.variant}
    return serve(check(dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})))


def _runner_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner", choices=("subprocess", "docker"), default="subprocess",
                   help="subprocess: every task in this Python (default); docker: every task in its stage image "
                        "through the Docker Engine API at DOCKER_HOST (Docker, or podman's socket)")
    p.add_argument("--registry", help="with --runner docker: images are REGISTRY/bqx-<stage>:TAG (as bqx images "
                                      "built them; default ghcr.io/bqx-ml)")
    p.add_argument("--tag", help=f"with --runner docker: the images' tag (default {__version__})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bqx", description="bqx-ml: FX forecasting pipeline (KFP v2, SageMaker)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the whole pipeline (locally through kfp.local)")
    p.add_argument("--local", action="store_true", help="run on this machine through kfp.local (the default)")
    p.add_argument("--bars", help="directory (or s3://bucket/prefix) of bar files; default: the seeded sample")
    p.add_argument("--pairs", help="comma-separated pairs or 'all' (sample default: "
                                   f"{','.join(DEFAULT_SAMPLE_PAIRS)})")
    p.add_argument("--days", type=int, default=DEFAULT_SAMPLE_DAYS, help="trading days of sample bars")
    p.add_argument("--out", default="bqx-out", help="output directory (default ./bqx-out)")
    p.add_argument("--settings", help="settings JSON file")
    p.add_argument("--bar-interval", help="state the bar interval (e.g. 1min, 5min, 1h) instead of inferring it "
                                          "from the data; ingest refuses bars of another spacing")
    _runner_options(p)
    p.add_argument("--debug", action="store_true", help="on failure, print the traceback and the log's last lines")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("monitor", help="run the recurring drift pipeline (bqx-drift) locally on fresh bars")
    p.add_argument("--local", action="store_true", help="through kfp.local (the only way from this command)")
    p.add_argument("--bars", required=True, help="directory (or s3:// prefix) of fresh bar files")
    p.add_argument("--models", required=True, help="model repository of a training run (its deploy output)")
    p.add_argument("--pairs", help="comma-separated pairs or 'all' (default: the settings' pairs)")
    p.add_argument("--out", default="bqx-drift-out")
    p.add_argument("--settings", help="settings JSON file")
    p.add_argument("--served", help="the prediction log or Data Capture (directory or s3://): drift of what was "
                                    "served, and the verdict on a running A/B test")
    p.add_argument("--apply-ab", action="store_true", help="promote or roll back the A/B test when the verdict says so")
    _runner_options(p)
    p.add_argument("--debug", action="store_true", help="on failure, print the traceback and the log's last lines")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("sample-data", help="write seeded synthetic 1-minute bars")
    p.add_argument("--out", default="sample_bars")
    p.add_argument("--pairs", help="comma-separated pairs or 'all' (default all 28)")
    p.add_argument("--days", type=int, default=DEFAULT_SAMPLE_DAYS)
    p.add_argument("--start", default="2024-07-01")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("validate", help="validate bar files (Parquet, CSV, HistData, Dukascopy, OANDA JSON) and "
                                        "check them against the settings")
    p.add_argument("path")
    p.add_argument("--pairs", help="comma-separated pairs (default: every pair found)")
    p.add_argument("--settings", help="settings JSON file (baseline date, bar interval, sizes)")
    p.add_argument("--bar-interval", help="the bar interval the bars must have (e.g. 1min, 1h)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="feature counts from the catalog and settings")
    p.add_argument("--settings")
    p.add_argument("--profile", choices=("full", "base"), default="full",
                   help="'base' leaves out the advanced tables and prints both plans side by side")
    p.add_argument("--prices", help="instance price CSV (default: the bundled, dated file)")
    p.add_argument("--model", help="a model.tar.gz (or model directory) whose loaded size sizes the endpoint "
                                   "(default: estimated from the training settings)")
    p.add_argument("--monthly", action="store_true",
                   help="also print the monthly cost: processing, training, tuning, endpoint, batch, storage")
    p.add_argument("--cron", default=DEFAULT_CRON,
                   help=f"the recurring training run's six-field cron, its cadence (default {DEFAULT_CRON!r})")
    p.add_argument("--years", type=float, default=1.0, help="years of bars per pair each run trains on (default 1)")
    p.add_argument("--tune-trials", type=int, help="tuning fits per pair and run (default: the settings' "
                                                    "training.tune_trials)")
    p.add_argument("--batch-runs", type=float, default=0.0,
                   help="bqx-predict runs a month, each over a month of every pair's bars (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the plan (counts, instances, sizes, monthly cost) as JSON")
    p.add_argument("--diff", metavar="OLD.json", help="print what changed from a plan written by --json")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML")
    p.add_argument("--out", default="pipelines/bqx_pipeline.yaml")
    p.add_argument("--registry", help="image registry of the stage images (default ghcr.io/bqx-ml)")
    p.add_argument("--tag", help="tag of the stage images (default: the bqx version)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("schedule", help="create or update a KFP recurring run idempotently (GitOps reconcile)")
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline.kubeflow:8888")
    p.add_argument("--name", required=True, help="recurring run name")
    p.add_argument("--pipeline", default="bqx-train")
    p.add_argument("--version", required=True, help="pipeline version name (from manifests/)")
    p.add_argument("--cron", required=True, help="six-field KFP cron expression, e.g. '0 0 6 * * 1-5'")
    p.add_argument("--experiment", default="bqx")
    p.add_argument("--source", help="bars location passed to the pipeline (the same as --param source=...)")
    p.add_argument("--settings", help="settings JSON file passed as settings_json")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any pipeline parameter, typed by the pipeline version's spec (lists: a,b or JSON); "
                        "repeat for each")
    p.add_argument("--service-account", default="", help="the Kubernetes service account the run's pods use "
                                                         "(manifests/: bqx-pipelines, bound to the IRSA role)")
    p.add_argument("--namespace", default="", help="the user namespace of a multi-user Kubeflow")
    p.add_argument("--token-path", help="a service-account token file for the KFP API (default: "
                                        "KF_PIPELINES_SA_TOKEN_PATH when set)")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("images", help="build (and push) every image with one tag through a Docker-compatible API",
                       description="Build the wheelhouse and every image (images/Dockerfile) through the Docker "
                                   "Engine API at DOCKER_HOST: Docker, or podman's socket (podman system service).")
    p.add_argument("--registry", default="ghcr.io/bqx-ml", help="image names are REGISTRY/bqx-<stage>:TAG")
    p.add_argument("--tag", default=__version__)
    p.add_argument("--python-image", default="python:3.11-slim-bookworm",
                   help="the Python base image (Debian with python3 and python3-venv)")
    p.add_argument("--ca-bundle", help="a PEM CA bundle pip trusts inside the build (behind a TLS-inspecting "
                                       "proxy); it stays in the build, never in an image")
    p.add_argument("--only", help="comma-separated images to build (default: all)")
    p.add_argument("--push", action="store_true", help="push the images once every one is built")
    p.add_argument("--jobs", type=int, default=2, help="images built at a time after the wheelhouse (default 2)")
    p.add_argument("--root", default=".", help="the repository checkout to build from")
    p.add_argument("--dry-run", action="store_true", help="print what would be built")
    p.add_argument("--write-constraints", action="store_true",
                   help="pin images/constraints.txt to this environment's versions of every image's dependencies")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("submit", help="upload the compiled pipeline as a new version and start a run (kfp Client)")
    p.add_argument("--host", required=True, help="KFP API endpoint")
    p.add_argument("--package", default="pipelines/bqx_pipeline.yaml")
    p.add_argument("--pipeline", default="bqx-train")
    p.add_argument("--version", required=True, help="name of the new pipeline version")
    p.add_argument("--experiment", default="bqx")
    p.add_argument("--run-name", default="bqx-train")
    p.add_argument("--source", required=True, help="bars location passed to the pipeline")
    p.add_argument("--settings", help="settings JSON file passed as settings_json")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("manifests", help="write the Pipeline/PipelineVersion objects for manifests/")
    p.add_argument("--out", default="manifests/base/pipelines.yaml")
    p.set_defaults(func=cmd_manifests)

    p = sub.add_parser("predict", help="predict every bar of a span for every pair of a model repository",
                       description="Batch prediction with the deployed models: the features serving computes, "
                                   "from the batch engine; one Parquet of ts_utc, pair, prediction, target_model. "
                                   "Bars before a model's warm-up are history only.")
    p.add_argument("--bars", required=True, help="bar files (a directory or s3:// prefix) of every pair of the "
                                                 "models' panel, with enough history before --since")
    p.add_argument("--models", required=True, help="a model repository (what deploy wrote: manifest.json)")
    p.add_argument("--out", required=True, help="the Parquet file to write")
    p.add_argument("--pairs", help="only these pairs (comma-separated; default: every pair of the repository)")
    p.add_argument("--since", help="predict bars from this UTC time on (e.g. 2024-07-01); earlier bars are history")
    p.add_argument("--backend", choices=["local", "sagemaker"], default="local",
                   help="local: predict here; sagemaker: one Batch Transform job per pair on aws.serve_image "
                        "(the settings' aws section says where)")
    p.add_argument("--settings", help="settings JSON file (the aws section, for --backend sagemaker)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("registry", help="list a pair's registered model versions, or approve/reject one by hand",
                       description="The model registry the deploy stage writes: a directory (--dir, e.g. "
                                   "runs/registry after bqx run --local) or SageMaker's Model Registry (the aws "
                                   "section of --settings). Deploy serves each pair's newest approved version.")
    p.add_argument("action", choices=("list", "approve", "reject"))
    p.add_argument("--pair", required=True)
    p.add_argument("--version", type=int, help="the version to approve or reject")
    p.add_argument("--reason", default="", help="recorded with the new status")
    p.add_argument("--dir", help="a local registry directory (default: SageMaker's, from --settings)")
    p.add_argument("--settings", help="settings JSON file (aws.region, bucket, prefix, serve_image)")
    p.set_defaults(func=cmd_registry)

    p = sub.add_parser("ab", help="an A/B test on the endpoint: its status, the verdict on live metrics, or "
                                  "promote/rollback by hand",
                       description="A deploy with aws.ab_candidate_percent serves new models as the candidate "
                                   "variant beside the current one. decide scores what each variant served against "
                                   "the realised targets (registry.ab_* settings) and, with --apply, moves all "
                                   "traffic to the winner.")
    p.add_argument("action", choices=("status", "decide", "promote", "rollback"))
    p.add_argument("--settings", help="settings JSON file (aws: the endpoint; registry: the A/B policy)")
    p.add_argument("--models", help="the model repository (default: s3://{aws.bucket}/{aws.prefix}/models/)")
    p.add_argument("--served", help="decide: the prediction log or Data Capture prefix (directory or s3://)")
    p.add_argument("--bars", help="decide: bar files covering the test and the target horizon after it")
    p.add_argument("--now", help="decide: judge as of this UTC time (default: now)")
    p.add_argument("--apply", action="store_true", help="decide: promote or roll back when the verdict says so")
    p.add_argument("--reason", default="", help="promote/rollback: recorded in the manifest")
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("ack-manifests", help="write one pair's ACK SageMaker objects (TrainingJob, Model, "
                       "EndpointConfig, Endpoint) as YAML files",
                       description="The custom resources the ack backends create for a pair, one YAML file each, to "
                                   "review or to apply by GitOps.")
    p.add_argument("--pair", required=True)
    p.add_argument("--out", required=True, help="directory for the YAML files")
    p.add_argument("--settings", help="settings JSON file (its aws section names the bucket, role and images)")
    p.add_argument("--dataset", help="the pair's select-stage output: the TrainingJob gets a run's exact name")
    p.add_argument("--run", default="", help="the bqx.ml/run label (default: manual)")
    p.add_argument("--namespace", default="", help="metadata.namespace of the objects (default: none)")
    p.add_argument("--crds", help="check the objects against the ACK CRDs in this directory before writing")
    p.set_defaults(func=cmd_ack_manifests)

    p = sub.add_parser("kernels", help="compile the feature kernels into the caches (images do it at build)",
                       description="Generate and compile every feature table declared as expressions, batch and "
                                   "online forms, then run a short extract of synthetic bars so the numba "
                                   "functions written by hand are compiled too; later runs load them instead "
                                   "of compiling.")
    p.add_argument("--settings", help="settings JSON file (tables whose expressions depend on settings)")
    p.set_defaults(func=cmd_kernels)

    p = sub.add_parser("train", help="SageMaker training entrypoint (reads /opt/ml or BQX_OPT_ML)",
                       description="The SageMaker training entrypoint: reads hyperparameters and channels from "
                                   "/opt/ml (or BQX_OPT_ML), writes the model to /opt/ml/model, a failure reason "
                                   "to /opt/ml/output/failure.")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("serve", help="run the inference server (SageMaker multi-model container contract)",
                       description="Serve models over HTTP: /ping, /invocations and the SageMaker multi-model API "
                                   "(/models). Flags override BQX_SERVE_* environment variables.")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1; BQX_SERVE_HOST; the serve image sets "
                                  "0.0.0.0, as SageMaker needs)")
    p.add_argument("--port", type=int, help="port (default 8080; SAGEMAKER_BIND_TO_PORT or BQX_SERVE_PORT)")
    p.add_argument("--variant", help="the A/B variant this server is (BQX_VARIANT; named in answers and the "
                                     "prediction log)")
    p.add_argument("--models", help="preload every model.tar.gz or model directory in this directory "
                                    "(BQX_SERVE_MODELS); /opt/ml/model is loaded as 'default' when present")
    p.add_argument("--model-root", help="POST /models loads local paths inside this directory only, symlinks "
                                        "resolved (BQX_SERVE_MODEL_ROOT; default: the --models directory; the serve "
                                        "image: /opt/ml/models); s3:// URLs load either way")
    p.add_argument("--auth-token-file", help="require 'Authorization: Bearer <token>' on the /models management "
                                             "routes, the token being this file's first line "
                                             "(or BQX_SERVE_AUTH_TOKEN); invocations stay open")
    p.add_argument("--memory-mb", type=float, help="model memory budget; least recently used models are evicted "
                                                   "beyond it (default: 75%% of the container's memory)")
    p.add_argument("--signal-threshold", type=float, help="|predicted BQX| that trades (default: the model's "
                                                          "eval_cost_bps / 100)")
    p.add_argument("--log-dir", help="write the prediction log (Parquet) here, a directory or an s3:// prefix; "
                                     "the drift pipeline reads it")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.add_argument("--compile-only", action="store_true",
                   help="compile the online feature kernels into numba's cache (NUMBA_CACHE_DIR) and exit; the "
                        "serve image does this at build time so the first raw-bars request does not wait ~30 s")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:
        from bqx.extras import install_hint

        hint = install_hint(err)
        if hint is None:
            raise
        print(f"bqx {args.command}: error: {hint}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        from bqx.kubeflow.local_run import Interrupted, StageFailed

        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
            if isinstance(err, StageFailed):
                print(err.tail, file=sys.stderr)
        where = f" (full log: {err.log_path})" if isinstance(err, StageFailed) else ""
        kind = "" if isinstance(err, Interrupted) else "error: "
        print(f"bqx {args.command}: {kind}{err}{where}", file=sys.stderr)
        return int(getattr(err, "exit_code", 1))


if __name__ == "__main__":
    sys.exit(main())

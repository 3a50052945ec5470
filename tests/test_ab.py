"""A/B tests: the verdict's statistics, the realised targets, and the two-variant endpoint on moto.

moto implements CreateModel, CreateEndpointConfig, CreateEndpoint, UpdateEndpointWeightsAndCapacities,
S3 copies and Application Auto Scaling, but answers UpdateEndpoint with a 500: that one call is played
as SageMaker plays it (validated against botocore's model of the real API, then the endpoint recreated
on moto with the new config, so every later call sees the real state).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import boto3
import httpx
import numpy as np
import pandas as pd
import pytest
from botocore.validate import validate_parameters

from bqx.ab import CANDIDATE, CURRENT
from bqx.ab.decide import decide
from bqx.ab.endpoint import alias, finish_ab
from bqx.ab.live import live_rows, realized_target
from bqx.config import Settings
from bqx.deploy import DeployFailed, DeploySummary, ModelRef, Repository, deploy_sagemaker
from bqx.extract import pair_inputs
from bqx.model_package import load_tarball
from bqx.reports import deploy_markdown
from bqx.sample import generate
from bqx.serving.launch import bqx_serve, free_port, started
from bqx.serving.synthetic import feature_names, synthetic_model
from bqx.targets import compute

FEATURES = feature_names(6)
START = pd.Timestamp("2024-07-01", tz="UTC")


def _ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """A unit-variance AR(1) series: autocorrelated as minute errors are (a model is wrong for a while)."""
    from scipy.signal import lfilter

    return lfilter([np.sqrt(1 - rho**2)], [1, -rho], rng.standard_normal(n))


def _live(rng: np.random.Generator, hours: int, cand_noise: float, share: float = 0.2,
          rho: float = 0.95) -> pd.DataFrame:
    """Minute answers over ``hours``: each variant's model has its own autocorrelated error process (the
    candidate's scaled by ``cand_noise``); each minute one variant, drawn at random, answers."""
    n = hours * 60
    target = _ar1(rng, n, rho)
    variant = np.where(rng.random(n) < share, CANDIDATE, CURRENT)
    err = np.where(variant == CANDIDATE, cand_noise * _ar1(rng, n, rho), _ar1(rng, n, rho))
    return pd.DataFrame({"ts_utc": START + pd.to_timedelta(np.arange(n), unit="min"), "pair": "eurusd",
                         "variant": variant, "prediction": target + err, "target": target})


def test_a_better_candidate_is_promoted_at_the_window_and_not_before():
    live = _live(np.random.default_rng(1), 96, cand_noise=0.8)
    early = decide(live[live["ts_utc"] < START + pd.Timedelta(hours=48)], START, START + pd.Timedelta(hours=48))
    assert early.action == "wait" and "48.0 of 72 hours" in early.why
    done = decide(live, START, START + pd.Timedelta(hours=96))
    assert done.action == "promote" and done.hours == 96 and done.mean_diff < 0 and done.p_better < 0.05
    by = {v.variant: v for v in done.variants}
    assert by[CANDIDATE].rmse < by[CURRENT].rmse and by[CANDIDATE].rows + by[CURRENT].rows == len(live)


def test_a_test_without_enough_answers_waits_then_keeps_the_current_models():
    live = _live(np.random.default_rng(3), 10, cand_noise=0.5)  # 10 paired hours of the 24 needed
    late = decide(live, START, START + pd.Timedelta(hours=100))
    assert late.action == "wait" and "only 10 of the 24 paired hours" in late.why and "at 2 x the window" in late.why
    ended = decide(live, START, START + pd.Timedelta(hours=144))
    assert ended.action == "rollback" and "after 144 hours (2 x the window) only 10" in ended.why
    assert decide(live.iloc[:0], START, START + pd.Timedelta(hours=200)).action == "rollback"  # no answers at all


def test_a_much_worse_candidate_is_rolled_back_early_and_an_equal_one_per_policy():
    worse = decide(_live(np.random.default_rng(2), 30, cand_noise=2.0), START, START + pd.Timedelta(hours=30))
    assert worse.action == "rollback" and "worse beyond doubt" in worse.why
    equal = _live(np.random.default_rng(3), 80, cand_noise=1.0)
    now = START + pd.Timedelta(hours=80)
    assert decide(equal, START, now, policy="metrics").action == "rollback"
    assert decide(equal, START, now, policy="window").action == "promote"
    assert decide(equal.iloc[:600], START, now).action == "wait"  # 10 paired hours of the 24 needed
    with pytest.raises(ValueError, match="registry.ab_policy"):
        decide(equal, START, now, policy="vibes")


def test_equal_variants_are_promoted_no_more_often_than_alpha():
    """Under the null (identical variants, autocorrelated minutes) the metrics policy promotes at most
    about alpha of the time; a t test on minutes instead of hours would promote far more often."""
    rng = np.random.default_rng(4)
    promoted = naive = 0
    runs = 400
    for _ in range(runs):
        live = _live(rng, 72, cand_noise=1.0)
        promoted += decide(live, START, START + pd.Timedelta(hours=72)).action == "promote"
        se = (live["prediction"] - live["target"]) ** 2
        a, b = se[live["variant"] == CANDIDATE], se[live["variant"] == CURRENT]
        t = (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))
        naive += t < -1.645
    assert promoted / runs <= 0.075, promoted
    assert naive / runs > 0.15, naive  # minutes are not independent draws


def test_the_realised_target_is_the_training_target(tmp_path):
    bars = generate(["eurusd"], days=2, seed=5)["eurusd"]
    model = load_tarball(synthetic_model(tmp_path / "m.tar.gz", "eurusd", FEATURES, rows=300, iterations=10,
                                         online_state={"baseline_close": float(bars["close"].iloc[0]) * 1.01}))
    got = realized_target(bars, model)
    settings = Settings()
    _, inputs = pair_inputs(bars, settings, "eurusd", base_close=float(bars["close"].iloc[0]) * 1.01)
    want = compute(inputs.idx, settings)[model.selection["target"]]
    np.testing.assert_array_equal(got.to_numpy(), want)
    assert got.isna().sum() == settings.features.horizon  # the last H bars have no target yet
    served = pd.DataFrame({"ts_utc": got.index[:50], "pair": "eurusd", "prediction": 0.0,
                           "variant": [CURRENT, CANDIDATE] * 25})
    rows = live_rows(served, {"eurusd": bars}, {("eurusd", CURRENT): model, ("eurusd", CANDIDATE): model})
    np.testing.assert_array_equal(rows["target"].to_numpy(), want[:50])


def _models(tmp_path, seed: int) -> list[ModelRef]:
    out = []
    for i, pair in enumerate(("eurusd", "usdjpy")):
        path = tmp_path / f"s{seed}" / f"{pair}.tar.gz"
        if not path.exists():
            synthetic_model(path, pair, FEATURES, rows=300, iterations=10, seed=seed * 10 + i)
        out.append(ModelRef(pair, path, {"catalog_version": "synthetic", "n_features": len(FEATURES)}))
    return out


@pytest.fixture
def sagemaker_played(monkeypatch):
    """bqx.aws.client with UpdateEndpoint played on moto; yields the update requests."""
    import bqx.aws

    real_client = bqx.aws.client
    updates: list[dict] = []

    def client(service, settings):
        c = real_client(service, settings)
        if service == "sagemaker":
            shape = c.meta.service_model.operation_model("UpdateEndpoint").input_shape

            def update_endpoint(**kwargs):
                validate_parameters(kwargs, shape)
                updates.append(kwargs)
                c.delete_endpoint(EndpointName=kwargs["EndpointName"])
                c.create_endpoint(EndpointName=kwargs["EndpointName"], EndpointConfigName=kwargs["EndpointConfigName"])
                return {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{kwargs['EndpointName']}"}

            c.update_endpoint = update_endpoint
        return c

    monkeypatch.setattr(bqx.aws, "client", client)
    return updates


def test_a_deploy_with_a_candidate_percent_starts_an_ab_test_and_promote_ends_it(tmp_path, aws_settings, moto_server,
                                                                                sagemaker_played):
    kw = {"endpoint_url": moto_server, "region_name": "us-east-1"}
    sm, s3 = boto3.client("sagemaker", **kw), boto3.client("s3", **kw)
    aas = boto3.client("application-autoscaling", **kw)
    a = aws_settings.aws
    first = deploy_sagemaker(_models(tmp_path, 0), aws_settings, sleep=lambda s: None)
    ab_settings = dataclasses.replace(aws_settings, aws=dataclasses.replace(a, ab_candidate_percent=10))
    assert deploy_sagemaker(_models(tmp_path, 0), ab_settings).updated == []  # same models: nothing to test

    started_ = deploy_sagemaker(_models(tmp_path, 1), ab_settings, sleep=lambda s: None)
    ab = started_.manifest["ab"]
    (update,) = sagemaker_played
    config = sm.describe_endpoint_config(EndpointConfigName=update["EndpointConfigName"])
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {CURRENT: 90.0, CANDIDATE: 10.0}
    assert "scaling/deregistered" in started_.updated
    for variant, side in ((CURRENT, first.manifest["models"]), (CANDIDATE, ab[CANDIDATE])):
        model = sm.describe_model(ModelName=ab["models"][variant])["PrimaryContainer"]
        assert model["Environment"] == {"BQX_VARIANT": variant} and model["Mode"] == "MultiModel"
        bucket_prefix = model["ModelDataUrl"].removeprefix(f"s3://{a.bucket}/")
        keys = {o["Key"].removeprefix(bucket_prefix) for o in
                s3.list_objects_v2(Bucket=a.bucket, Prefix=bucket_prefix)["Contents"]}
        # the test's alias names this side's model; every versioned file of both sides is there too
        assert {alias(p, ab["id"]) for p in side} | {e["target_model"] for e in first.manifest["models"].values()} \
            | {e["target_model"] for e in ab[CANDIDATE].values()} == keys
        body = s3.get_object(Bucket=a.bucket, Key=bucket_prefix + alias("eurusd", ab["id"]))["Body"].read()
        source = s3.get_object(Bucket=a.bucket, Key=f"bqx-ml/models/{side['eurusd']['target_model']}")["Body"].read()
        assert body == source
    live_manifest = json.loads(s3.get_object(Bucket=a.bucket, Key="bqx-ml/models/manifest.json")["Body"].read())
    assert live_manifest["models"]["eurusd"]["target_model"] == alias("eurusd", ab["id"])
    assert live_manifest["ab"]["current"] == first.manifest["models"]

    again = deploy_sagemaker(_models(tmp_path, 1), ab_settings, sleep=lambda s: None)  # a rerun changes nothing
    assert again.created == [] and again.updated == [] and len(sagemaker_played) == 1 and not again.held
    # the next training run's models wait for this test's verdict: nothing changes, the deploy says why
    held = deploy_sagemaker(_models(tmp_path, 2), ab_settings, sleep=lambda s: None)
    assert held.created == [] and held.updated == [] and len(sagemaker_played) == 1
    assert held.held.startswith(f"held: A/B test {ab['id']} runs on endpoint {a.endpoint_name} since {ab['started']}")
    assert "bqx ab promote" in held.held and held.manifest["ab"] == ab
    report = deploy_markdown(DeploySummary(Repository({}, []), held, {}))
    assert f"**{held.held}**" in report
    assert json.loads(s3.get_object(Bucket=a.bucket, Key="bqx-ml/models/manifest.json")["Body"].read()) == live_manifest
    # so do models equal to the current side's (they are not a test, and the running one goes on)
    assert deploy_sagemaker(_models(tmp_path, 0), ab_settings, sleep=lambda s: None).held
    with pytest.raises(DeployFailed, match="an A/B test .* is running .*bqx ab decide --apply"):
        deploy_sagemaker(_models(tmp_path, 1), aws_settings, sleep=lambda s: None)

    done = finish_ab(aws_settings, "promote", "test", sleep=lambda s: None)
    assert done.winner == CANDIDATE and len(sagemaker_played) == 2
    endpoint = sm.describe_endpoint(EndpointName=a.endpoint_name)
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])["ProductionVariants"]
    assert variant["ModelName"] == ab["models"][CANDIDATE] and variant["VariantName"] == "AllTraffic"
    final = json.loads(s3.get_object(Bucket=a.bucket, Key="bqx-ml/models/manifest.json")["Body"].read())
    assert final["models"] == ab[CANDIDATE] and final["last_ab"]["action"] == "promote" and "ab" not in final
    resource = f"endpoint/{a.endpoint_name}/variant/AllTraffic"
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    with pytest.raises(ValueError, match="no A/B test is running"):
        finish_ab(aws_settings, "rollback")


def test_each_variants_container_names_itself_and_serves_its_own_model(tmp_path):
    current, candidate = (_models(tmp_path, s)[0].tarball for s in (0, 1))
    x = {f: 0.3 for f in FEATURES}
    for minute, (variant, package) in enumerate(((CURRENT, current), (CANDIDATE, candidate))):
        port = free_port()
        with started(bqx_serve(port, "--model-root", str(package.parent)), f"http://127.0.0.1:{port}",
                     {"BQX_VARIANT": variant, "BQX_SERVE_LOG_DIR": str(tmp_path / "log")}) as server, \
                httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.post("/models", json={"model_name": "eurusd.tar.gz", "url": str(package)}).status_code == 200
            when = f"2024-07-01T00:0{minute}:00Z"
            answer = c.post("/models/eurusd.tar.gz/invoke", json={"features": x, "ts_utc": when}).json()
            assert answer["variant"] == variant
            assert answer["predictions"][0]["prediction"] == pytest.approx(
                float(load_tarball(package).model.predict(np.array([[0.3] * len(FEATURES)]))[0]), abs=1e-9)
    from bqx.locations import served_rows

    log = served_rows(tmp_path / "log")
    assert sorted(log["variant"]) == [CANDIDATE, CURRENT]


def test_bqx_ab_decide_scores_a_prediction_log_against_the_bars(tmp_path):
    """The command end to end on a local repository whose manifest holds a running test."""
    bars = generate(["eurusd"], days=4, seed=9)["eurusd"]
    (tmp_path / "bars").mkdir()
    bars.to_parquet(tmp_path / "bars" / "eurusd.parquet", index=False)
    repo = tmp_path / "repo"
    current, candidate = (_models(tmp_path, s)[0] for s in (0, 1))
    entries = {}
    for side, ref in ((CURRENT, current), (CANDIDATE, candidate)):
        repo.mkdir(exist_ok=True)
        name = f"eurusd-{side}.tar.gz"
        (repo / name).write_bytes(ref.tarball.read_bytes())
        entries[side] = {"eurusd": {"target_model": name, "sha256": side}}
    start = bars["ts_utc"].iloc[0]
    (repo / "manifest.json").write_text(json.dumps({"models": {"eurusd": {**entries[CANDIDATE]["eurusd"],
                                                                          "target_model": "eurusd-ab-x.tar.gz",
                                                                          "model_file": "eurusd-candidate.tar.gz"}},
                                                    "ab": {"id": "x", "started": start.isoformat(),
                                                           "candidate_percent": 20, **entries}}))
    truth = realized_target(bars, load_tarball(current.tarball))
    rng = np.random.default_rng(0)
    variant = np.where(rng.random(len(bars)) < 0.2, CANDIDATE, CURRENT)
    noise = np.where(variant == CANDIDATE, 0.2, 1.0) * rng.standard_normal(len(bars)) * np.nanstd(truth)
    log = pd.DataFrame({"ts_utc": bars["ts_utc"], "pair": "eurusd", "model": "eurusd", "model_version": "v",
                        "prediction": np.nan_to_num(truth.to_numpy()) + noise, "variant": variant})
    (tmp_path / "log").mkdir()
    log.to_parquet(tmp_path / "log" / "predictions-1.parquet", index=False)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"registry": {"ab_window_h": 48, "ab_min_hours": 24}}))
    now = (start + pd.Timedelta(days=4)).isoformat()
    out = subprocess.run([sys.executable, "-m", "bqx.cli", "ab", "decide", "--models", str(repo), "--served",
                          str(tmp_path / "log"), "--bars", str(tmp_path / "bars"), "--settings", str(settings),
                          "--now", now], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "A/B test x: promote: the candidate is better" in out.stdout, out.stdout
    assert "live RMSE" in out.stdout
    from bqx.ab.live import judge
    from bqx.reports import ab_markdown

    ab, verdict = judge(repo, tmp_path / "log", tmp_path / "bars", Settings.load(settings), pd.Timestamp(now))
    card = ab_markdown(ab, verdict, "Applied: by the test.")
    assert "| candidate |" in card and "**promote**" in card and "Applied" in card
    assert "No A/B test is running" in ab_markdown(None, None)
    status = subprocess.run([sys.executable, "-m", "bqx.cli", "ab", "status", "--models", str(repo)],
                            capture_output=True, text=True, timeout=120)
    assert "candidate takes 20% of the traffic; it changes 1 pair(s): eurusd; verdict due from" in status.stdout, \
        status.stdout


def test_a_pair_on_one_side_only_is_served_by_its_model_on_both():
    from bqx.ab.endpoint import sides

    old = {"eurusd": {"target_model": "eurusd-a.tar.gz", "sha256": "a"},
           "gbpusd": {"target_model": "gbpusd-g.tar.gz", "sha256": "g"}}
    new = {"eurusd": {"target_model": "eurusd-b.tar.gz", "sha256": "b"},
           "usdjpy": {"target_model": "usdjpy-j.tar.gz", "sha256": "j"}}
    current, candidate = sides({"models": old}, {"models": new})
    assert {p: e["sha256"] for p, e in current.items()} == {"eurusd": "a", "gbpusd": "g", "usdjpy": "j"}
    assert {p: e["sha256"] for p, e in candidate.items()} == {"eurusd": "b", "gbpusd": "g", "usdjpy": "j"}
    running = {"models": {}, "ab": {"current": {"eurusd": {"target_model": "eurusd-a.tar.gz", "sha256": "a"}}}}
    assert sides(running, {"models": new})[0]["eurusd"]["sha256"] == "a"  # a running test's current side stays


def test_the_ack_backend_refuses_an_ab_test_by_name(aws_settings):
    from bqx.ack.deploy import deploy_ack

    ab = dataclasses.replace(aws_settings, aws=dataclasses.replace(aws_settings.aws, ab_candidate_percent=10))
    with pytest.raises(DeployFailed, match="aws.ab_candidate_percent.*sagemaker deploy backend only"):
        deploy_ack([], ab)

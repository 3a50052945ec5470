"""An A/B test on the SageMaker endpoint: the serving release and a candidate as two production variants.

A multi-model endpoint loads the object a request names (``TargetModel``) from its model's S3 prefix, so
two variants can answer one name with different models only if each has its own prefix. A test with id
``{ab}`` therefore stages an immutable prefix per variant, ``{prefix}/ab/{ab}/{variant}/``, holding
``{pair}-ab-{ab}.tar.gz`` (the name clients invoke during the test: that variant's model of the pair)
and every versioned file (``{pair}-{sha12}.tar.gz``) either side serves, so a client still holding the
previous manifest keeps working through the switch. Each variant is its own Model (the serving image
with ``BQX_VARIANT`` set, so answers and the prediction log say which variant answered) and the
endpoint config weighs them ``100 - p : p`` (``aws.ab_candidate_percent``).

The test ends with :func:`finish_ab`: all traffic to the winner at once (UpdateEndpointWeightsAndCapacities),
then a blue/green update to a one-variant config of the winner's Model, which frees the loser's
instances. ``manifest.json`` under ``{prefix}/models/`` tells clients what to invoke, and is written
only once the endpoint serves what it names.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bqx.ab import CANDIDATE, CURRENT, VARIANTS
from bqx.aws import tags
from bqx.config import Settings
from bqx.endpoint import (
    EndpointDeploy,
    create_missing,
    data_capture_config,
    deployment_config,
    deregister_scaling,
    endpoint_config_request,
    ensure_scaling,
    exists,
    read_manifest,
    wait_endpoint,
    write_manifest,
)
from bqx.locations import model_file


def serving_entries(manifest: dict) -> dict[str, dict]:
    """What the current variant serves: the test's current side while one runs, else the manifest's models."""
    ab = manifest.get("ab")
    entries = ab[CURRENT] if ab else manifest["models"]
    return {pair: plain(e) for pair, e in entries.items()}


def plain(entry: dict) -> dict:
    """A manifest entry as outside a test: ``target_model`` is its versioned file."""
    return {**{k: v for k, v in entry.items() if k != "model_file"}, "target_model": model_file(entry)}


def sides(before: dict, published: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """(current, candidate) entries per pair. A pair on one side only is served by that model on both, so
    every pair answers on either variant (a first model of a new pair has nothing to be compared with)."""
    current, candidate = serving_entries(before), dict(published["models"])
    return {**candidate, **current}, {**current, **candidate}


def ab_id(current: dict[str, dict], candidate: dict[str, dict]) -> str:
    shas = [{p: e["sha256"] for p, e in sorted(side.items())} for side in (current, candidate)]
    return hashlib.sha256(json.dumps(shas, sort_keys=True).encode()).hexdigest()[:8]


def alias(pair: str, ab: str) -> str:
    return f"{pair}-ab-{ab}.tar.gz"


def release_prefix(settings: Settings, ab: str, variant: str) -> str:
    return f"{settings.aws.prefix}/ab/{ab}/{variant}/"


def stage_release(s3: Any, settings: Settings, ab: str, variant: str, own: dict[str, dict],  # noqa: ANN401
                  both: list[dict[str, dict]]) -> list[str]:
    """Copy (within S3) the variant's files into its prefix: its model of each pair under the test's alias
    and every versioned file of either side; existing objects are kept. Returns the keys written."""
    a = settings.aws
    source = f"{a.prefix}/models/"
    wanted = {alias(pair, ab): model_file(e) for pair, e in own.items()}
    wanted.update({model_file(e): model_file(e) for side in both for e in side.values()})
    prefix, written = release_prefix(settings, ab, variant), []
    for name, src in sorted(wanted.items()):
        key = prefix + name
        if not exists(lambda key=key: s3.head_object(Bucket=a.bucket, Key=key)):
            s3.copy_object(Bucket=a.bucket, Key=key, CopySource={"Bucket": a.bucket, "Key": source + src})
            written.append(key)
    return written


def variant_model_request(settings: Settings, ab: str, variant: str) -> dict:
    """CreateModel: the multi-model serving container over the variant's prefix, told its variant."""
    a = settings.aws
    data = f"s3://{a.bucket}/{release_prefix(settings, ab, variant)}"
    digest = hashlib.sha256(json.dumps([a.serve_image, data, a.role_arn, variant]).encode()).hexdigest()[:10]
    return {"ModelName": f"{a.endpoint_name}-{variant[:4]}-{digest}", "ExecutionRoleArn": a.role_arn,
            "PrimaryContainer": {"Image": a.serve_image, "Mode": "MultiModel", "ModelDataUrl": data,
                                 "Environment": {"BQX_VARIANT": variant}},
            "Tags": tags(settings, endpoint=a.endpoint_name, variant=variant)}


def ab_config_request(settings: Settings, models: dict[str, str]) -> dict:
    """CreateEndpointConfig: the two variants, weighted ``100 - p : p``, each on the endpoint's instances."""
    a = settings.aws
    p = a.ab_candidate_percent
    weights = {CURRENT: float(100 - p), CANDIDATE: float(p)}
    capture = data_capture_config(settings)
    digest = hashlib.sha256(json.dumps([models, weights, a.endpoint_instance_type, a.endpoint_instance_count,
                                        capture], sort_keys=True).encode()).hexdigest()[:10]
    variants = [{"VariantName": v, "ModelName": models[v], "InitialInstanceCount": a.endpoint_instance_count,
                 "InstanceType": a.endpoint_instance_type, "InitialVariantWeight": weights[v]} for v in VARIANTS]
    return {"EndpointConfigName": f"{a.endpoint_name}-ab-{digest}", "ProductionVariants": variants,
            "Tags": tags(settings, endpoint=a.endpoint_name), **({"DataCaptureConfig": capture} if capture else {})}


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def verdict_due(ab: dict, settings: Settings) -> pd.Timestamp:
    """When a test's fixed window ends (its start plus ``registry.ab_window_h``, UTC)."""
    started = pd.Timestamp(ab["started"])
    started = started.tz_localize("UTC") if started.tzinfo is None else started
    return started + pd.Timedelta(hours=settings.registry.ab_window_h)


def held_by(running: dict, settings: Settings) -> str:
    """Why a deploy left the endpoint alone: the running test, when its verdict is due, how to end it."""
    due = verdict_due(running, settings).isoformat()
    return (f"held: A/B test {running['id']} runs on endpoint {settings.aws.endpoint_name} since "
            f"{running['started']}; these models wait for its verdict (due from {due}, "
            "registry.ab_window_h; `bqx ab decide --apply` or the drift pipeline's ab-decide step), or end it "
            "now with `bqx ab promote` or `bqx ab rollback`, then deploy again")


def start_ab(sm: Any, s3: Any, aas: Any, settings: Settings, before: dict, published: dict,  # noqa: ANN401
             sleep: Callable[[float], None] = time.sleep) -> EndpointDeploy | None:
    """Serve ``published`` (the new models) as the candidate beside what the endpoint serves now; None
    when they are the same models (nothing to test). While a test of other models runs, the new models
    are held (the deploy's ``held`` says why and nothing changes): a test always reaches its verdict,
    however often training runs."""
    a = settings.aws
    current, candidate = sides(before, published)
    ab = ab_id(current, candidate)
    running = before.get("ab") or {}
    if running and running.get("id") != ab:
        return EndpointDeploy(before, running["models"][CANDIDATE], running["endpoint_config"], [], [], [],
                              held=held_by(running, settings))
    if {p: e["sha256"] for p, e in current.items()} == {p: e["sha256"] for p, e in candidate.items()}:
        return None
    done: dict[str, list[str]] = {"uploaded": [], "created": [], "updated": []}
    models = {}
    for variant, own in ((CURRENT, current), (CANDIDATE, candidate)):
        done["uploaded"] += [k.rsplit("/", 1)[-1] for k in stage_release(s3, settings, ab, variant, own,
                                                                          [current, candidate])]
        models[variant] = create_missing(sm, "model", variant_model_request(settings, ab, variant), done["created"])
    config_name = create_missing(sm, "endpoint-config", ab_config_request(settings, models), done["created"])
    endpoint = sm.describe_endpoint(EndpointName=a.endpoint_name)
    if endpoint["EndpointConfigName"] != config_name:
        if deregister_scaling(aas, settings):  # the AllTraffic variant it scales goes away
            done["updated"].append("scaling/deregistered")
        sm.update_endpoint(EndpointName=a.endpoint_name, EndpointConfigName=config_name,
                           DeploymentConfig=deployment_config(settings))
        done["updated"].append(f"endpoint/{a.endpoint_name}")
    wait_endpoint(sm, a.endpoint_name, config_name, a.poll_s, a.endpoint_timeout_s, sleep)
    started = running["started"] if running else _now()  # a rerun keeps the test's start
    manifest = {"endpoint": a.endpoint_name,
                "models": {p: {**e, "target_model": alias(p, ab), "model_file": model_file(e)}
                           for p, e in candidate.items()},
                "ab": {"id": ab, "started": started, "candidate_percent": a.ab_candidate_percent, "models": models,
                       "endpoint_config": config_name, CURRENT: current, CANDIDATE: candidate}}
    write_manifest(s3, manifest, settings)
    return EndpointDeploy(manifest, models[CANDIDATE], config_name, **done)


@dataclass(frozen=True)
class Finished:
    action: str  # promote | rollback
    ab: str
    winner: str  # the variant that now takes all traffic
    endpoint_config: str
    manifest: dict


def finish_ab(settings: Settings, action: str, why: str = "", sleep: Callable[[float], None] = time.sleep
              ) -> Finished:
    """Move all traffic to the candidate (``promote``) or back to the current variant (``rollback``), then
    serve the winner alone; the manifest then names the winner's versioned files."""
    from bqx.aws import client

    if action not in ("promote", "rollback"):
        raise ValueError(f"an A/B test ends with promote or rollback, not {action!r}")
    a = settings.aws
    sm, s3, aas = client("sagemaker", settings), client("s3", settings), client("application-autoscaling", settings)
    manifest = read_manifest(s3, settings)
    ab = (manifest or {}).get("ab")
    if not ab:
        raise ValueError(f"no A/B test is running on endpoint {a.endpoint_name} (s3://{a.bucket}/{a.prefix}/models/"
                         "manifest.json has no 'ab' section)")
    winner = CANDIDATE if action == "promote" else CURRENT
    loser = CURRENT if winner == CANDIDATE else CANDIDATE
    sm.update_endpoint_weights_and_capacities(EndpointName=a.endpoint_name, DesiredWeightsAndCapacities=[
        {"VariantName": winner, "DesiredWeight": 1.0}, {"VariantName": loser, "DesiredWeight": 0.0}])
    wait_endpoint(sm, a.endpoint_name, ab["endpoint_config"], a.poll_s, a.endpoint_timeout_s, sleep)
    config_name = create_missing(sm, "endpoint-config", endpoint_config_request(settings, ab["models"][winner]), [])
    sm.update_endpoint(EndpointName=a.endpoint_name, EndpointConfigName=config_name,
                       DeploymentConfig=deployment_config(settings))
    wait_endpoint(sm, a.endpoint_name, config_name, a.poll_s, a.endpoint_timeout_s, sleep)
    ensure_scaling(aas, settings, fresh=True)
    done = {"endpoint": a.endpoint_name, "models": {p: plain(e) for p, e in ab[winner].items()},
            "last_ab": {"id": ab["id"], "action": action, "why": why, "started": ab["started"], "ended": _now()}}
    write_manifest(s3, done, settings)
    return Finished(action, ab["id"], winner, config_name, done)

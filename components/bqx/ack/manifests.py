"""``bqx ack-manifests``: one pair's ACK objects as YAML files, to read before a run or to apply by GitOps.

The TrainingJob is the one the ack train backend would create for the pair: with ``dataset`` (a select
stage's output) it has the same name and channels as in a run; without it the name hashes the settings
and hyperparameters only. Model, EndpointConfig and Endpoint are the multi-model endpoint's.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bqx.ack.resources import endpoint_objects, training_job
from bqx.artifacts import SELECTION
from bqx.aws import require
from bqx.config import Settings
from bqx.io import write_text
from bqx.pairs import check_pair


def pair_objects(pair: str, settings: Settings, dataset: str | Path | None = None, run: str = "",
                 namespace: str = "") -> list[dict]:
    from bqx.train.local import hyperparameters_for
    from bqx.train.sagemaker import channel_uris, job_name

    check_pair(pair)
    require(settings, "bucket", "role_arn", "train_image", "serve_image")
    a = settings.aws
    hp = hyperparameters_for(settings.training)
    if dataset is not None:
        path = Path(dataset) / SELECTION
        try:
            selection = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"--dataset {dataset}: no readable {SELECTION} ({err})") from None
        if selection.get("pair") not in (None, pair):
            raise ValueError(f"--dataset {dataset}: it selects features for {selection['pair']}, not {pair}")
    else:
        selection = {"features": [], "settings_hash": settings.settings_hash()}
    name = job_name(pair, selection, hp)
    uris = channel_uris(a.bucket, f"{a.prefix}/jobs/{name}/input")
    return [training_job(name, uris, hp, settings, pair, run, namespace), *endpoint_objects(settings, run, namespace)]


def write(objects: list[dict], out: str | Path) -> list[Path]:
    """``{kind}-{name}.yaml`` per object in ``out`` (each written whole or not at all)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [write_text(yaml.safe_dump(obj, sort_keys=False),
                       out / f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml") for obj in objects]

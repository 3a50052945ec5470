"""``bqx train``: the training entrypoint SageMaker runs in the image (and the local launcher runs too).

Reads channels ``train`` and ``validation`` (Parquet with the selected columns plus the target, and
``selection.json`` in the train channel) and string hyperparameters; trains CatBoost (on every
``fit_stride``-th training row, early-stopped on every validation row); writes
``model.cbm`` and its JSON export ``model.json``, ``selection.json``, ``meta.json`` (catalog version,
settings hash, validation residual quantiles) and ``reference.parquet`` (a sample of training rows
with predictions, the drift reference) to the model dir; the same data and settings give the same
bytes. The fit's wall time is printed on the status line, not packaged. On error the reason goes to
``output/failure`` and the exit code is 1 (SageMaker: Failed); on success 0 (Completed). SIGTERM (a
stopped job) exits cleanly.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from bqx.artifacts import META, REFERENCE, SELECTION
from bqx.model_package import save_model
from bqx.splits import thinned
from bqx.train.contract import OptMl

REFERENCE_ROWS = 5_000
METRIC_MARK = "bqx-metric "
SNAPSHOT_INTERVAL_S = 60


def _checkpointing(opt: OptMl) -> dict:
    """With a checkpoint directory (SageMaker's managed spot training), CatBoost snapshots there every
    minute and a restarted job resumes from the snapshot instead of starting over; otherwise it writes
    nothing but the model."""
    if not opt.checkpoint_dir.is_dir():
        return {"allow_writing_files": False}
    import tempfile

    return {"save_snapshot": True, "snapshot_file": str(opt.checkpoint_dir / "catboost.snapshot"),
            "snapshot_interval": SNAPSHOT_INTERVAL_S, "train_dir": tempfile.mkdtemp(prefix="catboost-")}
HYPERPARAMETER_TYPES: dict[str, type] = {
    "iterations": int, "depth": int, "learning_rate": float, "l2_leaf_reg": float, "border_count": int,
    "loss_function": str, "thread_count": int, "early_stopping_rounds": int, "random_seed": int,
    "fit_stride": int,  # not CatBoost's: the fit learns from every k-th training row (bqx.splits.thinned)
}


def parse_hyperparameters(raw: dict[str, str]) -> dict[str, object]:
    """Convert SageMaker's string hyperparameters; unknown names are an error (typos must not pass)."""
    out: dict[str, object] = {}
    for key, value in raw.items():
        if key not in HYPERPARAMETER_TYPES:
            raise ValueError(f"unknown hyperparameter {key!r} (known: {', '.join(sorted(HYPERPARAMETER_TYPES))})")
        try:
            out[key] = HYPERPARAMETER_TYPES[key](value)
        except ValueError as err:
            raise ValueError(f"hyperparameter {key!r}={value!r}: {err}") from None
    return out


def _read_channel(path: Path, name: str) -> pd.DataFrame:
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"channel {name!r}: no Parquet files in {path}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def train(opt: OptMl) -> dict:
    from catboost import CatBoostRegressor

    params = parse_hyperparameters(opt.hyperparameters())
    selection = json.loads((opt.channel("train") / SELECTION).read_text())
    features, target = selection["features"], selection["target"]
    tr = _read_channel(opt.channel("train"), "train")
    va = _read_channel(opt.channel("validation"), "validation")
    for name, frame in (("train", tr), ("validation", va)):
        missing = [c for c in [*features, target] if c not in frame.columns]
        if missing:
            raise ValueError(f"channel {name!r} lacks column(s) {missing[:5]}")
    early = int(params.pop("early_stopping_rounds", 50))
    stride = params.pop("fit_stride", 1)
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"hyperparameter 'fit_stride'={stride}: must be a positive integer")
    fit = tr if stride == 1 else tr.iloc[thinned(0, len(tr), stride)]
    model = CatBoostRegressor(**params, verbose=False, **_checkpointing(opt))
    t0 = time.perf_counter()
    model.fit(fit[features], fit[target], eval_set=(va[features], va[target]), early_stopping_rounds=early,
              use_best_model=True)
    seconds = time.perf_counter() - t0
    resid = va[target].to_numpy() - model.predict(va[features])
    # one line per metric: the training job's MetricDefinitions read these (bqx.train.sagemaker.METRICS)
    print(f"{METRIC_MARK}validation:rmse={float(np.sqrt(np.mean(resid**2))):.10g}", flush=True)
    print(f"{METRIC_MARK}best_iteration={int(model.get_best_iteration() or 0)}", flush=True)
    meta = {
        "pair": selection.get("pair"),
        "target": target,
        "n_features": len(features),
        "catalog_version": selection["catalog_version"],
        "settings_hash": selection["settings_hash"],
        "best_iteration": int(model.get_best_iteration() or 0),
        "train_rows": len(tr),
        "fit_rows": len(fit),
        "validation_rows": len(va),
        "validation_residual_quantiles": {q: float(np.quantile(resid, float(q))) for q in ("0.05", "0.5", "0.95")},
        "hyperparameters": opt.hyperparameters(),
    }
    opt.model_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, opt.model_dir)  # model.cbm and model.json, without the fit's GUID and time
    # every k-th training row (time order kept) with the model's predictions: the drift reference that
    # recurring monitoring compares fresh data with and calibrates on (bqx-drift pipeline)
    stride = max(1, -(-len(tr) // REFERENCE_ROWS))  # every k-th row, in time order: drift calibrates on it
    ref = tr.iloc[::stride]
    ref = ref[[*features, target]].assign(prediction=model.predict(ref[features]))
    meta["reference_stride"] = stride
    ref.to_parquet(opt.model_dir / REFERENCE, index=False)
    (opt.model_dir / SELECTION).write_text(json.dumps(selection, indent=2))
    (opt.model_dir / META).write_text(json.dumps(meta, indent=2))
    return {**meta, "train_seconds": round(seconds, 3)}  # reported, not packaged: it differs run to run


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(143)


def main() -> int:
    opt = OptMl.from_env()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        meta = train(opt)
    except Exception as err:  # the contract: a reason in output/failure, non-zero exit
        opt.output_dir.mkdir(parents=True, exist_ok=True)
        opt.failure_file.write_text(f"{type(err).__name__}: {err}"[:1000])
        traceback.print_exc()
        return 1
    print(json.dumps({"status": "Completed", "best_iteration": meta["best_iteration"],
                      "train_seconds": meta["train_seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

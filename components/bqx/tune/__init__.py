"""The tune stage: search CatBoost's depth, learning rate, l2 and iterations per pair on the validation
split, so training uses the best trial's values.

``space`` (the search space, once), ``local`` (Optuna: TPE, seeded, median pruning), ``sagemaker`` (a
HyperParameterTuningJob, Bayesian, the objective parsed from the training logs), the ack backend's in
``bqx.ack.tune``. The test split is never seen: it stays the honest measure of the tuned model.
"""

from __future__ import annotations

import time

from bqx.config import Settings
from bqx.dataset import PairDataset
from bqx.tune.summary import Trial as Trial  # re-exported: the stage's vocabulary
from bqx.tune.summary import TuneSummary

BACKENDS = ("local", "sagemaker", "ack")


def run(dataset: PairDataset, settings: Settings, backend: str = "local", run_label: str = "") -> TuneSummary:
    """Tune one pair on its dataset's train and validation splits; ``training.tune_trials`` = 0 searches
    nothing."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown tuning backend {backend!r} ({', '.join(BACKENDS)})")
    d, pair = dataset, dataset.pair
    trials = settings.training.tune_trials
    t0 = time.perf_counter()
    if trials == 0:
        return TuneSummary(pair, backend, {}, [], 0.0)
    if backend == "local":
        from bqx.tune.local import tune_local

        best, found = tune_local(d, settings, trials)
    elif backend == "sagemaker":
        from bqx.tune.sagemaker import tune_sagemaker

        best, found = tune_sagemaker(d, settings, pair)
    else:
        from bqx.ack.tune import tune_ack

        best, found = tune_ack(d, settings, pair, run_label)
    return TuneSummary(pair, backend, best, found, time.perf_counter() - t0)


def trials_markdown(summary: TuneSummary) -> str:
    """The trials as a Markdown table for the KFP UI, the best marked."""
    from bqx.tune.space import NAMES

    if not summary.trials:
        return (f"# Tuning: {summary.pair}\n\nNo trials (training.tune_trials = 0): training uses the settings' "
                "hyperparameters.\n")
    best = summary.best_value
    lines = [f"# Tuning: {summary.pair} ({summary.backend}, {len(summary.trials)} trials, {summary.seconds:.0f} s)",
             "", "Objective: RMSE on the validation split (the test split is not used).", "",
             "| trial | " + " | ".join(NAMES) + " | validation RMSE | best iteration | state |",
             "|---:|" + "---:|" * len(NAMES) + "---:|---:|---|"]
    for t in summary.trials:
        cells = [f"{t.params[n]:.4g}" if isinstance(t.params.get(n), float) else str(t.params.get(n, ""))
                 for n in NAMES]
        value = "" if t.value is None else f"{t.value:.5g}" + (" **best**" if t.value == best else "")
        lines.append(f"| {t.number} | " + " | ".join(cells) + f" | {value} | {t.best_iteration or ''} | {t.state} |")
    chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(summary.best.items()))
    return "\n".join(lines) + f"\n\nTraining uses: {chosen}.\n"

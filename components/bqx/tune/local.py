"""Tuning on this machine: Optuna's TPE sampler (seeded with ``training.seed``) over the search space,
each trial a CatBoost fit on the train split (every ``training.fit_stride``-th row, as training fits)
early-stopped on the validation split; the median pruner stops a trial whose validation RMSE, reported
every ``REPORT_EVERY`` iterations, trails the median of earlier trials at the same iteration."""

from __future__ import annotations

from typing import Any

import numpy as np

from bqx.config import Settings
from bqx.dataset import PairDataset, feature_matrix
from bqx.splits import thinned
from bqx.tune.space import NAMES, suggest
from bqx.tune.summary import Trial

REPORT_EVERY = 25  # iterations between the validation RMSEs the pruner sees


class _Reporter:
    """CatBoost callback: report the validation RMSE to the trial; stop the fit when Optuna prunes it."""

    def __init__(self, trial: Any, metric: str) -> None:  # noqa: ANN401
        self.trial, self.metric, self.pruned = trial, metric, False

    def after_iteration(self, info: Any) -> bool:  # noqa: ANN401
        step = info.iteration
        if step % REPORT_EVERY:
            return True
        self.trial.report(float(info.metrics["validation"][self.metric][-1]), step)
        if self.trial.should_prune():
            self.pruned = True
            return False
        return True


def tune_local(dataset: PairDataset, settings: Settings, trials: int) -> tuple[dict[str, float | int], list[Trial]]:
    import optuna
    from catboost import CatBoostRegressor

    features, target = dataset.features, dataset.target
    frames = dataset.frames(("train", "val"))
    tr, va = frames["train"], frames["val"]
    fit = thinned(0, len(tr), settings.training.fit_stride)  # as the train stage's fit learns
    xtr, ytr = feature_matrix([tr], features)[fit], tr[target].to_numpy()[fit]
    xva, yva = feature_matrix([va], features), va[target].to_numpy()
    t = settings.training
    fixed = {"loss_function": t.loss_function, "thread_count": t.thread_count, "random_seed": t.seed}

    def objective(trial: Any) -> float:  # noqa: ANN401
        params = suggest(trial)
        model = CatBoostRegressor(**fixed, **params, verbose=False, allow_writing_files=False)
        reporter = _Reporter(trial, t.loss_function)
        model.fit(xtr, ytr, eval_set=(xva, yva), early_stopping_rounds=t.early_stopping_rounds, use_best_model=True,
                  callbacks=[reporter])
        trial.set_user_attr("best_iteration", int(model.get_best_iteration() or 0))
        if reporter.pruned:
            raise optuna.TrialPruned()
        return float(np.sqrt(np.mean((model.predict(xva) - yva) ** 2)))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=t.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, trials // 4)),
                                                                   n_warmup_steps=2 * REPORT_EVERY))
    study.optimize(objective, n_trials=trials)
    found = [Trial(ft.number, {n: ft.params[n] for n in NAMES}, ft.value if ft.state.name == "COMPLETE" else None,
                   ft.state.name.lower(), ft.user_attrs.get("best_iteration")) for ft in study.trials]
    if not any(f.value is not None for f in found):
        raise ValueError(f"tuning: none of {trials} trials completed (all pruned or failed)")
    return {n: study.best_params[n] for n in NAMES}, found

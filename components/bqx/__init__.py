"""bqx-ml: FX forecasting on rate_idx and BQX features, per-pair CatBoost models, KFP v2 + SageMaker."""

__version__ = "0.1.0"

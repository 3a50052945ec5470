"""File names inside the stages' artifacts, in one place: what each stage writes and the next one reads.

The directory is the KFP artifact's path (``Output[Dataset].path``); these are the names within it.
"""

from __future__ import annotations

# ingest: one Parquet per pair; panel: the grid of every pair
PANEL = "panel.parquet"
# extract
FEATURES = "features.parquet"
ONLINE_STATE = "online_state.json"  # what serving needs beyond a short history (bqx.extract.online_state)
# lag: the candidates and the rows (their values are built from the features where they are read)
LAG_PLAN = "lag_plan.json"
SPLITS = "splits.json"
# select: what was chosen, and each split's rows of the features (bqx.dataset)
SPLIT_NAMES = ("train", "val", "test")
SELECTION = "selection.json"
# tune: the best trial's values, as overrides of the training settings
TUNED = "hyperparameters.json"
# train: the model package and what is inside it
MODEL_TARBALL = "model.tar.gz"
MODEL_CBM = "model.cbm"
MODEL_JSON = "model.json"  # CatBoost's JSON export, what the serving image predicts from
META = "meta.json"
REFERENCE = "reference.parquet"  # training rows with predictions: the drift reference
# beside model.tar.gz in the train stage's model artifact, and in every registered version
METRICS = "metrics.json"  # the test-split and walk-forward metrics the gate reads
MODEL_CARD = "model_card.md"
VERSION = "version.json"  # a registered version's record (bqx.registry)
# deploy: the model repository's index
MANIFEST = "manifest.json"
# predict: every pair's predictions in one file
PREDICTIONS = "predictions.parquet"


def bars_file(pair: str) -> str:
    return f"{pair}.parquet"


def split_file(split: str) -> str:
    """``train`` -> ``train.parquet``: a split in SageMaker's training channels (bqx.train.channels)."""
    return f"{split}.parquet"

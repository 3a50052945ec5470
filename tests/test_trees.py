"""Serving's predictor: CatBoost's JSON export evaluated with numpy gives CatBoost's predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from bqx.model_package import PackageError, load_dir, load_tarball, unpacked
from bqx.serving.synthetic import feature_names, synthetic_model
from bqx.serving.trees import load_trees


def test_trees_equal_catboost_on_a_trained_package_with_missing_values(tmp_path):
    features = feature_names(40)
    path = synthetic_model(tmp_path / "m.tar.gz", "eurusd", features, rows=1500, iterations=150, depth=6)
    with unpacked(path) as d:
        catboost = load_dir(d, predictor="catboost")
        trees = load_dir(d, predictor="trees")
        assert type(trees.model).__name__ == "ObliviousTrees"
        assert trees.model.tree_count_ == catboost.model.tree_count_ > 1
        assert trees.features == catboost.features == features
        rng = np.random.default_rng(4)
        x = rng.standard_normal((5000, len(features))) * rng.uniform(0.1, 10, len(features))
        x[rng.random(x.shape) < 0.02] = np.nan  # CatBoost's "Min" treatment: below every border
        x[0] = np.inf
        x[1] = -np.inf
        want = catboost.predict(x)
        np.testing.assert_allclose(trees.predict(x), want, rtol=0, atol=1e-9 * np.abs(want).max())
        frame = pd.DataFrame(x[:7], columns=features)
        np.testing.assert_allclose(trees.predict(frame), catboost.predict(frame), rtol=1e-12)
        np.testing.assert_allclose(trees.predict(x[3]), want[3:4], rtol=1e-12)  # one row as a vector
        with pytest.raises(ValueError, match="rows of 40 features"):
            trees.model.predict(x[:, :5])


def test_serving_loads_trees_and_refuses_what_it_cannot_evaluate(tmp_path):
    from bqx.serving.models import load_model

    features = feature_names(6)
    path = synthetic_model(tmp_path / "m.tar.gz", "eurusd", features, rows=300, iterations=10)
    served = load_model("m", str(path))
    assert type(served.loaded.model).__name__ == "ObliviousTrees"
    assert served.version == load_model("again", str(path)).version
    with unpacked(path) as d:
        doc = json.loads((d / "model.json").read_text())
        doc["features_info"]["categorical_features"] = [{"feature_index": 0}]
        bad = tmp_path / "cat.json"
        bad.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="only float features"):
            load_trees(bad)
        (d / "model.json").write_text("[1, 2]")
        with pytest.raises(PackageError, match="model.json"):
            load_dir(d, predictor="trees")
        (d / "model.json").unlink()  # an older package: CatBoost reads model.cbm instead
        assert type(load_dir(d, predictor="trees").model).__name__ == "CatBoostRegressor"
    assert load_tarball(path).model.__class__.__name__ == "CatBoostRegressor"  # training and evaluation

"""Settings in sections: each stage reads only what it is given, and old flat files get a pointer."""

import json

import pytest

from bqx.config import MOVED, SECTIONS, STAGE_SECTIONS, SelectionSettings, Settings


def test_a_stage_reading_a_section_it_was_not_given_names_the_section_and_the_stage():
    s = Settings.for_stage(Settings().to_json(), "extract")
    assert s.features.reg_windows == Settings().features.reg_windows
    assert s.given() == ("features",)
    with pytest.raises(LookupError, match=r"the extract stage reads settings field 'drift.critical_index' but is "
                                          r"not given the 'drift' section"):
        _ = s.drift.critical_index
    assert json.loads(s.to_json()) == {"features": json.loads(Settings().to_json())["features"]}


def test_stage_json_holds_exactly_the_stage_sections_and_round_trips():
    s = Settings().replace(n_select=150, min_idx=50, min_bqx=50, iterations=40)
    for stage, sections in STAGE_SECTIONS.items():
        doc = json.loads(s.stage_json(stage))
        assert tuple(sorted(doc)) == tuple(sorted(sections))
        back = Settings.for_stage(s.stage_json(stage), stage)
        for section in sections:
            assert getattr(back, section) == getattr(s, section)


def test_replace_finds_a_field_section_and_refuses_an_ambiguous_name():
    s = Settings().replace(n_select=220, lags=(60,), sns_topic_arn="arn:x")
    assert (s.selection.n_select, s.splits.lags, s.drift.sns_topic_arn) == (220, (60,), "arn:x")
    with pytest.raises(TypeError, match="'sample_rows' is in more than one section"):
        Settings().replace(sample_rows=10)
    assert Settings().replace(selection=SelectionSettings(sample_rows=10)).selection.sample_rows == 10
    with pytest.raises(ValueError, match="'selection.n_select'"):  # each section checks itself
        Settings().replace(n_select=100)
    for rsm, why in ((0.0, "must be positive"), (1.5, r"must be in \(0, 1\]")):
        with pytest.raises(ValueError, match=f"'selection.rsm': {why}"):
            Settings().replace(rsm=rsm)


def test_every_field_of_the_flat_layout_points_to_its_new_place():
    flat = ["pairs", "profile", "baseline_date", "bar_interval_s", "bqx_version", "bqx_windows", "bqx_agg_window",
            "bqx_v3_windows", "reg_windows", "hmm_fit_rows", "target_window", "horizons", "lags", "causality_lag",
            "n_select", "min_idx", "min_bqx", "selection_sample_rows", "train_fraction", "val_fraction",
            "walk_forward_folds", "eval_cost_bps", "drift_warning_index", "drift_critical_index", "drift_sample_rows",
            "drift_method", "drift_threshold", "drift_feature_methods", "drift_feature_thresholds",
            "drift_sns_topic_arn", "seed", "train"]
    assert sorted(MOVED) == sorted(flat)
    for new in MOVED.values():
        section, _, name = new.partition(".")
        assert section in SECTIONS and (not name or name.split(" ")[0] in SECTIONS[section].__dataclass_fields__)

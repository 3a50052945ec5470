"""bqx.pair_status with KFP's own artifact classes: a failure is recorded, passed on, and never raised."""

from kfp.dsl import HTML, Dataset, Markdown, Metrics, Model

from bqx.pair_status import failure_of, run_isolated


def _art(kind: type, tmp_path, name: str) -> object:
    return kind(name=name, uri=str(tmp_path / name), metadata={})


def test_a_failure_is_recorded_on_every_output_then_passed_on(tmp_path, capsys):
    data, metrics = _art(Dataset, tmp_path, "dataset"), _art(Metrics, tmp_path, "metrics")

    def boom() -> None:
        raise ValueError("no rows left after the warm-up")

    assert run_isolated("select", "usdjpy", [], [data, metrics], boom) is False
    assert data.metadata == {"pair": "usdjpy", "status": "failed", "failed_stage": "select",
                             "reason": "ValueError: no rows left after the warm-up"}
    assert metrics.metadata == {} and (tmp_path / "dataset").is_dir()
    assert "select  usdjpy  FAILED: ValueError: no rows left" in capsys.readouterr().out
    model, card, page = (_art(k, tmp_path, n) for k, n in ((Model, "model"), (Markdown, "card"), (HTML, "page")))
    ran = []
    assert run_isolated("train", "usdjpy", [data], [model, card, page], lambda: ran.append(1)) is False
    assert ran == [] and failure_of([model]) == {"pair": "usdjpy", "stage": "select",
                                                 "reason": "ValueError: no rows left after the warm-up"}
    assert "failed at select" in (tmp_path / "card").read_text() and "no rows left" in (tmp_path / "page").read_text()
    assert "train   usdjpy  skipped: failed at select" in capsys.readouterr().out
    ok = _art(Dataset, tmp_path, "ok")
    assert run_isolated("lag", "eurusd", [ok], [_art(Dataset, tmp_path, "out")], lambda: None) is True

"""The monthly cost of a plan (bqx.costs) and bqx plan --monthly / --json / --diff."""

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from bqx.cli import main
from bqx.config import Settings
from bqx.costs import DEFAULT_CRON, TASK_SECONDS_PER_PAIR_YEAR, monthly, runs_per_month
from bqx.plan import disk_bytes, load_prices, plan_data


def test_runs_per_month_count_a_cron_expression_over_a_year():
    assert runs_per_month("0 0 6 * * 1-5") == 261 / 12  # 2026 has 261 weekdays
    assert runs_per_month("0 0 * * * *") == 365 * 24 / 12
    assert runs_per_month("0 0 6 1 * *") == 1.0
    assert runs_per_month("0 */30 6-7 * * 0,7") == 4 * 52 / 12  # Sunday as 0 or 7, 52 Sundays in 2026
    # both day fields restricted: the 1st, the 15th or a Monday (cron's rule)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    either = sum(1 for d in days if d.day in (1, 15) or d.weekday() == 0)
    assert runs_per_month("0 0 6 1,15 * 1") == either / 12 and 24 + 52 - either > 0  # some overlap
    with pytest.raises(ValueError, match="six fields"):
        runs_per_month("0 6 * * 1-5")
    with pytest.raises(ValueError, match="cron hour field '24'"):
        runs_per_month("0 0 24 * * *")
    with pytest.raises(ValueError, match="cron day-of-week field 'mon'"):
        runs_per_month("0 0 6 * * mon")


def test_each_cost_line_is_measured_time_times_a_dated_price():
    s = Settings()
    prices = load_prices()
    m5 = next(p.usd_per_hour for p in prices if p.name == "ml.m5.large")
    cost = monthly(s, prices, "ml.m5.large", runs=20.0, years=2.0, tune_trials=3, stored_bytes=50 * 10**9)
    line = {c.name: c.usd for c in cost.lines}
    assert list(line) == ["processing", "training", "tuning", "endpoint", "ab_tests", "batch", "storage"]
    assert line["ab_tests"] == 0.0  # aws.ab_candidate_percent = 0
    assert line["endpoint"] == pytest.approx(730 * m5)  # one instance around the clock
    train_hours = 28 * 2 * TASK_SECONDS_PER_PAIR_YEAR["train"] / 3600  # 28 jobs, 2 years of bars each
    assert line["training"] == pytest.approx(20 * train_hours * m5)
    assert line["tuning"] == pytest.approx(3 * line["training"])
    data_s = 28 * 2 * (21.2 + 0.1 + 7.9 + 4.6) + 4.3 + 6.2 + 0.5
    assert line["processing"] == pytest.approx(20 * data_s / 3600 * m5)
    assert line["storage"] == pytest.approx(50 * 0.023)
    assert cost.total == pytest.approx(sum(line.values()))
    assert line["batch"] == 0.0  # no bqx-predict runs asked for
    batch = {c.name: c for c in monthly(s, prices, "ml.m5.large", runs=20.0, batch_runs=4).lines}["batch"]
    assert batch.usd == pytest.approx(4 * (28 * 1.14 + 4.3) / 3600 * m5)  # bench/predict.py's month of a pair
    assert batch.detail.startswith("4 bqx-predict runs x 36 s (a month of 28 pairs)")
    bigger = s.replace(autoscale_min=2, endpoint_instance_type="ml.m5.xlarge")
    up = monthly(bigger, prices, "ml.m5.large", runs=20.0)
    m5x = next(p.usd_per_hour for p in prices if p.name == "ml.m5.xlarge")
    assert {c.name: c.usd for c in up.lines}["endpoint"] == pytest.approx(2 * 730 * m5x)
    with pytest.raises(ValueError, match="ml.p9.huge is not in the price file"):
        monthly(s.replace(instance_type="ml.p9.huge"), prices, "ml.m5.large", runs=1.0)


def test_an_ab_test_prices_the_candidate_fleet_and_says_when_runs_come_faster_than_verdicts():
    prices = load_prices()
    m5x = next(p.usd_per_hour for p in prices if p.name == "ml.m5.xlarge")
    s = Settings().replace(ab_candidate_percent=10, endpoint_instance_type="ml.m5.xlarge", endpoint_instance_count=2,
                           ab_window_h=72.0)
    weekly = {c.name: c for c in monthly(s, prices, "ml.m5.large", runs=4.0).lines}["ab_tests"]
    assert weekly.usd == pytest.approx(4 * 72 * 2 * m5x)  # four 72-hour tests, two more instances each
    assert weekly.detail.startswith("up to 4.0 tests x 72 h") and "288 h a month" in weekly.detail
    assert "wait for its verdict" not in weekly.detail
    daily = {c.name: c for c in monthly(s, prices, "ml.m5.large", runs=runs_per_month(DEFAULT_CRON)).lines}["ab_tests"]
    assert daily.usd == pytest.approx(730 * 2 * m5x)  # one test at a time: never more than the month
    assert daily.detail.startswith("up to 10.1 tests x 72 h")  # back to back: never more than the month
    assert "runs come every 34 h, so the deploys during a test wait for its verdict" in daily.detail


def test_plan_json_holds_the_counts_instances_and_costs():
    data = plan_data(Settings())
    assert data["counts"]["base"] == 1080 and data["counts"]["candidates"] == 2640
    assert data["counts"]["selected"] == 250 and sum(data["tables"].values()) == 1080
    assert data["instances"]["endpoint"] == "ml.m5.large"
    assert data["bytes"]["stored_per_run"] == disk_bytes(Settings())
    assert data["monthly"]["runs_per_month"] == 261 / 12
    assert data["monthly"]["total_usd"] == pytest.approx(sum(line["usd"] for line in data["monthly"]["lines"]))
    json.dumps(data)  # plain JSON


def test_plan_monthly_json_and_diff_on_the_command_line(tmp_path: Path, capsys):
    old = tmp_path / "old.json"
    assert main(["plan", "--monthly", "--json", str(old)]) == 0
    out = capsys.readouterr().out
    assert "monthly cost (21.8 runs a month" in out and "\n  total  " in out
    assert "\n  endpoint    $      83.95   1 x ml.m5.large around the clock" in out
    assert json.loads(old.read_text())["counts"]["candidates"] == 2640
    assert main(["plan", "--diff", str(old)]) == 0
    assert capsys.readouterr().out.startswith("the plans agree: no figure changed")
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"selection": {"n_select": 200}, "aws": {"endpoint_instance_count": 2}}))
    assert main(["plan", "--diff", str(old), "--settings", str(settings), "--tune-trials", "4"]) == 0
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:5]]
            for r in capsys.readouterr().out.splitlines()[2:]}
    assert rows["counts.selected"] == ["250", "200", "-50 (-20.0%)"]
    assert rows["instances.endpoint_count"][:2] == ["1", "2"]
    assert rows["cost.endpoint"][2].startswith("+83.95")  # a second ml.m5.large around the clock
    assert float(rows["cost.tuning"][1]) > 0 and "cost.total" in rows and "counts.base" not in rows
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["plan", "--diff", str(tmp_path / "bad.json")]) == 1
    assert "not a plan written by bqx plan --json" in capsys.readouterr().err

"""The forests study: record schema, counts, intervals, verdict, probes and the CLI.

Everything runs on tiny configurations (a few 8x8 digits at 100 queries); the
full profile is the documented command behind docs/records/forests.json,
checked by tests/test_docs_forests.py.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from hoodwink.errors import ConfigError
from hoodwink.stats import rate_text, wilson
from hoodwink.studies import forests
from hoodwink.studies.forests import core, models
from hoodwink.studies.forests.report import best_cell, verdict

pytest.importorskip("sklearn")

#: Small and fast: two models, four attacks (scores and labels), both norms.
SMALL = {"models": ["forest", "logistic"], "attacks": ["nes", "fd", "square", "hopskipjump"],
         "n": 4}


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return forests.run("quick", **SMALL)


def _plain(v: Any) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, str | int | float | bool)


# ---------------------------------------------------------------------- the record
def test_record_schema_and_round_trip(record: dict[str, Any]) -> None:
    assert record["schema"] == forests.SCHEMA == "hoodwink.forests/1"
    assert record["profile"] == "quick" and _plain(record)
    assert json.loads(json.dumps(record)) == record
    assert record["config"]["budgets"] == [100] and record["config"]["seed"] == 0
    assert {"pool", "success", "anytime", "minimum-norm", "zero-gradient"} <= set(
        record["definitions"])
    assert [d["name"] for d in record["datasets"]] == ["digits8"]
    assert [m["model"] for m in record["models"]] == ["forest", "logistic"]
    # Every (model, attack, norm, eps) of the plan is a cell: 2 models x 4 attacks x 2 norms.
    keys = {(c["model"], c["attack"], c["norm"], c["eps"]) for c in record["cells"]}
    assert len(keys) == len(record["cells"]) == 2 * 4 * 2
    assert all(c["status"] == "ok" for c in record["cells"]), [
        c["reason"] for c in record["cells"] if c["status"] != "ok"]


def test_every_rate_carries_its_wilson_interval(record: dict[str, Any]) -> None:
    for c in record["cells"]:
        for r in c["rates"]:
            lo, hi = wilson(r["k"], r["n"])
            assert r["ci"] == [lo, hi]
            assert lo <= r["rate"] == r["k"] / r["n"] <= hi


def test_counts_are_consistent(record: dict[str, Any]) -> None:
    d = record["datasets"][0]
    assert d["pool"] >= 4 and d["n_test"] == 359 and d["bounds"] == [0.0, 16.0]
    for m in record["models"]:
        assert m["n_attacked"] == 4 and 0 < m["test_correct"] <= m["test_n"] == 359
        assert m["accuracy"] == m["test_correct"] / m["test_n"]
    for c in record["cells"]:
        s = c["samples"]
        assert c["n"] == len(s["success"]) == len(s["queries"]) == len(s["norm"]) == 4
        # The budget is never exceeded, and success within 100 is what the samples say.
        assert max(s["queries"]) == c["queries_max"] <= c["max_queries"] == 100
        assert c["queries_total"] == sum(s["queries"])
        (r,) = c["rates"]
        hits = [ok and q <= 100 for ok, q in zip(s["success"], s["queries"], strict=True)]
        assert r["k"] == sum(hits) and r["n"] == 4
        norms = [v for v, h in zip(s["norm"], hits, strict=True) if h]
        if norms:
            assert r["median_norm"] == pytest.approx(float(np.median(norms)))
            assert max(norms) <= c["eps"] * (1 + 1e-5)
        else:
            assert r["median_norm"] is None
        if "unchanged" in c:  # an input whose scores never changed cannot be fooled
            assert c["model"] == "forest" and c["threat"] == "scores"
            assert c["unchanged"] <= c["n"] - r["k"]
            flat, total = c["flat_queries"]
            assert 0 <= flat <= total
        else:
            assert c["model"] == "logistic" or c["threat"] == "labels"


def test_probes_count_zero_estimates(record: dict[str, Any]) -> None:
    probes = record["probes"]
    assert {(p["model"], p["estimator"]) for p in probes} == {
        (m, e) for m in ("forest", "logistic") for e in ("nes", "fd")}
    for p in probes:
        assert p["sigma"] == 1.0  # one grid step of the digits' 17 levels
        assert p["flat_estimates"] <= p["zero_estimates"] <= p["n"] == 4
        assert p["pairs_total"] == p["n"] * p["pairs"]
        # An estimate is zero exactly when all its pairs are identical.
        assert p["identical_pairs"] >= p["zero_estimates"] * p["pairs"]
    # A logistic regression's probabilities move with every pixel: never a zero estimate.
    assert all(p["zero_estimates"] == 0 for p in probes if p["model"] == "logistic")


# ---------------------------------------------------------------------- definitions
def test_success_within_budget_is_success_and_queries() -> None:
    success = torch.tensor([True, True, False, True, True])
    queries = torch.tensor([10, 150, 3000, 999, 1000])
    norm = torch.tensor([0.5, 0.2, 0.9, 0.3, 0.4], dtype=torch.float64)
    rates = core._rates(success, queries, norm, [100, 1000, 10_000])
    assert [r["k"] for r in rates] == [1, 4, 4]
    assert [r["median_norm"] for r in rates] == [0.5, pytest.approx(0.35), pytest.approx(0.35)]
    assert [r["median_queries"] for r in rates] == [10.0, 574.5, 574.5]
    assert rates[0]["ci"] == list(wilson(1, 5))


def _stump() -> Any:
    """A depth-1 tree: class 1 iff feature 0 > 0.5; scores are flat away from 0.5."""
    from sklearn.tree import DecisionTreeClassifier

    x = np.array([[0.0, 0.0], [0.4, 1.0], [0.6, 0.0], [1.0, 1.0]])
    tree = DecisionTreeClassifier(max_depth=1).fit(x, [0, 0, 1, 1])
    assert tree.tree_.threshold[0] == pytest.approx(0.5)
    return tree


def _tiny(estimator: Any, name: str, piecewise: bool) -> tuple[models.StudyData,
                                                              models.TrainedModel]:
    from hoodwink.models.sklearn import SklearnClassifier

    x = torch.tensor([[0.1, 0.2], [0.2, 0.9], [0.3, 0.5]])
    y = torch.zeros(3, dtype=torch.int64)
    data = models.StudyData("tiny", x.double().numpy(), y.numpy(), x, y, (2,), (0.0, 1.0),
                            None, False, "units", "three points")
    clf = SklearnClassifier(estimator, bounds=(0, 1))
    tm = models.TrainedModel("tiny", name, clf, estimator, name, "predict_proba", piecewise,
                             3, 0.0, torch.ones(3, dtype=torch.bool))
    return data, tm


def test_probe_finds_zero_estimates_exactly_where_scores_are_flat() -> None:
    from sklearn.linear_model import LogisticRegression

    data, stump = _tiny(_stump(), "forest", True)
    # Every input is at least 0.2 from the threshold, sigma is 0.001: all probes identical.
    for p in core._probe(data, stump, data.x_test, samples=10, seed=0):
        assert (p["zero_estimates"], p["flat_estimates"], p["n"]) == (3, 3, 3)
        assert p["identical_pairs"] == p["pairs_total"] == 3 * p["pairs"]
    lr = LogisticRegression().fit(np.array([[0.0, 0.0], [1.0, 1.0]]), [0, 1])
    data, smooth = _tiny(lr, "logistic", False)
    for p in core._probe(data, smooth, data.x_test, samples=10, seed=0):
        assert p["zero_estimates"] == 0 and p["identical_pairs"] == 0


def test_watch_sees_every_query_of_an_attack_on_flat_scores() -> None:
    from hoodwink.attacks import registry

    data, stump = _tiny(_stump(), "forest", True)
    watch = core._ScoreWatch(stump.classifier, data.x_test)
    attack = registry.make("nes", samples=4, max_queries=30)
    res = attack(watch, data.x_test, data.y_test, eps=0.05)
    # eps 0.05 cannot reach the threshold from 0.1, 0.2 or 0.3: nothing changes, ever.
    assert not bool(res.success.any())
    assert not bool(watch.changed.any()) and watch.flat == watch.queries > 0
    # Every query reached the model through the watch (the final verification asks labels).
    assert watch.queries + watch.label_queries == int(res.queries.sum())
    # With eps 0.25 the third input (0.3) can cross 0.5; its scores then change.
    watch = core._ScoreWatch(stump.classifier, data.x_test)
    res = registry.make("square", max_queries=60)(watch, data.x_test, data.y_test, eps=0.25)
    assert watch.changed.tolist()[:2] == [False, False]
    assert bool(watch.changed[2]) == bool(res.success[2])


def test_anytime_check_agrees_for_square() -> None:
    """A run at budget 50 is the first 50 queries of one at 200 (Square is anytime)."""
    profile = forests.Profile(
        name="check", datasets={"digits8": forests.DatasetPlan(eps={"linf": (2.0,)},
                                                               n={"forest": 5})},
        budgets=(50, 200), check_budgets=(50,), attacks=("square",), trees=10)
    rec = forests.run(profile)
    (cell,) = rec["cells"]
    (check,) = cell["checks"]
    assert check["agree"] == check["n"] == 5 and check["k"] == check["derived_k"]
    assert check["derived_k"] == cell["rates"][0]["k"] <= cell["rates"][1]["k"]


# ---------------------------------------------------------------------- verdict and report
def test_verdict_is_generated_from_the_numbers(record: dict[str, Any]) -> None:
    text = record["verdict"]
    assert text == verdict(record)
    best = best_cell(record, "digits8", "forest", "linf", 4.0)
    assert best is not None
    r = best["rates"][-1]
    assert f"random forest {rate_text(r['k'], r['n'])} ({best['attack']})" in text
    # The probe counts of the piecewise-constant model (the forest), per estimator.
    for p in record["probes"]:
        if p["model"] == "forest":
            est = p["estimator"].upper()
            assert f"{est} {p['zero_estimates']} of {p['n']} on 8x8 digits (sigma 1)" in text
    watched = [c for c in record["cells"]
               if c["attack"] == "nes" and "unchanged" in c and c["norm"] == "linf"]
    u, n = sum(c["unchanged"] for c in watched), sum(c["n"] for c in watched)
    assert f"the scores of {u} of {n} attacked inputs never changed" in text


def test_verdict_follows_the_data_when_forests_hold(record: dict[str, Any]) -> None:
    held = copy.deepcopy(record)
    for c in held["cells"]:
        if c["model"] == "forest":
            for r in c["rates"]:
                r["k"], r["rate"] = 0, 0.0
    text = verdict(held)
    assert "fooled no piecewise-constant model" in text and "not safe" not in text
    assert "random forest 0% (0/4, 95% CI 0–49%)" in text


def test_report_is_drawn_from_the_record_alone(record: dict[str, Any], tmp_path: Path) -> None:
    first = forests.report(record)
    assert set(first.figures) == {forests.CURVES, forests.MATRIX}
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in first.figures.values())
    md = first.markdown()
    assert record["verdict"] in md and "## Why gradient estimates fail" in md
    paths = first.write(tmp_path, stem="forests")
    saved = json.loads(paths.json.read_text(encoding="utf-8"))
    assert saved["schema"] == "hoodwink.forests/1"
    assert forests.report(saved).markdown() == md
    for fig in first.figures:
        assert (tmp_path / fig).is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile": "medium"}, "'profile' parameter of forests.run"),
        ({"datasets": ["cifar"]}, "Unknown value 'cifar' in the 'datasets'"),
        ({"models": ["xgboost"]}, "Unknown value 'xgboost' in the 'models'"),
        ({"attacks": ["pgd"]}, "Unknown value 'pgd' in the 'attacks'"),
        ({"n": 0}, "'n' parameter of forests.run"),
        ({"seed": -1}, "'seed' parameter of forests.run"),
        ({"models": ["cnn"]}, "Nothing to run"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    profile = kwargs.pop("profile", "quick")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        forests.run(profile, **kwargs)


def test_report_refuses_another_record() -> None:
    with pytest.raises(ConfigError, match="needs a record of the forests study"):
        forests.report({"schema": "hoodwink.transfer/1"})


# ---------------------------------------------------------------------- data
def test_datasets_are_in_their_attack_units() -> None:
    digits = models.load_data("digits8")
    assert digits.levels == 17 and digits.bounds == (0.0, 16.0)
    assert torch.equal(digits.x_test, torch.round(digits.x_test))
    assert float(digits.x_test.max()) == 16.0 and digits.x_test.shape[1:] == (1, 8, 8)
    cancer = models.load_data("breast-cancer")
    assert cancer.levels is None and cancer.shape == (30,) and not cancer.image
    assert cancer.x_train.min() == 0.0 and cancer.x_train.max() == 1.0
    assert float(cancer.x_test.min()) >= 0.0 and float(cancer.x_test.max()) <= 1.0
    assert len(cancer.x_test) + cancer.dropped_test == 114  # 20% of 569
    with pytest.raises(ConfigError, match="only"):
        models.train_model(digits, "cnn")


# ---------------------------------------------------------------------- CLI
def cli_app() -> typer.Typer:
    from hoodwink.cli.forests import register

    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """Stand-in for the hoodwink root command."""

    register(app)
    return app


def test_cli_quick_json_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "f"
    r = CliRunner().invoke(cli_app(), ["forests", "--quick", "--models", "forest,logistic",
                                       "--attacks", "square,hopskipjump", "--n", "3",
                                       "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["schema"] == "hoodwink.forests/1" and rec["profile"] == "quick"
    assert all("samples" not in c for c in rec["cells"])  # they stay in the file
    saved = json.loads((out / "forests.json").read_text(encoding="utf-8"))
    assert all("samples" in c for c in saved["cells"])
    for name in ("forests.json", "forests.md", "forests.html", forests.CURVES,
                 forests.MATRIX):
        assert (out / name).is_file()
    assert rec["outputs"]["record"] == str(out / "forests.json")


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli_app(), ["forests", "--quick", "--models", "tree",
                                       "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "Unknown value 'tree' in the 'models' parameter" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_quick_profile_runs_end_to_end_in_20_s(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    r = CliRunner().invoke(cli_app(), ["forests", "--quick", "--out", str(tmp_path)],
                           env={"COLUMNS": "200"})
    elapsed = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    assert "best black-box attack within the largest budget" in r.stdout
    assert elapsed < 20, elapsed

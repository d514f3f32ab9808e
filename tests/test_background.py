"""The background-class study: a tiny run, its record and report, its checks, the CLI.

The full study (5 rounds, 4,000 digits) takes minutes; here 1-2 rounds on a
few hundred digits check that every documented field is present, in range and
consistent with the others, that a seed reproduces the study, and that the
verdict follows the stated criterion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from typer.testing import CliRunner

from hoodwink.cli.dream import register
from hoodwink.errors import ConfigError
from hoodwink.studies.background import (
    BackgroundRound,
    BackgroundStudy,
    background_class_study,
    write_background_report,
)

TINY: dict[str, Any] = {
    "fooling_per_round": 10, "train_size": 500, "test_size": 200, "epochs": 2,
    "epochs_per_round": 1, "steps": 60, "batch_size": 32,
}

FIELDS = {
    "round", "background_size", "clean_accuracy", "clean_as_background", "noise_as_background",
    "previous_rejected", "fooling_n", "start_confidence_mean", "confidence_mean",
    "reached_threshold", "reached_099", "steps_mean", "steps_median", "steps_median_099",
    "train_time_s", "dream_time_s",
}


@pytest.fixture(scope="module")
def study() -> BackgroundStudy:
    return background_class_study(rounds=2, seed=3, **TINY)


def test_record_has_documented_fields_in_range(study: BackgroundStudy) -> None:
    rec = study.to_dict()
    assert set(rec) == {"config", "seed", "rounds", "effective", "verdict", "time_s"}
    assert rec["config"]["rounds"] == 2 and rec["config"]["train_size"] == 500
    assert rec["config"]["test_size"] == 200 and rec["config"]["confidence"] == 0.996
    rounds = rec["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert [r["background_size"] for r in rounds] == [0, 10, 20]
    for r in rounds:
        assert set(r) == FIELDS
        for key in ("clean_accuracy", "clean_as_background", "noise_as_background",
                    "start_confidence_mean", "confidence_mean", "reached_threshold",
                    "reached_099"):
            assert 0.0 <= r[key] <= 1.0, (key, r[key])
        assert r["fooling_n"] == 10
        assert 0 <= r["steps_median"] <= 60 and 0 <= r["steps_mean"] <= 60
        # Reaching 0.996 implies reaching 0.99; a tenth of 10 images is the resolution.
        assert r["reached_099"] >= r["reached_threshold"]
        assert r["reached_threshold"] * 10 == pytest.approx(round(r["reached_threshold"] * 10))
        if r["steps_median_099"] is not None:
            assert 0 <= r["steps_median_099"] <= 60
        assert r["train_time_s"] > 0 and r["dream_time_s"] > 0
    assert rounds[0]["previous_rejected"] is None
    assert all(0.0 <= r["previous_rejected"] <= 1.0 for r in rounds[1:])
    # Round 0 trains without background images, so it can never answer "background".
    assert rounds[0]["clean_as_background"] == 0.0 and rounds[0]["noise_as_background"] == 0.0
    # Two epochs on 500 digits are far above chance (0.1).
    assert rounds[0]["clean_accuracy"] > 0.5
    json.dumps(rec)  # plain JSON types only


def test_verdict_follows_the_criterion(study: BackgroundStudy) -> None:
    first, last = study.rounds[0], study.rounds[-1]
    assert study.effective == (last.reached_threshold <= 0.5 * first.reached_threshold)
    assert f"Round {last.round}" in study.verdict
    assert ("is effective here" in study.verdict) == study.effective
    assert ("not an effective defence" in study.verdict) == (not study.effective)


def test_report_files(study: BackgroundStudy, tmp_path: Path) -> None:
    paths = write_background_report(study, tmp_path / "bg")
    rec = json.loads(paths.json.read_text())
    assert rec["schema"] == "hoodwink.defence.background/1"
    assert rec["figures"] == ["background.png"]
    assert (paths.folder / "background.png").read_bytes()[:4] == b"\x89PNG"
    assert len(rec["rounds"]) == 3 and rec["verdict"] == study.verdict
    md = paths.markdown.read_text()
    assert "What it shows" in md and study.verdict in md
    assert paths.html.is_file()


def test_seed_reproduces_and_leaves_global_rng_alone() -> None:
    kw: dict[str, Any] = dict(TINY, train_size=100, test_size=50, fooling_per_round=5,
                              steps=30, epochs=1)
    state = torch.random.get_rng_state()
    a = background_class_study(rounds=1, seed=7, **kw)
    b = background_class_study(rounds=1, seed=7, **kw)
    assert torch.equal(torch.random.get_rng_state(), state)

    def strip(r: BackgroundRound) -> dict[str, Any]:
        d = r.__dict__.copy()
        d.pop("train_time_s")
        d.pop("dream_time_s")
        return d

    assert [strip(r) for r in a.rounds] == [strip(r) for r in b.rounds]


def test_scratch_retraining_runs() -> None:
    s = background_class_study(rounds=1, retrain="scratch", seed=1,
                               **dict(TINY, train_size=100, test_size=50, fooling_per_round=5,
                                      steps=30, epochs=1))
    assert s.config["retrain"] == "scratch" and len(s.rounds) == 2
    assert s.rounds[1].background_size == 5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rounds": 0}, "rounds"),
        ({"fooling_per_round": 0}, "fooling_per_round"),
        ({"epochs": 0}, "epochs"),
        ({"steps": 0}, "steps"),
        ({"retrain": "warm"}, "retrain"),
        ({"confidence": 1.0}, "confidence"),
        ({"stepsize": -1.0}, "stepsize"),
        ({"smoothness": -1.0}, "smoothness"),
        ({"train_size": 5}, "train_size"),
        ({"lr": 0.0}, "lr"),
        ({"seed": -3}, "seed"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'"):
        background_class_study(**kwargs)


def test_progress_is_reported() -> None:
    seen: list[tuple[int, int, str]] = []
    background_class_study(rounds=1, progress=lambda d, t, m: seen.append((d, t, m)),
                           **dict(TINY, train_size=100, test_size=50, fooling_per_round=5,
                                  steps=20, epochs=1))
    done = [d for d, _, _ in seen]
    assert {t for _, t, _ in seen} == {4}  # two units per round, two rounds
    assert done == sorted(done) and done[0] == 0 and done[-1] == 4
    assert seen[-1][2] == "done" and "round 1" in seen[-2][2]
    assert any("growing" in m for _, _, m in seen)


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_defend_background(tmp_path: Path) -> None:
    args = ["defend", "background", "--rounds", "1", "--fooling-per-round", "5",
            "--train-size", "100", "--test-size", "50", "--epochs", "1",
            "--epochs-per-round", "1", "--steps", "30", "--out", str(tmp_path)]
    r = CliRunner().invoke(_cli(), args)
    assert r.exit_code == 0, r.output
    assert "Round 1" in " ".join(r.stdout.split())  # rich wraps lines
    assert "background.json" in r.stdout.replace("\n", "")
    rec = json.loads((tmp_path / "background.json").read_text())
    assert rec["schema"] == "hoodwink.defence.background/1"
    assert [x["round"] for x in rec["rounds"]] == [0, 1]
    assert (tmp_path / "background.png").is_file()
    # --json prints the same record (same seed, same numbers; times differ).
    r2 = CliRunner().invoke(_cli(), [*args, "--json"])
    assert r2.exit_code == 0, r2.output
    rec2 = json.loads(r2.stdout)
    assert [x["steps_median"] for x in rec2["rounds"]] == [x["steps_median"] for x in rec["rounds"]]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--retrain", "warm"], "retrain"), (["--rounds", "0"], "rounds"),
     (["--stepsize", "1/0"], "budget")],
)
def test_cli_defend_background_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    r = CliRunner().invoke(_cli(), ["defend", "background", *args, "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and needle in r.output

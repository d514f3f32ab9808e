"""The ``hoodwink linear`` commands, through typer's runner on the sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hoodwink.cli.linear import app

runner = CliRunner()


def test_toy_prints_the_essay_numbers(tmp_path: Path) -> None:
    res = runner.invoke(app, ["toy", "--out", str(tmp_path / "toy")])
    assert res.exit_code == 0, res.output
    assert "-3" in res.output and "0.0474" in res.output and "0.8808" in res.output
    rec = json.loads((tmp_path / "toy" / "report.json").read_text())
    assert rec["schema"] == "hoodwink.linear.toy/1" and rec["score_adv"] == 2.0
    assert (tmp_path / "toy" / "toy.png").is_file()
    assert (tmp_path / "toy" / "report.html").is_file()


def test_train_templates_fool_regularization_on_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "train"
    res = runner.invoke(app, ["train", "--data", "synthetic", "--epochs", "5", "--lr", "0.05",
                              "--weight-decay", "1e-2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    model = out / "model.safetensors"
    assert model.is_file() and (out / "loss.png").is_file() and (out / "templates.png").is_file()
    rec = json.loads((out / "report.json").read_text())
    assert rec["schema"] == "hoodwink.linear.train/1" and rec["training"]["flags"] == []

    res = runner.invoke(app, ["templates", "--model", str(model), "--out",
                              str(tmp_path / "tpl")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tpl" / "templates.png").is_file()
    assert "templates: 100% (3/3)" in res.output  # piped: one line at the end

    res = runner.invoke(app, ["fool", "--model", str(model), "--data", "synthetic",
                              "--n-compare", "10", "--pgd-steps", "5", "--eps-linf", "1/255,0.1",
                              "--out", str(tmp_path / "fool")])
    assert res.exit_code == 0, res.output
    assert "fooling: 100% (11/11)" in res.output  # 4 examples + 2 L∞ + 5 L2 budgets
    rec = json.loads((tmp_path / "fool" / "report.json").read_text())
    for e in rec["examples"]:
        if e["alpha_min_closed_form"] is not None:
            assert abs(e["alpha_min_closed_form"] - e["alpha_min_measured"]) <= 1e-6 * max(
                1.0, e["alpha_min_closed_form"])
    assert {r["attack"] for r in rec["comparison"]["rows"]} >= {"FGSM", "PGD-5"}
    for name in ("strip.png", "alpha_curve.png", "comparison.png", "report.md"):
        assert (tmp_path / "fool" / name).is_file()

    res = runner.invoke(app, ["regularization", "--data", "synthetic", "--weight-decays",
                              "1e-4,1e-2,1", "--epochs", "3", "--out", str(tmp_path / "reg")])
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "reg" / "report.json").read_text())
    assert len(rec["rows"]) == 3 and len(rec["findings"]) == 5
    assert (tmp_path / "reg" / "measures.png").is_file()


def test_train_exits_3_when_a_sanity_check_fires(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--data", "synthetic", "--epochs", "2", "--init-std",
                              "1", "--out", str(tmp_path / "t")])
    assert res.exit_code == 3, res.output
    assert "InitialLossWarning" in res.output and "init_std" in res.output


def test_library_errors_exit_2_with_one_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a refused command must leave no default out/ folder
    res = runner.invoke(app, ["templates", "--model", str(tmp_path / "missing.safetensors")])
    assert res.exit_code == 2
    assert "No model file" in res.output
    p = tmp_path / "bad.npz"
    np.savez(p, x=np.zeros((3, 4, 4)), y=np.arange(2))
    res = runner.invoke(app, ["train", "--data", str(p), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "one label per image" in res.output
    res = runner.invoke(app, ["train", "--data", "synthetic", "--kind", "knn"])
    assert res.exit_code == 2 and "'--kind'" in res.output
    assert not (tmp_path / "out").exists()

"""The linear studies' run/report pairs: what the records hold, progress, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from hoodwink.cli.linear import app
from hoodwink.errors import ConfigError
from hoodwink.studies.linear import (
    LinearModel,
    minimal_alpha,
    roughness,
    synthetic_images,
    template_direction,
    template_images,
    train_linear,
)
from hoodwink.studies.linear.experiments import fool, templates, toy

runner = CliRunner()


@pytest.fixture(scope="module")
def setup() -> tuple[LinearModel, Any]:
    data = synthetic_images(size=8, per_class=10, val_per_class=5)
    model, _ = train_linear(data.x_train, data.y_train, lr=0.05, epochs=5, weight_decay=1.0,
                            class_names=data.class_names, warn=False)
    return model, data


def _ticks() -> tuple[list[tuple[int, int, str]], Any]:
    seen: list[tuple[int, int, str]] = []
    return seen, lambda d, t, m: seen.append((d, t, m))


def test_templates_record_holds_the_drawn_templates(setup: tuple[LinearModel, Any]) -> None:
    model, _ = setup
    seen, cb = _ticks()
    rec = templates.run(model, progress=cb)
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    imgs = torch.tensor(rec["templates"]["images"], dtype=torch.float64)
    want = torch.from_numpy(template_images(model))
    assert imgs.shape == (3, 8, 8)
    # Rounded to 4 significant digits of values in [-1, 1]: within 5e-4 of the real ones.
    assert float((imgs - want).abs().max()) <= 5e-4
    assert rec["templates"]["roughness"] == pytest.approx(roughness(model.templates()).tolist())
    assert rec["classes"][1]["l2_norm"] == pytest.approx(float(model.weight[1].norm()), rel=1e-6)


def test_templates_run_loads_a_saved_model(setup: tuple[LinearModel, Any], tmp_path: Path
                                           ) -> None:
    model, _ = setup
    path = model.save(tmp_path / "m.safetensors")
    rec = templates.run(path)
    assert rec["model"]["source"] == str(path)
    assert rec == {**templates.run(model, source=str(path))}


def test_fool_record_strip_and_closed_forms(setup: tuple[LinearModel, Any]) -> None:
    model, data = setup
    seen, cb = _ticks()
    rec = fool.run(model, data, index=2, n_compare=5, eps_linf=[0.05, 0.1], eps_l2=[1.0],
                   pgd_steps=2, progress=cb)
    assert [d for d, _, _ in seen] == list(range(1, 8)) and {t for _, t, _ in seen} == {7}
    assert [(e["start"], e["direction"]) for e in rec["examples"]] == [
        ("image", "target"), ("image", "difference"), ("noise", "target"),
        ("noise", "difference")]
    x = data.x_val[2:3]
    y = int(data.y_val[2])
    e = rec["examples"][1]
    assert e["target"] == (y + 1) % 3 == rec["target"]
    start = torch.tensor(e["images"]["start"], dtype=torch.float64)
    assert float((start - x[0].double()).abs().max()) <= 5e-5
    d = template_direction(model, x, e["target"], y, direction="difference")[0].double()
    delta = torch.tensor(e["images"]["perturbation"], dtype=torch.float64)
    assert torch.allclose(delta, e["alpha_shown"] * d, rtol=1e-3, atol=1e-7)
    a = float(minimal_alpha(model, x, e["target"], y, direction="difference")[0])
    assert e["alpha_min_closed_form"] == pytest.approx(a)
    assert e["alpha_min_measured"] == pytest.approx(a, rel=1e-6)
    assert len(rec["comparison"]["rows"]) == 2 * 4 + 3  # 2 templates + FGSM + PGD on L∞


def test_fool_report_says_never_for_an_unreached_target(setup: tuple[LinearModel, Any]
                                                       ) -> None:
    model, data = setup
    rec = fool.run(model, data, n_compare=3, eps_linf=[0.1], eps_l2=[1.0], pgd_steps=1)
    back = json.loads(json.dumps(rec))
    back["examples"][0].update(alpha_min_closed_form=None, alpha_min_linf=None)
    page = fool.report(back).markdown()
    assert "| never |" in page
    assert "strip.png" in fool.report(back).figures


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"index": 5}, "index"), ({"index": -1}, "index"), ({"confidence": 1.0}, "confidence"),
     ({"target": 7}, "target"), ({"n_compare": 0}, "n_compare"), ({"pgd_steps": 0}, "pgd_steps"),
     ({"eps_linf": [0.0]}, "eps_linf")],
)
def test_fool_rejects_bad_parameters(setup: tuple[LinearModel, Any], kw: dict[str, Any],
                                     name: str) -> None:
    model, _ = setup
    data = synthetic_images(size=8, per_class=2, val_per_class=2, classes=3)
    data = type(data)(data.x_train, data.y_train, data.x_val[:5], data.y_val[:5],
                      data.class_names, data.source)
    with pytest.raises(ConfigError, match=f"'{name}' parameter of linear fool"):
        fool.run(model, data, **kw)


def test_fool_rejects_the_image_own_class_as_target(setup: tuple[LinearModel, Any]) -> None:
    model, data = setup
    y = int(data.y_val[0])
    with pytest.raises(ConfigError, match=f"other than the image's class {y}"):
        fool.run(model, data, target=y)


def test_toy_run_reports_progress_and_the_essay_numbers() -> None:
    seen, cb = _ticks()
    rec = toy.run(progress=cb)
    assert seen == [(1, 1, "score -3 -> 2")]
    assert rec["x_adv"] == [1.5, -1.5, 3.5, -2.5, 2.5, 1.5, 1.5, -3.5, 4.5, 1.5]
    assert "| score w·x + b | -3 | 2 |" in toy.report(rec).markdown()


def test_cli_shows_progress_when_piped(tmp_path: Path) -> None:
    res = runner.invoke(app, ["toy", "--out", str(tmp_path / "toy")])
    assert res.exit_code == 0, res.output
    assert "toy: 100% (1/1)" in res.output

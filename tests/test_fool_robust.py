"""Robust fooling (EOT): a robust result keeps every guarantee of a plain one, and survives."""

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoodwink.errors import ConfigError, TrainingModeWarning
from hoodwink.models.torch import TorchClassifier
from hoodwink.studies.fool import EOT_STEPS, eot_attack, fool_image

CAT = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.jpg"


class MeanBrightness(torch.nn.Module):
    """Class 1 ("bright") when the mean pixel exceeds 0.5, else class 0 ("dark")."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(40.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-(m - 0.5) * self.scale, (m - 0.5) * self.scale], dim=1)


@pytest.fixture()
def model() -> TorchClassifier:
    return TorchClassifier(MeanBrightness().eval(), bounds=(0, 1), levels=256,
                           class_names=["dark", "bright"])


@pytest.fixture()
def dark_png(tmp_path: Path) -> Path:
    """A textured 56×40 image of mean about 123/255: "dark", 5/255 below the boundary."""
    rng = np.random.default_rng(0)
    arr = np.clip(123 + rng.integers(-30, 31, (40, 56, 3)), 0, 255).astype(np.uint8)
    p = tmp_path / "dark.png"
    Image.fromarray(arr).save(p)
    return p


def test_robust_result_keeps_every_guarantee(model: TorchClassifier, dark_png: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "adv.png"
    res = fool_image(model, dark_png, target=1, eps=8 / 255, out=out, robust=True, steps=12,
                     eot_samples=3, survival_draws=6)
    assert res.success and res.robust and res.eot_samples == 3 and res.steps == 12
    orig = np.asarray(Image.open(dark_png), dtype=np.int16)
    adv = np.asarray(Image.open(out), dtype=np.int16)
    assert adv.shape == orig.shape
    change = int(np.abs(adv - orig).max())
    assert change <= 8 and change == res.max_change_255
    reread = torch.from_numpy(adv.astype(np.float32) / 255).permute(2, 0, 1)[None]
    assert int(model.predict(reread)[0]) == 1 == res.after[0].index
    rec = json.loads(Path(res.outputs["record"]).read_text())
    assert rec["robust"] is True and rec["survival"]["target"] == 1
    fams = [r["family"] for r in rec["survival"]["table"]]
    assert fams[:4] == ["png", "jpeg-95", "jpeg-75", "jpeg-50"] and fams[-1] == "all draws"
    assert rec["survival"]["table"][-1]["n"] == 6
    assert "survival" in rec["timings_s"]
    with Image.open(res.outputs["figure"]) as fig:
        assert fig.format == "PNG"


def test_plain_default_measures_nothing_unless_asked(model: TorchClassifier, dark_png: Path,
                                                     tmp_path: Path) -> None:
    plain = fool_image(model, dark_png, target=1, eps=8 / 255, out=tmp_path / "a.png",
                       figure=False)
    assert plain.survival is None and not plain.robust and plain.steps == 40
    asked = fool_image(model, dark_png, target=1, eps=8 / 255, out=tmp_path / "b.png",
                       figure=False, survival_draws=5)
    assert asked.survival is not None and asked.survival["table"][-1]["n"] == 5


@pytest.mark.parametrize("channels", [1, 3])
def test_eot_attack_on_the_grid_within_eps_and_bounds(model: TorchClassifier,
                                                      channels: int) -> None:
    g = torch.Generator().manual_seed(1)
    # Off the 8-bit grid, non-square, with pixels at both bounds.
    x = torch.rand(1, channels, 33, 47, generator=g) * 0.49
    x[..., :3, :] = 0.0
    x[..., -3:, :] = 1.0
    x_before = x.clone()
    module = model.module
    module.train()
    eps = 3 / 255
    with warnings.catch_warnings():  # "evaluated in eval mode": the point of this check
        warnings.simplefilter("ignore", TrainingModeWarning)
        adv = eot_attack(model, x, target=1, eps=eps, steps=5, eot_samples=3, seed=4)
    assert torch.equal(x, x_before)
    assert module.training and all(p.requires_grad for p in module.parameters())
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert torch.equal(torch.round(adv * 255), adv * 255)
    assert float((adv - x).abs().max()) <= eps + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingModeWarning)
        again = eot_attack(model, x, target=1, eps=eps, steps=5, eot_samples=3, seed=4)
    assert torch.equal(adv, again)
    # The direction is right: the attack raised the mean towards "bright".
    assert float(adv.mean()) > float(x.mean())


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"robust": "yes"}, "robust"), ({"robust": True, "eot_samples": 0}, "eot_samples"),
    ({"survival_draws": -1}, "survival_draws"), ({"robust": True, "steps": 0}, "steps"),
])
def test_bad_robust_parameters(model: TorchClassifier, dark_png: Path, tmp_path: Path,
                               kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'"):
        fool_image(model, dark_png, target=1, eps=8 / 255, out=tmp_path / "x.png",
                   **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_lite0_robust_survives_where_plain_does_not(tmp_path: Path) -> None:
    """The cat made a goldfish at 8/255: robust keeps it after real JPEG-75 and on >= 90% of
    20 held-out draws of real operations; plain PGD, measured on the same draws, keeps fewer."""
    from hoodwink import zoo

    clf = zoo.load("efficientnet-lite0")
    kw = {"target": 1, "eps": 8 / 255, "figure": False, "survival_draws": 20, "seed": 0}
    robust = fool_image(clf, CAT, out=tmp_path / "r.png", robust=True, **kw)  # type: ignore[arg-type]
    plain = fool_image(clf, CAT, out=tmp_path / "p.png", **kw)  # type: ignore[arg-type]
    assert robust.steps == EOT_STEPS and robust.max_change_255 <= 8
    rs, ps = robust.survival, plain.survival
    assert rs is not None and ps is not None
    assert [r["params"] for r in rs["rows"]] == [r["params"] for r in ps["rows"]]
    rate = {r["family"]: r["rate"] for r in rs["table"]}
    assert rate["jpeg-75"] == 1.0 and rate["all draws"] >= 0.9
    plain_rate = {r["family"]: r["rate"] for r in ps["table"]}
    assert plain_rate["all draws"] < rate["all draws"]


def test_figure_carries_the_survival_table(model: TorchClassifier, dark_png: Path) -> None:
    from hoodwink.imaging import load_image
    from hoodwink.studies.fool import Prediction
    from hoodwink.studies.fool_report import survival_lines, triptych
    from hoodwink.survival import survival

    x = load_image(dark_png)
    rep = survival(model, Image.open(dark_png), target=None, original_label=0, draws=3).to_dict()
    preds = [Prediction(0, "dark", 0.6)]
    plain = Image.open(io.BytesIO(triptych(x, x, preds, preds, "m", 4 / 255, 0)))
    with_table = Image.open(io.BytesIO(triptych(x, x, preds, preds, "m", 4 / 255, 0,
                                                survival=rep)))
    assert with_table.height > plain.height
    lines = survival_lines(rep)
    assert "any class but the original" in lines[0]
    assert [ln[2:18].strip() for ln in lines[2:]] == [r["family"] for r in rep["table"]]
    assert lines[-1].split()[-3:-1] == ["0/3", "0%"]  # the original class is never kept


def test_eot_eps_below_the_grid_is_a_config_error(model: TorchClassifier) -> None:
    x = torch.full((1, 3, 8, 8), 100.5 / 255)  # half-way between two levels
    with pytest.raises(ConfigError, match="8-bit"):
        eot_attack(model, x, target=1, eps=0.25 / 255, steps=1, eot_samples=1)
    adv = eot_attack(model, x, target=1, eps=1 / 255, steps=2, eot_samples=2)
    assert set(torch.round(adv * 255).unique().tolist()) <= {100.0, 101.0}


def test_in_memory_run_has_the_robust_mode_and_its_survival(model: TorchClassifier,
                                                            dark_png: Path,
                                                            tmp_path: Path) -> None:
    """fool.run in robust mode: the same PNG as fool_image, the survival table in the record
    and on the page, and the record still plain JSON."""
    from hoodwink.studies import fool
    from hoodwink.studies._record import from_b64

    kw = dict(target=1, eps=8 / 255, robust=True, steps=12, eot_samples=3, survival_draws=6)
    rec = fool.run(model, dark_png, **kw)  # type: ignore[arg-type]
    assert rec["robust"] and rec["eot_samples"] == 3 and rec["steps"] == 12
    assert json.loads(json.dumps(rec)) == rec
    res = fool_image(model, dark_png, out=tmp_path / "adv.png", **kw)  # type: ignore[arg-type]
    assert from_b64(rec["images"]["adversarial"]["png"]) == (tmp_path / "adv.png").read_bytes()
    assert res.survival is not None and rec["survival"] == res.survival
    page = fool.report(rec).markdown()
    assert "Survival, measured on the saved PNG" in page and "robust mode" in page
    for row in rec["survival"]["table"]:
        assert f"| {row['family']} | {row['kept']} | {row['n']} |" in page
    plain = fool.run(model, dark_png, target=1, eps=8 / 255, steps=12)
    assert plain["survival"] is None and plain["robust"] is False
    assert "Survival" not in fool.report(plain).markdown()

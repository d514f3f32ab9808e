"""Curve: what attack.sweep() returns: metrics, sequence, table, plot, JSON, save/load."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, AttackResult, Curve, ResultTable, TorchClassifier
from hoodwink.attacks.curve import CURVE_SCHEMA_VERSION
from hoodwink.errors import ConfigError, InputError

pytestmark = pytest.mark.usefixtures("one_thread")


def model_and_data(n: int = 30) -> tuple[TorchClassifier, torch.Tensor, torch.Tensor]:
    """A 3-class linear model, inputs in [0, 1], labels with a few clean errors."""
    torch.manual_seed(0)
    net = nn.Linear(8, 3).eval()
    with torch.no_grad():  # centre the classes on the data, so every class occurs
        net.bias.copy_(-net.weight.sum(dim=1) / 2)
    model = TorchClassifier(net)
    x = torch.rand(n, 8, generator=torch.Generator().manual_seed(0))
    y = model.predict(x)
    y[:3] = (y[:3] + 1) % 3
    return model, x, y


BUDGETS = [0.0, 0.05, 0.1, 0.2]


@pytest.fixture(scope="module")
def curve() -> Curve:
    model, x, y = model_and_data()
    return PGD(steps=5, seed=1).sweep(model, x, y, eps=BUDGETS)


def assert_same(a: AttackResult, b: AttackResult) -> None:
    for name in ("x_adv", "success", "clean_correct", "pred_clean", "pred_adv",
                 "perturbation_norm", "queries", "y", "target"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert (ta is None) == (tb is None), name
        if ta is not None:
            assert ta.dtype == tb.dtype and ta.shape == tb.shape, name
            assert torch.equal(ta, tb), name
    for name in ("eps", "norm", "attack", "seed", "time_s"):
        assert getattr(a, name) == getattr(b, name), name


# ---------------------------------------------------------------------- values
def test_sweep_equals_single_calls(curve: Curve) -> None:
    """Each point of the curve is exactly the single call at that budget."""
    model, x, y = model_and_data()
    assert curve.eps == tuple(BUDGETS)
    assert curve.norm == "linf" and curve.attack == repr(PGD(steps=5, seed=1))
    for e, r in zip(BUDGETS, curve, strict=True):
        one = PGD(steps=5, seed=1)(model, x, y, eps=e)
        assert r.eps == e
        assert torch.equal(r.x_adv, one.x_adv)
        assert torch.equal(r.success, one.success)
    assert curve.robust_accuracy() == [r.robust_accuracy() for r in curve]
    assert curve.success_rate() == [r.success_rate() for r in curve]


def test_curve_values_are_right(curve: Curve) -> None:
    """At eps 0 robust accuracy is the clean accuracy; it never rises with eps here."""
    ra = curve.robust_accuracy()
    assert ra[0] == curve[0].clean_accuracy() == pytest.approx(27 / 30)
    assert curve.success_rate()[0] == 0.0
    assert ra == sorted(ra, reverse=True)
    assert ra[-1] < ra[0]


def test_curve_is_a_sequence(curve: Curve) -> None:
    """len, iteration, indexing (negative too) and slicing behave like the old list."""
    assert isinstance(curve, Sequence)
    assert len(curve) == 4
    assert [r.eps for r in curve] == BUDGETS
    assert curve[1] is curve.results[1] and curve[-1] is curve.results[3]
    part = curve[1:3]
    assert isinstance(part, Curve) and part.eps == (0.05, 0.1)
    assert part[0] is curve[1]
    with pytest.raises(IndexError):
        curve[4]
    assert list(reversed(curve))[0] is curve[3]
    assert sorted(curve, key=lambda r: -r.eps)[0] is curve[3]


def test_curve_repr_is_short(curve: Curve) -> None:
    """repr(curve) is one line with the budgets and robust accuracies, no tensors."""
    text = repr(curve)
    assert "\n" not in text and len(text) < 200 and "tensor" not in text
    assert text.startswith("Curve(attack='PGD', norm='linf', eps=(0, 0.05, 0.1, 0.2)")
    assert "robust_accuracy=(0.9, " in text


def test_curve_needs_one_result_per_budget(curve: Curve) -> None:
    """A Curve with more budgets than results raises ConfigError."""
    with pytest.raises(ConfigError, match="one result per budget"):
        Curve(eps=(0.1, 0.2), results=curve.results[:1], norm="linf", attack="PGD()")


def test_no_labels_and_targeted() -> None:
    """Without labels robust_accuracy() raises; success rate is still there."""
    model, x, y = model_and_data()
    blind = FGSM().sweep(model, x, eps=[0.1, 0.3])
    with pytest.raises(ValueError, match="needs true labels"):
        blind.robust_accuracy()
    assert blind.success_rate() == [r.success_rate() for r in blind]
    assert blind.to_dict()["robust_accuracy"] is None
    assert "success_rate=" in repr(blind) and "robust_accuracy" not in repr(blind)
    assert [row["robust_accuracy"] for row in blind.table().to_dicts()] == [None, None]
    aimed = FGSM().sweep(model, x, y, target=(y + 1) % 3, eps=[0.1, 0.3])
    assert aimed.targeted and "success_rate=" in repr(aimed)


# ---------------------------------------------------------------------- views
def test_table_one_row_per_eps(curve: Curve) -> None:
    """The table has a row per budget whose cells equal the per-result figures."""
    t = curve.table()
    assert isinstance(t, ResultTable)
    assert t.columns == ("eps", "robust_accuracy", "success_rate", "n",
                         "median_norm_successful", "queries_mean", "time_s")
    rows = t.to_dicts()
    assert len(rows) == 4
    for row, r in zip(rows, curve, strict=True):
        assert row["eps"] == r.eps
        assert row["robust_accuracy"] == r.robust_accuracy()
        assert row["success_rate"] == r.success_rate()
        assert row["n"] == 30
        assert row["queries_mean"] == r.queries.double().mean().item()
        succ = r.success & r.clean_correct  # fooled samples, not those already wrong
        if bool(succ.any()):
            med = r.perturbation_norm[succ].median().item()
            assert row["median_norm_successful"] == pytest.approx(med, rel=1e-6)
        else:
            assert row["median_norm_successful"] is None
    # At eps 0 the only "successes" are the 3 clean errors, left at x: they are not
    # fooled samples, so there is no median norm to report.
    assert int(curve[0].success.sum()) == 3 and rows[0]["median_norm_successful"] is None
    text = str(t).splitlines()
    assert len(text) == 5 and text[0].split()[:2] == ["eps", "robust_accuracy"]


def test_to_dict_is_strict_json(curve: Curve) -> None:
    """to_dict() is strict JSON with the schema, the curve and per-eps summaries."""
    rec = json.loads(json.dumps(curve.to_dict(), allow_nan=False))
    assert rec["schema"] == CURVE_SCHEMA_VERSION == "hoodwink.curve/1"
    assert rec["eps"] == BUDGETS
    assert rec["robust_accuracy"] == curve.robust_accuracy()
    assert rec["success_rate"] == curve.success_rate()
    assert [s["eps"] for s in rec["results"]] == BUDGETS
    assert rec["results"][2] == curve[2].summary()
    assert rec["norm"] == "linf" and rec["targeted"] is False
    assert "torch" in rec["environment"]


@pytest.mark.parametrize("kind", ["linf", "l2", "no-labels"])
def test_plot_is_png(kind: str) -> None:
    """plot() returns PNG bytes of a real image."""
    model, x, y = model_and_data()
    if kind == "l2":
        c = FGSM(norm="l2").sweep(model, x, y, eps=[0.5, 1.0, 2.0])
    elif kind == "no-labels":
        c = FGSM().sweep(model, x, eps=[1 / 255, 8 / 255])
    else:
        c = FGSM().sweep(model, x, y, eps=[1 / 255, 2 / 255, 4 / 255, 8 / 255])
    png = c.plot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (550, 360)


def test_plot_leaves_pyplot_alone() -> None:
    """plot() does not open pyplot figures (no global state)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    model, x, y = model_and_data()
    FGSM().sweep(model, x, y, eps=[0.1]).plot()
    assert plt.get_fignums() == before


# ---------------------------------------------------------------------- progress
def test_sweep_progress_covers_the_whole_sweep() -> None:
    """One bar: a fixed total, done never goes back, ends at total, messages name the eps."""
    model, x, y = model_and_data()
    seen: list[tuple[int, int, str]] = []
    c = PGD(steps=4).sweep(model, x, y, eps=[0.05, 0.1, 0.2],
                           progress=lambda d, t, m: seen.append((d, t, m)))
    assert {t for _, t, _ in seen} == {300}
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == 300
    assert any(m.startswith("eps 0.05") for _, _, m in seen)
    assert seen[-1][2].startswith("eps 0.2")
    # The progress callback changes nothing in the results.
    plain = PGD(steps=4).sweep(model, x, y, eps=[0.05, 0.1, 0.2])
    for a, b in zip(c, plain, strict=True):
        assert torch.equal(a.x_adv, b.x_adv)


def test_sweep_rejects_non_callable_progress() -> None:
    """progress= must be callable: ConfigError naming it."""
    model, x, y = model_and_data()
    bad: Any = "yes"
    with pytest.raises(ConfigError, match="'progress'"):
        FGSM().sweep(model, x, y, eps=[0.1], progress=bad)


# ---------------------------------------------------------------------- save / load
def test_save_load_round_trip(curve: Curve, tmp_path: Path) -> None:
    """Curve.load(curve.save(p)) equals the curve, result by result, exactly."""
    path = curve.save(tmp_path / "curve")
    assert path == tmp_path / "curve.json"
    assert (tmp_path / "curve.safetensors").is_file()
    back = Curve.load(path)
    assert back.eps == curve.eps and back.norm == curve.norm and back.attack == curve.attack
    assert len(back) == len(curve)
    for a, b in zip(curve, back, strict=True):
        assert_same(a, b)
    assert back.to_dict()["results"] == curve.to_dict()["results"]


def test_save_load_targeted_float64(tmp_path: Path) -> None:
    """A targeted sweep on float64 inputs round-trips, target and dtype included."""
    torch.manual_seed(0)
    model = TorchClassifier(nn.Linear(8, 3).double().eval())
    x = torch.rand(6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = (model.predict(x) + 1) % 3
    c = PGD(norm="l1", steps=3).sweep(model, x, target=t, eps=[0.5, 1.0])
    back = Curve.load(c.save(tmp_path / "c.json"))
    for a, b in zip(c, back, strict=True):
        assert b.x_adv.dtype == torch.float64 and b.y is None and b.target is not None
        assert_same(a, b)


def test_load_errors(curve: Curve, tmp_path: Path) -> None:
    """Wrong kind of record, tampered tensors, missing file: InputError each."""
    curve.save(tmp_path / "c.json")
    curve[0].save(tmp_path / "r.json")
    with pytest.raises(InputError, match="not a saved Curve"):
        Curve.load(tmp_path / "r.json")
    with pytest.raises(InputError, match="not a saved AttackResult"):
        AttackResult.load(tmp_path / "c.json")
    with pytest.raises(InputError, match="does not exist"):
        Curve.load(tmp_path / "missing.json")
    (tmp_path / "r.safetensors").replace(tmp_path / "c.safetensors")
    with pytest.raises(InputError, match="sha256"):
        Curve.load(tmp_path / "c.json")

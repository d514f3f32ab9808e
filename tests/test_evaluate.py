"""hoodwink.evaluate: the cascade, exact curves on linear models, the record, the CLI.

Linear models have closed-form answers: the smallest L∞ perturbation that moves
x from class y to class j is (l_y - l_j) / ||w_y - w_j||_1 (with bounds far
away), so the robust accuracy at every eps is known exactly.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import typer
from torch import nn
from typer.testing import CliRunner

from hoodwink import PGD, TorchClassifier
from hoodwink.attacks.base import Attack, AttackInputs
from hoodwink.errors import CapabilityError, ConfigError, InputError, ShapeError
from hoodwink.evaluation import FLAGS, SCHEMA, STANDARD, Evaluation, evaluate, standard_attacks
from hoodwink.evaluation.record import example_record

# ---------------------------------------------------------------------------- helpers
D, C = 20, 4


class Linear(nn.Module):
    """A seeded linear classifier, optionally scaled (saturated) or ending in a softmax."""

    def __init__(self, scale: float = 1.0, softmax: bool = False, noise: float = 0.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(D, C)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(C, D, generator=g) * 0.3)
            self.fc.bias.copy_(torch.randn(C, generator=g) * 0.1)
        self.scale, self.softmax, self.noise = scale, softmax, noise
        self.rows = 0  # forward rows seen: the counting model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        out = self.fc(x.flatten(1)) * self.scale
        if self.noise:
            out = out + self.noise * torch.randn_like(out)
        return out.softmax(dim=1) if self.softmax else out


def linear_model(**kw: Any) -> TorchClassifier:
    """A linear model without levels and with bounds far from the data."""
    return TorchClassifier(Linear(**kw).eval(), bounds=(-10, 10), num_classes=C)


def linear_data(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n inputs in [-1, 1]^D and the clean model's labels (a few flipped: misclassified)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g) * 2 - 1
    y = linear_model().predict(x)
    y[::17] = (y[::17] + 1) % C
    return x, y


def exact_linf(model: TorchClassifier, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Closed-form minimal L∞ distance to another class (0 where already misclassified)."""
    fc = model.module.fc  # type: ignore[union-attr]
    w, b = fc.weight.detach().double(), fc.bias.detach().double()
    logits = x.double() @ w.T + b
    out = np.zeros(len(x))
    for i in range(len(x)):
        yi = int(y[i])
        if int(logits[i].argmax()) != yi:
            continue
        out[i] = min(float((logits[i, yi] - logits[i, j]) / (w[yi] - w[j]).abs().sum())
                     for j in range(C) if j != yi)
    return out


def figures(ev: Evaluation) -> dict[str, Any]:
    """The record without what legitimately changes between runs (times, date)."""
    d = ev.to_dict()
    for k in ("created", "timings", "environment"):
        d.pop(k)
    d["summary"].pop("time_s")
    for a in d["attacks"]:
        a.pop("time_s")
    return d


@dataclass(frozen=True, kw_only=True)
class ExactLinf(Attack):
    """Test stand-in for a minimum-norm attack: the exact L∞ answer for :class:`Linear`.

    Steps 0.1% past the nearest boundary; reports that norm. The network is
    read from the model the attack is given.
    """

    threat: ClassVar[Any] = "white-box"
    minimum_norm: ClassVar[bool] = True
    supported_norms: ClassVar[tuple[str, ...]] = ("linf",)
    supports_targeted: ClassVar[bool] = False
    net: Any = field(default=None, compare=False, repr=False)

    def _run(self, model: Any, inputs: AttackInputs) -> torch.Tensor:
        fc = self.net.fc
        w, b = fc.weight.detach().to(inputs.x.dtype), fc.bias.detach().to(inputs.x.dtype)
        x, y = inputs.x, inputs.labels
        logits = x @ w.T + b
        best_t = torch.full((len(x),), math.inf, dtype=x.dtype)
        best_dir = torch.zeros_like(x)
        for j in range(C):
            dw = w[y] - w[j]  # (N, D)
            t = (logits.gather(1, y[:, None])[:, 0] - logits[:, j]) / dw.abs().sum(1)
            t = torch.where(y == j, torch.full_like(t, math.inf), t)
            better = t < best_t
            best_t = torch.where(better, t, best_t)
            best_dir = torch.where(better[:, None], -dw.sign(), best_dir)
        step = torch.where(torch.isfinite(best_t), best_t * 1.001, torch.zeros_like(best_t))
        return x + step[:, None] * best_dir


#: (eps, sample rows, success) of every call of :class:`RecordingPGD`, in order.
CALLS: list[tuple[float, torch.Tensor, torch.Tensor]] = []


@dataclass(frozen=True, kw_only=True)
class RecordingPGD(PGD):
    """PGD that logs which inputs it was asked to attack, at which eps."""

    def __call__(self, model: Any, x: Any, y: Any = None, *, target: Any = None, eps: float,
                 progress: Any = None) -> Any:
        res = super().__call__(model, x, y, target=target, eps=eps, progress=progress)
        CALLS.append((eps, x.clone(), res.success.clone()))
        return res


def _logits_fn(a: np.ndarray) -> np.ndarray:
    return linear_model().logits(torch.from_numpy(a).float()).numpy()


def _labels_fn(a: np.ndarray) -> np.ndarray:
    return linear_model().predict(torch.from_numpy(a).float()).numpy()


def _rows_to_index(x_all: torch.Tensor, rows: torch.Tensor) -> list[int]:
    out = []
    for r in rows:
        hit = (x_all == r).all(dim=1).nonzero()
        assert hit.numel() == 1
        out.append(int(hit[0, 0]))
    return out


# ---------------------------------------------------------------------------- closed form
def test_closed_form_curve_with_exact_minimum_norm() -> None:
    """Minimal norms within 0.1% of the closed form give the exact dense curve."""
    model = linear_model()
    x, y = linear_data(120)
    d = exact_linf(model, x, y)
    cc = d > 0
    grid = [0.01, 0.03, 0.06, 0.1, 0.2]
    ev = evaluate(model, x, y, eps=grid, attacks=[ExactLinf(net=model.module)], checks=False)
    mn = np.array(ev.min_norms)
    np.testing.assert_allclose(mn[cc], d[cc] * 1.001, rtol=1e-5, atol=1e-7)
    assert ev.totals["clean_correct"] == int(cc.sum()) == 120 - len(range(0, 120, 17))
    for r in ev.totals["robust"]:
        assert r["robust"] == int((cc & (d * 1.001 > r["eps"])).sum())
        assert r["robust_accuracy"] == r["robust"] / 120
    # The dense curve: 0, every distinct minimal norm and every grid eps, exact counts.
    eps_points = [p["eps"] for p in ev.curve]
    assert eps_points == sorted({0.0, *mn[cc].tolist(), *grid})
    for p in ev.curve:
        assert p["robust_accuracy"] == int((cc & (mn > p["eps"])).sum()) / 120
    assert ev.curve[0]["robust_accuracy"] == ev.clean_accuracy
    assert ev.curve[-1]["robust_accuracy"] == 0.0
    # min norm stage row: every clean-correct sample attacked, broke = those <= max eps.
    (row,) = ev.attacks
    assert row["eps"] is None and row["attacked"] == int(cc.sum())
    assert row["broke"] == int((cc & (mn <= 0.2)).sum())
    assert row["robust_after"] == ev.totals["robust"][-1]["robust"]


def test_closed_form_curve_with_the_real_attacks() -> None:
    """fmn + apgd + apgd-t reproduce the closed-form robust accuracy at every grid eps."""
    model = linear_model()
    x, y = linear_data(200, seed=3)
    d = exact_linf(model, x, y)
    cc = d > 0
    grid = [0.02, 0.05, 0.08, 0.12, 0.2]
    ev = evaluate(model, x, y, eps=grid, attacks=["fmn", "apgd", "apgd-t"], checks=False)
    mn = np.array(ev.min_norms)
    # No attack can beat the exact minimum (float32 rounding aside).
    assert (mn[cc] >= d[cc] * (1 - 1e-4)).all()
    for r in ev.totals["robust"]:
        exact = int((cc & (d > r["eps"])).sum())
        near = bool((np.abs(d[cc] - r["eps"]) <= 0.01 * r["eps"]).any())
        assert abs(r["robust"] - exact) <= (2 if near else 0), (r, exact)


# ---------------------------------------------------------------------------- the cascade
def test_broken_samples_are_never_attacked_again() -> None:
    """A sample is attacked at eps only while unbroken there; every query is accounted for."""
    model = linear_model()
    x, y = linear_data(60)
    CALLS.clear()
    grid = [0.02, 0.05, 0.1, 0.3]
    net = model.module
    assert isinstance(net, Linear)
    net.rows = 0
    ev = evaluate(model, x, y, eps=grid, batch_size=7, checks=False,
                  attacks=[RecordingPGD(steps=20), ExactLinf(net=net)])
    # The minimum-norm stand-in ran first, although it was given second.
    assert [a["name"] for a in ev.config["attacks"]] == ["exactlinf", "recordingpgd"]
    d = exact_linf(model, x, y)
    # Before PGD, each clean-correct sample's minimal norm is the stand-in's.
    broken = {i: d[i] * 1.001 for i in range(60) if ev.samples[i]["clean_correct"]}
    seen: set[tuple[float, int]] = set()
    for e in grid:
        due = {i for i, m in broken.items() if m > e}
        calls = [(rows, success) for (eps, rows, success) in CALLS if eps == e]
        attacked = set()
        for rows, success in calls:
            assert len(rows) <= 7
            for k, i in enumerate(_rows_to_index(x, rows)):
                assert broken[i] > e, f"sample {i} attacked at eps {e} though broken"
                assert (e, i) not in seen
                seen.add((e, i))
                attacked.add(i)
                if bool(success[k]):
                    broken[i] = min(broken[i], e)
        assert attacked == due  # exactly the samples still robust at e, each once
    assert len(seen) == sum(len(r) for _, r, _ in CALLS)
    # The counting model: the clean pass plus every query every unit reported, nothing else.
    assert net.rows == 60 + sum(a["queries"] for a in ev.attacks)
    assert sum(s["queries"] for s in ev.samples) == sum(a["queries"] for a in ev.attacks)


def test_stage_rows_add_up() -> None:
    model = linear_model()
    x, y = linear_data(50)
    grid = [0.03, 0.1]
    ev = evaluate(model, x, y, eps=grid, attacks=["pgd", "fgsm"], checks=False)
    assert [(a["name"], a["eps"]) for a in ev.attacks] == [
        ("pgd", 0.03), ("fgsm", 0.03), ("pgd", 0.1), ("fgsm", 0.1)]
    cc = ev.totals["clean_correct"]
    by_eps: dict[float, list[dict[str, Any]]] = {}
    for a in ev.attacks:
        by_eps.setdefault(a["eps"], []).append(a)
    for e, rows in by_eps.items():
        robust = next(r["robust"] for r in ev.totals["robust"] if r["eps"] == e)
        assert rows[-1]["robust_after"] == robust
        for prev, nxt in zip(rows, rows[1:], strict=False):
            assert nxt["attacked"] == prev["robust_after"]
        assert rows[0]["attacked"] - sum(r["broke"] for r in rows) == robust
    assert by_eps[0.03][0]["attacked"] == cc
    assert by_eps[0.1][0]["attacked"] == by_eps[0.03][-1]["robust_after"]
    for s in ev.samples:
        assert s["robust"] == [bool(s["clean_correct"] and (s["min_norm"] is None
                                                          or s["min_norm"] > e)) for e in grid]


def test_same_seed_same_numbers_other_seed_other_unit_seeds() -> None:
    model = linear_model()
    x, y = linear_data(40)
    kw: dict[str, Any] = {"eps": [0.05, 0.1], "attacks": ["pgd"], "checks": False}
    a, b = evaluate(model, x, y, seed=4, **kw), evaluate(model, x, y, seed=4, **kw)
    assert figures(a) == figures(b)
    assert torch.equal(a.x_adv_examples, b.x_adv_examples)  # type: ignore[arg-type]
    c = evaluate(model, x, y, seed=5, **kw)
    assert c.config["seed"] == 5


def test_numpy_inputs_and_single_eps() -> None:
    model = linear_model()
    x, y = linear_data(30)
    ev = evaluate(model, x.numpy(), y.numpy(), eps=0.05, attacks=["pgd"], checks=False)
    assert ev.eps == [0.05] and len(ev.totals["robust"]) == 1
    assert ev.robust_accuracy == ev.totals["robust"][0]["robust_accuracy"]


def test_model_is_left_as_it_was() -> None:
    net = Linear().train()
    model = TorchClassifier(net, bounds=(-10, 10), num_classes=C)
    x, y = linear_data(20)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(model, x, y, eps=0.05, attacks=["pgd"])
    assert net.training
    assert all(p.requires_grad for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_examples_prefer_broken_samples() -> None:
    model = linear_model()
    x, y = linear_data(30)
    ev = evaluate(model, x, y, eps=[0.05, 0.5], attacks=["pgd"], checks=False, examples=3)
    assert len(ev.examples) == 3
    assert all(ev.samples[i]["min_norm"] is not None and ev.samples[i]["clean_correct"]
               for i in ev.examples)
    assert ev.x_examples is not None and ev.x_adv_examples is not None
    assert torch.equal(ev.x_examples, x[ev.examples])
    for k, i in enumerate(ev.examples):
        delta = (ev.x_adv_examples[k] - x[i]).abs().max().item()
        assert delta == pytest.approx(ev.samples[i]["min_norm"], rel=1e-5)
        assert int(model.predict(ev.x_adv_examples[k:k + 1])) == ev.samples[i]["pred_adv"]
    assert evaluate(model, x, y, eps=0.05, attacks=["pgd"], checks=False,
                    examples=0).examples == []


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"eps": -0.1}, ConfigError, "'eps'"),
    ({"eps": []}, ConfigError, "'eps'"),
    ({"eps": [0.1, float("nan")]}, ConfigError, "'eps[1]'"),
    ({"norm": "l3"}, ConfigError, "'norm'"),
    ({"attacks": "strongest"}, ConfigError, "'attacks'"),
    ({"attacks": []}, ConfigError, "'attacks'"),
    ({"attacks": ["nope"]}, ConfigError, "Unknown attack 'nope'"),
    ({"attacks": [PGD(norm="l2")]}, ConfigError, "norm='linf'"),
    ({"attacks": [3]}, ConfigError, "'attacks[0]'"),
    ({"batch_size": 0}, ConfigError, "'batch_size'"),
    ({"seed": -1}, ConfigError, "'seed'"),
    ({"max_queries": 1}, ConfigError, "'max_queries'"),
    ({"checks": "yes"}, ConfigError, "'checks'"),
    ({"examples": -1}, ConfigError, "'examples'"),
    ({"store": 3}, ConfigError, "'store'"),
])
def test_invalid_parameters_are_refused(kwargs: dict[str, Any], error: type[Exception],
                                        words: str) -> None:
    model = linear_model()
    x, y = linear_data(5)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        evaluate(model, x, y, **{"attacks": ["pgd"], **kwargs})


def test_invalid_inputs_are_refused() -> None:
    model = linear_model()
    x, y = linear_data(5)
    with pytest.raises(ShapeError, match="one label per input"):
        evaluate(model, x, y[:3], attacks=["pgd"])
    with pytest.raises(InputError, match="integer class labels"):
        evaluate(model, x, y.float(), attacks=["pgd"])
    with pytest.raises(ShapeError, match="float inputs"):
        evaluate(model, (x * 100).to(torch.uint8), y, attacks=["pgd"])
    with pytest.raises(InputError, match="label 7, outside the model's classes 0..3"):
        evaluate(model, x, torch.tensor([0, 1, 7, 2, 3]), attacks=["pgd"])
    with pytest.raises(ConfigError, match="'model'"):
        evaluate(TorchClassifier, x, y)  # type: ignore[arg-type]


def test_attacks_the_model_cannot_run_are_refused() -> None:
    from hoodwink import CallableClassifier

    labels_only = CallableClassifier(_labels_fn, output="labels", num_classes=C,
                                     bounds=(-10, 10))
    x, y = linear_data(5)
    with pytest.raises(CapabilityError, match="white-box"):
        evaluate(labels_only, x, y, attacks=["pgd"])
    with pytest.raises(CapabilityError, match="scores"):
        evaluate(labels_only, x, y, attacks=["square"])


# ---------------------------------------------------------------------------- standard
def test_standard_attacks_per_norm() -> None:
    got = standard_attacks("linf", max_queries=123, seed=2)
    assert [n for n, _ in got] == list(STANDARD["linf"]) == ["fmn", "apgd", "apgd-t", "square"]
    attacks = dict(got)
    assert attacks["fmn"].minimum_norm and not attacks["apgd"].minimum_norm
    assert attacks["apgd"].loss == "ce"  # type: ignore[attr-defined]
    assert attacks["apgd-t"].target_classes == 9  # type: ignore[attr-defined]
    assert attacks["square"].max_queries == 123  # type: ignore[attr-defined]
    assert all(a.norm == "linf" and a.seed == 2 for _, a in got)
    l1 = dict(standard_attacks("l1"))
    assert list(l1) == ["fmn", "pgd"] and l1["pgd"].steps == 100  # type: ignore[attr-defined]
    assert l1["pgd"].norm == "l1"


def test_standard_attacks_fit_the_model() -> None:
    from hoodwink import CallableClassifier

    scores = CallableClassifier(_logits_fn, output="logits", num_classes=C, bounds=(-10, 10))
    assert [n for n, _ in standard_attacks("l2", model=scores)] == ["square"]
    labels = CallableClassifier(_labels_fn, output="labels", num_classes=C, bounds=(-10, 10))
    assert [n for n, _ in standard_attacks("linf", model=labels)] == ["hopskipjump"]
    with pytest.raises(CapabilityError, match="No standard l1 attack"):
        standard_attacks("l1", model=labels)


def test_standard_evaluation_runs_min_norm_first_then_cascades() -> None:
    model = linear_model()
    x, y = linear_data(24)
    ev = evaluate(model, x, y, eps=[0.05, 0.1], max_queries=200)
    assert [(a["name"], a["eps"]) for a in ev.attacks] == [
        ("fmn", None), ("apgd", 0.05), ("apgd-t", 0.05), ("square", 0.05),
        ("apgd", 0.1), ("apgd-t", 0.1), ("square", 0.1)]
    assert ev.attacks[0]["attacked"] == ev.totals["clean_correct"]
    # square never exceeds its query budget on any sample of a stage.
    sq = [a for a in ev.attacks if a["name"] == "square"]
    assert all(a["queries"] <= 200 * a["attacked"] for a in sq)
    assert ev.flags == []


# ---------------------------------------------------------------------------- the record
def test_record_round_trips_exactly(tmp_path: Any) -> None:
    model = linear_model()
    x, y = linear_data(30)
    ev = evaluate(model, x, y, eps=[0.05, 0.1], attacks=["pgd"], examples=4)
    d = ev.to_dict()
    assert d["schema"] == SCHEMA == "hoodwink.evaluation/1"
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert Evaluation.from_dict(d).to_dict() == d
    path = ev.save(tmp_path / "out" / "report.json")
    assert path == tmp_path / "out" / "report.json"
    assert (tmp_path / "out" / "report.safetensors").is_file()
    back = Evaluation.load(path)
    assert back == ev
    t = back.tensors()
    assert t is not None and t["index"].tolist() == ev.examples
    assert torch.equal(t["x"], x[ev.examples])
    # The JSON alone still loads (without example tensors).
    (tmp_path / "out" / "report.safetensors").unlink()
    alone = Evaluation.load(path)
    assert alone.x_examples is None and alone.tensors() is None
    assert alone.to_dict() == d
    # The contract's keys, types and invariants.
    assert set(d) == {"schema", "created", "hoodwink_version", "environment", "model", "data",
                      "config", "summary", "curve", "attacks", "flags", "samples", "examples",
                      "timings"}
    assert d["model"] == {"name": "Linear", "num_classes": C, "input_shape": [D],
                          "bounds": [-10.0, 10.0], "levels": None, "output": "logits",
                          "class_names": None}
    assert d["config"]["attacks"][0]["name"] == "pgd"
    assert d["config"]["attacks"][0]["threat"] == "white-box"
    assert len(d["samples"]) == d["data"]["n"] == 30
    lo, hi = d["summary"]["robust"][0]["ci95"]
    assert lo <= d["summary"]["robust"][0]["robust_accuracy"] <= hi


def test_from_dict_refuses_wrong_records() -> None:
    rec = example_record()
    with pytest.raises(InputError, match="not a hoodwink evaluation record"):
        Evaluation.from_dict({**rec, "schema": "hoodwink.attack_result/2"})
    with pytest.raises(InputError, match="newer hoodwink"):
        Evaluation.from_dict({**rec, "schema": "hoodwink.evaluation/2"})
    broken = dict(rec)
    del broken["samples"]
    with pytest.raises(InputError, match="no 'samples' entry"):
        Evaluation.from_dict(broken)
    with pytest.raises(InputError, match="'curve' entry .* must be a JSON array"):
        Evaluation.from_dict({**rec, "curve": {}})
    with pytest.raises(InputError, match="must be a dict"):
        Evaluation.from_dict([rec])


def test_load_refuses_missing_or_foreign_files(tmp_path: Any) -> None:
    with pytest.raises(InputError, match="does not exist"):
        Evaluation.load(tmp_path / "nothing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON file"):
        Evaluation.load(bad)


def test_summary_text_and_flag_registry() -> None:
    ev = Evaluation.from_dict(example_record())
    text = ev.summary()
    assert "robust_accuracy" in text and "0.5" in text and "no flags raised" in text
    assert ev.robust_accuracy_at(0.04) == 1.0 and ev.robust_accuracy_at(0.05) == 0.5
    assert set(FLAGS) == {"probability-outputs", "randomised-model", "zero-gradients",
                          "blackbox-beats-whitebox", "not-zero-at-huge-eps", "eps-too-large"}


# ---------------------------------------------------------------------------- CLI
NET_SRC = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(20, 4)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(4, 20, generator=g) * 0.3)
            self.fc.bias.copy_(torch.randn(4, generator=g) * 0.1)

    def forward(self, x):
        return self.fc(x.flatten(1))


def factory():
    return Net()
'''


def cli_files(folder: Any, n: int = 30) -> tuple[str, str]:
    """A model factory file and an .npz of inputs and labels for the CLI."""
    (folder / "linnet.py").write_text(NET_SRC)
    x, y = linear_data(n)
    np.savez(folder / "data.npz", x=x.numpy(), y=y.numpy())
    return f"{folder / 'linnet.py'}:factory", str(folder / "data.npz")


def cli_app() -> typer.Typer:
    from hoodwink.cli.evaluate import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # a group, so that the command is named as in `hoodwink`
        pass

    return app


def test_cli_writes_the_record_and_prints_the_summary(tmp_path: Any) -> None:
    model, data = cli_files(tmp_path)
    out = tmp_path / "rep"
    args = ["evaluate", "--model", model, "--bounds=-10,10", "--data", data, "--eps",
            "1/40,0.1", "--attacks", "pgd,fgsm", "--report", str(out), "--n", "25"]
    res = CliRunner().invoke(cli_app(), args)
    assert res.exit_code == 0, res.output
    ev = Evaluation.load(out / "report.json")
    assert ev.eps == [0.025, 0.1] and ev.totals["n"] == 25
    assert (out / "run.sqlite").is_file()
    try:
        from hoodwink.evaluation import render  # another module: optional here
    except ImportError:
        render = None
    if render is not None:
        assert "robust" in (out / "report.md").read_text(encoding="utf-8").lower()
        assert (out / "report.html").read_text(encoding="utf-8").lstrip().startswith("<")
    assert "robust" in res.output and "pgd" in res.output and "no flags raised" in res.output
    # The same run again: read back from the store, same numbers.
    res2 = CliRunner().invoke(cli_app(), args + ["--json"])
    assert res2.exit_code == 0, res2.output
    summary = json.loads(res2.output[res2.output.index("{"):])
    assert summary["summary"]["robust"] == ev.totals["robust"]
    assert summary["flags"] == []


def test_cli_refuses_another_configuration_in_the_store(tmp_path: Any) -> None:
    model, data = cli_files(tmp_path)
    base = ["evaluate", "--model", model, "--bounds=-10,10", "--data", data, "--attacks",
            "fgsm", "--report", str(tmp_path / "rep")]
    assert CliRunner().invoke(cli_app(), base + ["--eps", "0.1"]).exit_code == 0
    res = CliRunner().invoke(cli_app(), base + ["--eps", "0.2", "--seed", "3"])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "eps (stored [0.1], now [0.2])" in text and "seed (stored 0, now 3)" in text
    assert "--store" in text


def test_cli_exit_code_3_when_flags_are_raised(tmp_path: Any) -> None:
    model, data = cli_files(tmp_path)
    res = CliRunner().invoke(cli_app(), [
        "evaluate", "--model", model, "--bounds=-10,10", "--data", data, "--eps", "7",
        "--attacks", "fgsm", "--report", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 3, res.output
    flags = json.loads(res.output[res.output.index("{"):])["flags"]
    assert [f["code"] for f in flags] == ["eps-too-large"]


@pytest.mark.slow
def test_docs_mnist_cnn_example_numbers() -> None:
    """The mnist-cnn example of docs/evaluate.md (n=100, standard, L∞ 0.1, 0.2, 0.3)."""
    from hoodwink import zoo
    from hoodwink.data.mnist import load_mnist

    x, y = load_mnist("test")
    ev = evaluate(zoo.load("mnist-cnn"), x[:100], y[:100], eps=[0.1, 0.2, 0.3])
    assert ev.totals["clean_correct"] == 99
    assert [r["robust"] for r in ev.totals["robust"]] == [63, 0, 0]
    assert [(a["name"], a["broke"]) for a in ev.attacks[:4]] == [
        ("fmn", 99), ("apgd", 2), ("apgd-t", 2), ("square", 0)]
    assert ev.attacks[3]["probe"]["went_on"] is False
    assert round(ev.totals["median_min_norm"], 3) == 0.114
    assert ev.flags == []


# ---------------------------------------------------------------------------- probes
def test_blackbox_probe_stops_where_gradients_are_sound() -> None:
    """After white-box attacks that break all they can, Square spends only its probe."""
    x, y = linear_data(40)
    ev = evaluate(linear_model(), x, y, eps=[0.05, 0.1], max_queries=300, probe_queries=40)
    sq = [a for a in ev.attacks if a["name"] == "square"]
    assert len(sq) == 2
    for a in sq:
        assert a["probe"]["broke"] == 0 and a["probe"]["went_on"] is False
        assert a["probe"]["why"] == [] and "max_queries=40" in a["probe"]["attack"]
        assert a["queries"] <= 40 * a["attacked"]
    assert ev.config["probe_queries"] == 40 and ev.config["probe_targets"] == 3
    # The same numbers as a run that spends the whole budget.
    full = evaluate(linear_model(), x, y, eps=[0.05, 0.1], max_queries=300, probe_queries=None)
    assert all("probe" not in a for a in full.attacks if a["name"] == "square")
    assert [r["robust"] for r in ev.totals["robust"]] == \
        [r["robust"] for r in full.totals["robust"]]


def test_blackbox_probe_goes_on_with_checks_off_and_never_exceeds_the_budget() -> None:
    x, y = linear_data(40)
    ev = evaluate(linear_model(), x, y, eps=0.1, max_queries=300, probe_queries=40,
                  checks=False)
    sq = next(a for a in ev.attacks if a["name"] == "square")
    assert sq["probe"]["went_on"] is True and sq["probe"]["why"] == ["checks off"]
    # probe + rest: never more than max_queries per sample (the rest gets 300 - 40).
    assert sq["queries"] > 40 * sq["attacked"]
    assert sq["queries"] <= 300 * sq["attacked"]


def test_blackbox_probe_goes_on_when_gradients_are_masked() -> None:
    x, y = linear_data(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(linear_model(scale=1e4), x, y, eps=0.1, attacks=["apgd", "square"],
                      max_queries=300, probe_queries=40)
    sq = next(a for a in ev.attacks if a["name"] == "square")
    assert sq["probe"]["went_on"] is True
    assert "zero-gradients" in sq["probe"]["why"]


class TenClass(nn.Module):
    """A seeded 10-class linear model on D features."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.fc = nn.Linear(D, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(10, D, generator=g) * 0.3)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_apgd_t_probe_attacks_the_likeliest_classes_first() -> None:
    model = TorchClassifier(TenClass().eval(), bounds=(-10, 10))
    x = torch.rand(30, D, generator=torch.Generator().manual_seed(4)) * 2 - 1
    y = model.predict(x)
    # Half the smallest closed-form L∞ distance to any other class: nothing can break.
    w, logits = model.module.fc.weight.detach(), model.logits(x).detach()
    gap = logits.gather(1, y[:, None]) - logits
    l1 = (w[y][:, None, :] - w[None]).abs().sum(-1)
    eps = 0.5 * float((gap / l1).masked_fill(gap == 0, math.inf).min())
    ev = evaluate(model, x, y, eps=eps, attacks=["apgd-t"], probe_targets=2)
    row = ev.attacks[0]
    assert "target_classes=2" in row["probe"]["attack"]
    # No gradient flag, so the other 7 classes were never attacked.
    assert row["broke"] == 0 and row["probe"]["went_on"] is False
    assert row["queries"] <= 30 * (2 * 2 * 101 + 2)  # 2 classes x 2 starts, + 2 passes
    whole = evaluate(model, x, y, eps=eps, attacks=["apgd-t"], probe_targets=None)
    assert whole.attacks[0]["queries"] > row["queries"]


def test_apgd_skip_targets_attacks_only_the_later_ranks() -> None:
    from hoodwink.attacks.apgd import APGD

    model = TorchClassifier(TenClass().eval(), bounds=(-10, 10))
    x = torch.rand(6, D, generator=torch.Generator().manual_seed(5)) * 2 - 1
    y = model.predict(x)
    # 9 targets, skipping 8: one run of 6 steps per sample, plus the clean and checking passes.
    res = APGD(steps=5, loss="dlr", target_classes=9, skip_targets=8)(model, x, y, eps=1e-4)
    assert res.queries.tolist() == [6 + 2] * 6
    with pytest.raises(ConfigError, match="skip_targets"):
        APGD(target_classes=3, skip_targets=3)


def test_one_grid_level_first_then_minimum_norm_on_the_rest() -> None:
    """At eps = one 8-bit level the fixed attacks run first; what they break has norm 1/255."""
    model = TorchClassifier(TenClass().eval(), bounds=(-1, 1), levels=256)
    g = torch.Generator().manual_seed(6)
    step = 2 / 255
    x = torch.randint(0, 256, (200, D), generator=g).double() * step - 1
    x = x.float()
    y = model.predict(x)
    ev = evaluate(model, x, y, eps=[step, 0.05], max_queries=50)
    names = [(a["name"], a["eps"]) for a in ev.attacks]
    assert names == [("apgd", step), ("apgd-t", step), ("square", step), ("fmn", None),
                     ("apgd", 0.05), ("apgd-t", 0.05), ("square", 0.05)]
    broken_first = sum(a["broke"] for a in ev.attacks[:3])
    assert broken_first >= 1
    cc = ev.totals["clean_correct"]
    assert ev.attacks[3]["attacked"] == cc - broken_first
    one = [s for s in ev.samples if s["clean_correct"] and s["min_norm"] is not None
           and s["min_norm"] <= step]
    assert len(one) == broken_first
    assert all(abs(s["min_norm"] - step) < 1e-6 for s in one)
    # No grid point is closer than one level: the linear model's exact distances agree.
    w, logits = model.module.fc.weight.detach(), model.logits(x).detach()
    gap = logits.gather(1, y[:, None]) - logits
    l1 = (w[y][:, None, :] - w[None]).abs().sum(-1)
    exact = (gap / l1).masked_fill(gap == 0, math.inf).amin(1)
    for s in one:
        assert exact[s["index"]] <= step + 1e-6

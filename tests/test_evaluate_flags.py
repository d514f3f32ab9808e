"""The sanity flags of hoodwink.evaluate: they fire on masked models and stay silent otherwise."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import CallableClassifier, TorchClassifier
from hoodwink.evaluation import FLAGS, evaluate
from hoodwink.evaluation import flags as F
from test_evaluate import C, D, Linear, linear_data, linear_model

DOCS = Path(__file__).resolve().parents[1] / "docs" / "evaluate.md"


def codes(ev: Any) -> list[str]:
    return [f["code"] for f in ev.flags]


def quiet_evaluate(*args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        # A random model makes the attacks warn (StochasticModelWarning); the flag says it.
        warnings.simplefilter("ignore")
        return evaluate(*args, **kwargs)


# ---------------------------------------------------------------------------- whole runs
def test_silent_on_an_ordinary_linear_model() -> None:
    x, y = linear_data(60)
    ev = evaluate(linear_model(), x, y, eps=[0.05, 0.1], max_queries=300)
    assert ev.flags == []
    assert ev.config["checks"] is True


def test_saturated_logits_fire_the_masking_flags() -> None:
    model = linear_model(scale=1e4)
    x, y = linear_data(60)
    ev = quiet_evaluate(model, x, y, eps=[0.05, 0.1], attacks=["apgd", "square"],
                        max_queries=300)
    assert codes(ev) == ["zero-gradients", "not-zero-at-huge-eps", "blackbox-beats-whitebox"]
    flags = {f["code"]: f for f in ev.flags}
    # Every clean-correct sample's CE gradient is exactly zero: count it independently.
    cc = [i for i, s in enumerate(ev.samples) if s["clean_correct"]]
    _, _, g = model.loss_gradient(x[cc], y[cc], loss="ce")
    zero = int((g.abs().flatten(1).amax(1) <= 1e-12).sum())
    assert flags["zero-gradients"]["evidence"] == {
        "checked": len(cc), "zero": zero, "fraction": round(zero / len(cc), 6),
        "threshold": 1e-12}
    assert zero >= 0.9 * len(cc)
    huge = flags["not-zero-at-huge-eps"]["evidence"]
    assert huge["eps"] == 10.0 and huge["checked"] == 32 and huge["robust"] > 0
    # Samples APGD already broke in the cascade are broken at eps 10: not attacked again.
    assert huge["attacked"] + huge["already_broken"] == 32
    apgd_broke = sum(a["broke"] for a in ev.attacks if a["name"] == "apgd")
    assert 0 < huge["already_broken"] <= apgd_broke
    bb = flags["blackbox-beats-whitebox"]["evidence"]["stages"][0]
    stage = next(a for a in ev.attacks if a["name"] == "square" and a["eps"] == bb["eps"])
    assert bb == {"eps": stage["eps"], "attack": "square", "broke": stage["broke"],
                  "attacked": stage["attacked"]}
    assert bb["broke"] > max(1, 0.02 * bb["attacked"])
    for f in ev.flags:
        assert f["severity"] == "error" and f["doc"] == f"docs/evaluate.md#{f['code']}"
        assert f["title"] == FLAGS[f["code"]].title


def test_cascade_still_gives_the_right_number_on_the_masked_model() -> None:
    """Square repairs what masking hides: the same robust counts as on the plain model."""
    x, y = linear_data(60)
    plain = evaluate(linear_model(), x, y, eps=[0.05, 0.1], attacks=["apgd", "square"],
                     max_queries=300, checks=False)
    masked = quiet_evaluate(linear_model(scale=1e4), x, y, eps=[0.05, 0.1],
                            attacks=["apgd", "square"], max_queries=300, checks=False)
    for a, b in zip(plain.totals["robust"], masked.totals["robust"], strict=True):
        assert abs(a["robust"] - b["robust"]) <= 2


def test_random_layer_fires_randomised_model() -> None:
    torch.manual_seed(0)  # the test model draws its noise from the global generator
    model = linear_model(noise=1.0)
    x, y = linear_data(60)
    ev = quiet_evaluate(model, x, y, eps=0.05, attacks=["apgd"])
    assert "randomised-model" in codes(ev)
    ev_flag = next(f for f in ev.flags if f["code"] == "randomised-model")
    # Compared on the clean-correct samples, whose gradient pass is the first pass.
    n_cc = sum(s["clean_correct"] for s in ev.samples)
    assert 0 < n_cc < 60 and ev_flag["evidence"]["compared"] == n_cc
    assert ev_flag["evidence"]["labels_differ"] > 0
    assert ev_flag["evidence"]["max_score_difference"] > 0.1


def test_softmax_output_fires_probability_outputs() -> None:
    model = linear_model(softmax=True)
    x, y = linear_data(60)
    ev = evaluate(model, x, y, eps=0.05, attacks=["apgd"])
    assert "probability-outputs" in codes(ev)
    ev_flag = next(f for f in ev.flags if f["code"] == "probability-outputs")
    e = ev_flag["evidence"]
    n_cc = sum(s["clean_correct"] for s in ev.samples)
    assert e["rows"] == n_cc and e["min_score"] >= 0 and e["max_row_sum_error"] <= 1e-4
    assert e["attacks"] == ["apgd"] and e["output"] == "logits"
    assert ev_flag["severity"] == "warning"


def test_eps_too_large_through_evaluate() -> None:
    x, y = linear_data(20)
    # Bounds (-10, 10): the L∞ diameter is 20, a third of it 6.67.
    ev = evaluate(linear_model(), x, y, eps=[1.0, 7.0], attacks=["fgsm"])
    assert codes(ev)[0] == "eps-too-large"
    assert ev.flags[0]["evidence"] == {"eps": [7.0], "diameter": 20.0,
                                       "limit": F.EPS_LIMIT * 20.0}
    assert "eps-too-large" not in codes(evaluate(linear_model(), x, y, eps=6.6,
                                                 attacks=["fgsm"]))


def test_no_checks_no_flags() -> None:
    x, y = linear_data(20)
    ev = evaluate(linear_model(scale=1e4), x, y, eps=7.0, attacks=["fgsm"], checks=False)
    assert ev.flags == [] and ev.timings["checks_s"] == 0.0


# ---------------------------------------------------------------------------- each check
def test_probability_outputs_declared_or_detected() -> None:
    x, _ = linear_data(10)
    probs = CallableClassifier(lambda a: np.full((len(a), C), 1 / C, dtype=np.float32),
                               output="probabilities", num_classes=C, bounds=(-10, 10))
    flag = F.probability_outputs(probs, x, ["square"])
    assert flag is not None and flag["evidence"]["output"] == "probabilities"
    assert flag["evidence"]["min_score"] == 0.25 and flag["evidence"]["rows"] == 10
    assert "declares output='probabilities'" in flag["message"]
    assert F.probability_outputs(probs, x, []) is None  # no logit loss runs
    assert F.probability_outputs(linear_model(), x, ["apgd"]) is None


def test_randomised_model_silent_when_deterministic() -> None:
    x, _ = linear_data(10)
    assert F.randomised_model(linear_model(), x) is None
    labels = CallableClassifier(lambda a: np.random.default_rng().integers(0, C, len(a)),
                                output="labels", num_classes=C, bounds=(-10, 10))
    flag = F.randomised_model(labels, torch.zeros(64, D))
    assert flag is not None and "max_score_difference" not in flag["evidence"]


class _PartlySaturated(nn.Module):
    """Linear logits, multiplied by 1e4 for inputs whose first feature exceeds 0.9."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = Linear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.where(x[:, :1] > 0.9, 1e4, 1.0)
        return self.lin.fc(x) * scale


@pytest.mark.parametrize(("saturated", "fires"), [(9, False), (10, True)])
def test_zero_gradients_threshold_is_ten_percent(saturated: int, fires: bool) -> None:
    model = TorchClassifier(_PartlySaturated().eval(), bounds=(-10, 10), num_classes=C)
    x, _ = linear_data(100)
    x[:, 0] = x[:, 0].clamp(max=0.5)
    x[:saturated, 0] = 1.0
    y = model.predict(x)
    flag = F.zero_gradients(model, x, y)
    assert (flag is not None) == fires
    if flag is not None:
        assert flag["evidence"]["zero"] == saturated and flag["evidence"]["checked"] == 100


def test_blackbox_beats_whitebox_threshold() -> None:
    def stages(broke: int, attacked: int, first: str = "white-box") -> list[dict[str, Any]]:
        return [{"name": "apgd", "eps": 0.1, "attacked": 100, "broke": 0, "threat": first},
                {"name": "square", "eps": 0.1, "attacked": attacked, "broke": broke,
                 "threat": "scores"}]

    assert F.blackbox_beats_whitebox(stages(2, 100)) is None  # 2 is not more than 2%
    assert F.blackbox_beats_whitebox(stages(3, 100)) is not None
    assert F.blackbox_beats_whitebox(stages(1, 10)) is None  # at least 2 samples
    assert F.blackbox_beats_whitebox(stages(2, 10)) is not None
    # No white-box attack before it at that eps: nothing to beat.
    assert F.blackbox_beats_whitebox(stages(50, 100, first="scores")) is None
    with_min_norm = [{"name": "fmn", "eps": None, "attacked": 100, "broke": 90,
                      "threat": "white-box"}] + stages(50, 100, first="scores")
    assert F.blackbox_beats_whitebox(with_min_norm) is not None


def test_eps_too_large_check() -> None:
    assert F.eps_too_large([0.1, 1 / 3], diameter=1.0, norm="linf") is None
    flag = F.eps_too_large([0.1, 0.34, 2.0], diameter=1.0, norm="l2")
    assert flag is not None and flag["evidence"]["eps"] == [0.34, 2.0]


def test_not_zero_at_huge_eps_check() -> None:
    from hoodwink.attacks import registry

    x, y = linear_data(40)
    apgd = registry.make("apgd", norm="linf", seed=0)
    assert F.not_zero_at_huge_eps(linear_model(), x, y, apgd, eps=10.0) is None
    masked = linear_model(scale=1e4)
    flag = F.not_zero_at_huge_eps(masked, x, masked.predict(x), apgd, eps=10.0)
    assert flag is not None and flag["evidence"]["attacked"] == 32


def test_every_flag_is_documented_under_its_own_anchor() -> None:
    text = DOCS.read_text(encoding="utf-8")
    headings = re.findall(r"^###\s+`?([a-z0-9-]+)`?\s*$", text, flags=re.M)
    for code in FLAGS:
        assert code in headings, f"docs/evaluate.md has no '### {code}' section"
        section = text.split(f"### {code}", 1)[1].split("\n### ", 1)[0]
        for part in ("When it fires", "What it means", "What to do"):
            assert part in section, (code, part)


# ---------------------------------------------------------------------------- the zoo
def _zoo_model(name: str) -> Any:
    """The zoo model, or a skip while it is not in the zoo or its weights are not trained."""
    from hoodwink import zoo
    from hoodwink.errors import InternalError

    if name not in zoo.available():
        pytest.skip(f"{name} is not in this zoo yet")
    try:
        return zoo.load(name)
    except InternalError as exc:
        if "missing" not in str(exc):
            raise
        pytest.skip(f"{name}: {exc}")


def _mnist(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from hoodwink.data.mnist import load_mnist

    x, y = load_mnist("test")
    return x[:n], y[:n]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-cnn", "mnist-linear", "mnist-cnn-adv"])
def test_zoo_models_are_silent(name: str) -> None:
    model = _zoo_model(name)
    x, y = _mnist(50)
    ev = evaluate(model, x, y, eps=[0.1, 0.3], max_queries=1000)
    assert ev.flags == [], ev.flags


@pytest.mark.slow
def test_distilled_zoo_model_fires() -> None:
    model = _zoo_model("mnist-cnn-distilled")
    x, y = _mnist(50)
    ev = quiet_evaluate(model, x, y, eps=[0.1, 0.3],
                        max_queries=1000)
    assert {"zero-gradients", "blackbox-beats-whitebox", "not-zero-at-huge-eps"} & set(
        codes(ev)), ev.flags

"""The attack contract: guarantees every attack keeps, for every norm and mode.

Each test is parametrised over the rows of ``ATTACKS`` (attack class x norm) and
over untargeted / targeted calls. Adding an attack is one row in ``ATTACKS``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import (
    FGSM,
    PGD,
    BoundaryWalk,
    EstimatedGradient,
    HopSkipJump,
    LocalSearch,
    SimBA,
    Square,
    Substitute,
    TorchClassifier,
)
from hoodwink.attacks.apgd import APGD
from hoodwink.attacks.base import Attack
from hoodwink.attacks.cw import CarliniWagner
from hoodwink.attacks.deepfool import DeepFool
from hoodwink.attacks.fmn import FMN
from hoodwink.errors import ConfigError, InternalError

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class AttackSpec:
    """One attack family: its class, the norms it supports, quick test settings."""

    cls: type[Attack]
    norms: tuple[str, ...]
    fast: dict[str, Any] = field(default_factory=dict)
    #: Extra settings under which different seeds must give different results.
    randomised: dict[str, Any] | None = None

    def make(self, norm: str, **kw: Any) -> Attack:
        return self.cls(norm=norm, **{**self.fast, **kw})


#: Counts for which zero is a valid setting (FMN: no final bisection).
_ZERO_OK = {"binary_search_steps", "refine_steps"}

ATTACKS = [
    AttackSpec(FGSM, ("linf", "l2")),
    AttackSpec(PGD, ("linf", "l2", "l1"), fast={"steps": 5}, randomised={"random_start": True}),
    AttackSpec(APGD, ("linf", "l2"), fast={"steps": 5}, randomised={}),
    AttackSpec(CarliniWagner, ("l2",), fast={"steps": 10, "binary_search_steps": 2}),
    AttackSpec(DeepFool, ("l2", "linf"), fast={"steps": 5}),
    AttackSpec(FMN, ("linf", "l2", "l1"), fast={"steps": 10}),
    AttackSpec(EstimatedGradient, ("linf", "l2", "l1"), fast={"samples": 4, "max_queries": 30},
               randomised={}),
    AttackSpec(SimBA, ("l2", "linf"), fast={"max_queries": 30}, randomised={}),
    AttackSpec(Square, ("linf", "l2"), fast={"max_queries": 30}, randomised={}),
    AttackSpec(LocalSearch, ("linf", "l2"), fast={"max_queries": 30}, randomised={}),
    AttackSpec(HopSkipJump, ("l2", "linf"), fast={"max_queries": 40}, randomised={}),
    AttackSpec(BoundaryWalk, ("l2", "linf"), fast={"max_queries": 40}, randomised={}),
    AttackSpec(Substitute, ("linf", "l2", "l1"),
               fast={"rounds": 2, "epochs": 2, "max_queries": 10}),
]

CASES = [
    pytest.param(spec, norm, targeted, id=f"{spec.cls.__name__}-{norm}-{mode}")
    for spec in ATTACKS
    for norm in spec.norms
    for targeted, mode in ((False, "untargeted"), (True, "targeted"))
    if spec.cls.supports_targeted or not targeted
]
RANDOMISED_CASES = [
    pytest.param(spec, norm, id=f"{spec.cls.__name__}-{norm}")
    for spec in ATTACKS
    if spec.randomised is not None
    for norm in spec.norms
]

# ---------------------------------------------------------------------- data and models
NUM_CLASSES = 5
IMAGE_SHAPE = (5, 3, 7, 11)  # batch above 1, non-square images
TABULAR_SHAPE = (6, 13)
EPS = {
    "image": {"linf": 0.1, "l2": 1.0, "l1": 5.0},
    "tabular": {"linf": 0.3, "l2": 1.0, "l1": 2.0},
}


class TinyConv(nn.Module):
    """A conv net for (3, 7, 11) images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * 7 * 11, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def image_net() -> nn.Module:
    torch.manual_seed(0)
    return TinyConv().eval()


def tabular_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(13, 8), nn.Tanh(), nn.Linear(8, NUM_CLASSES)).eval()


TAB_LOWER = np.linspace(-3.0, 0.0, 13)
TAB_UPPER = TAB_LOWER + np.linspace(0.5, 5.0, 13)


def make_data(
    kind: str, *, dtype: torch.dtype = torch.float32, levels: int | None = None,
    module: nn.Module | None = None,
) -> tuple[TorchClassifier, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A model, inputs in its bounds, random labels y and targets != y."""
    rng = np.random.default_rng(7)
    if kind == "image":
        net = module if module is not None else image_net()
        model = TorchClassifier(net, bounds=(0, 1), levels=levels)
        u = rng.uniform(0, 1, size=IMAGE_SHAPE)
        if levels is not None:
            u = np.round(u * (levels - 1)) / (levels - 1)
        x = torch.from_numpy(u)
    else:
        net = module if module is not None else tabular_net()
        model = TorchClassifier(net, bounds=(TAB_LOWER, TAB_UPPER))
        u = rng.uniform(0, 1, size=TABULAR_SHAPE)
        x = torch.from_numpy(TAB_LOWER + u * (TAB_UPPER - TAB_LOWER))
    n = x.shape[0]
    y = torch.from_numpy(rng.integers(0, NUM_CLASSES, size=n))
    target = (y + torch.from_numpy(rng.integers(1, NUM_CLASSES, size=n))) % NUM_CLASSES
    return model, x.to(dtype), y, target


def run(
    attack: Attack, model: TorchClassifier, x: Any, y: Any, target: Any, targeted: bool,
    eps: float,
) -> Any:
    if targeted:
        return attack(model, x, y, target=target, eps=eps)
    return attack(model, x, y, eps=eps)


def flat_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.double().reshape(delta.shape[0], -1)
    p = {"linf": math.inf, "l2": 2.0, "l1": 1.0}[norm]
    return torch.linalg.vector_norm(flat, ord=p, dim=1)


def mode_snapshot(module: nn.Module) -> tuple[list[bool], list[bool]]:
    return [m.training for m in module.modules()], [p.requires_grad for p in module.parameters()]


# ---------------------------------------------------------------------- invariants
@pytest.mark.parametrize("kind", ["image", "tabular"])
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_bounds_and_eps_ball_hold(spec: AttackSpec, norm: str, targeted: bool, kind: str) -> None:
    """x_adv lies within the bounds exactly and within eps (+1e-6) of x in the attack norm."""
    model, x, y, target = make_data(kind)
    eps = EPS[kind][norm]
    r = run(spec.make(norm), model, x, y, target, targeted, eps)
    lo, hi = (torch.as_tensor(b, dtype=x.dtype) for b in model.bounds)
    assert bool((r.x_adv >= lo).all()) and bool((r.x_adv <= hi).all())
    assert bool((flat_norm(r.x_adv - x, norm) <= eps + 1e-6).all())
    assert torch.allclose(r.perturbation_norm.double(), flat_norm(r.x_adv - x, norm), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_shape_dtype_device_kept(
    spec: AttackSpec, norm: str, targeted: bool, dtype: torch.dtype
) -> None:
    """x_adv has the shape, dtype and device of x; per-sample fields have shape (N,)."""
    model, x, y, target = make_data("image", dtype=dtype)
    r = run(spec.make(norm), model, x, y, target, targeted, EPS["image"][norm])
    assert r.x_adv.shape == x.shape
    assert r.x_adv.dtype == dtype
    assert r.x_adv.device == x.device
    n = x.shape[0]
    for name in ("success", "clean_correct", "pred_clean", "pred_adv", "perturbation_norm",
                 "queries"):
        assert getattr(r, name).shape == (n,), name


@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_inputs_not_mutated(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """The attack leaves x, y and target untouched (torch and numpy inputs)."""
    model, x, y, target = make_data("image")
    copies = x.clone(), y.clone(), target.clone()
    run(spec.make(norm), model, x, y, target, targeted, EPS["image"][norm])
    assert torch.equal(x, copies[0]) and torch.equal(y, copies[1])
    assert torch.equal(target, copies[2])
    xn, yn, tn = x.numpy().copy(), y.numpy().copy(), target.numpy().copy()
    run(spec.make(norm), model, xn, yn, tn, targeted, EPS["image"][norm])
    np.testing.assert_array_equal(xn, copies[0].numpy())
    np.testing.assert_array_equal(yn, copies[1].numpy())
    np.testing.assert_array_equal(tn, copies[2].numpy())


@pytest.mark.parametrize("kind", ["image", "tabular"])
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_success_matches_fresh_prediction(
    spec: AttackSpec, norm: str, targeted: bool, kind: str
) -> None:
    """`success` and `pred_adv` agree with model.predict(x_adv) against y or the target."""
    model, x, y, target = make_data(kind)
    r = run(spec.make(norm), model, x, y, target, targeted, EPS[kind][norm])
    pred = model.predict(r.x_adv)
    assert torch.equal(r.pred_adv, pred)
    assert torch.equal(r.pred_clean, model.predict(x))
    expected = pred == target if targeted else pred != y
    assert torch.equal(r.success, expected)
    assert torch.equal(r.clean_correct, model.predict(x) == y)


@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_eps_zero_returns_x(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """With eps=0 the attack returns x bit-for-bit."""
    model, x, y, target = make_data("image")
    r = run(spec.make(norm), model, x, y, target, targeted, 0.0)
    assert torch.equal(r.x_adv, x)
    assert bool((r.perturbation_norm == 0).all())


@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_fixed_seed_reproduces(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """Two calls with the same seed give bit-identical results, and record the seed."""
    model, x, y, target = make_data("image")
    kw = spec.randomised or {}
    a = run(spec.make(norm, seed=123, **kw), model, x, y, target, targeted, EPS["image"][norm])
    b = run(spec.make(norm, seed=123, **kw), model, x, y, target, targeted, EPS["image"][norm])
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(a.queries, b.queries)
    assert a.seed == b.seed == 123


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize(("spec", "norm"), RANDOMISED_CASES)
def test_different_seeds_differ(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """A randomised attack (PGD with random_start) gives different x_adv for different seeds."""
    model, x, y, target = make_data("image")
    assert spec.randomised is not None
    eps = EPS["image"][norm]
    # early_stop=False: every sample keeps moving, so its result depends on its start.
    kw = dict(spec.randomised)
    if "early_stop" in {f.name for f in dataclasses.fields(spec.cls)}:
        kw["early_stop"] = False
    a = run(spec.make(norm, seed=1, **kw), model, x, y, target, targeted, eps)
    b = run(spec.make(norm, seed=2, **kw), model, x, y, target, targeted, eps)
    assert not torch.equal(a.x_adv, b.x_adv)
    assert (a.seed, b.seed) == (1, 2)


@dataclass(frozen=True, kw_only=True)
class Sloppy(Attack):
    """A buggy attack whose raw output ignores both the eps-ball and the bounds."""

    def _run(self, model: Any, inputs: Any) -> torch.Tensor:
        noise = torch.randn(inputs.x.shape, generator=inputs.generator, dtype=inputs.x.dtype)
        return inputs.x + 10 * noise


@pytest.mark.parametrize("kind", ["image", "tabular"])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_base_class_repairs_a_sloppy_attack(norm: str, kind: str) -> None:
    """The base class projects any subclass output back onto the eps-ball and the bounds."""
    model, x, y, _ = make_data(kind)
    eps = EPS[kind][norm]
    r = Sloppy(norm=norm)(model, x, y, eps=eps)
    lo, hi = (torch.as_tensor(b, dtype=x.dtype) for b in model.bounds)
    assert bool((r.x_adv >= lo).all()) and bool((r.x_adv <= hi).all())
    assert bool((flat_norm(r.x_adv - x, norm) <= eps + 1e-6).all())


def test_guarantee_violation_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the final projection were broken, the call raises InternalError instead of returning."""
    import hoodwink.attacks.base as base

    monkeypatch.setattr(base, "project", lambda delta, eps, norm: delta)
    model, x, y, _ = make_data("image")
    with pytest.raises(InternalError, match="hoodwink bug"):
        Sloppy(norm="l2")(model, x, y, eps=1.0)


# ---------------------------------------------------------------------- model mode
def mixed_mode_net() -> nn.Module:
    """Training at the top, one frozen eval-mode submodule, one frozen parameter."""
    net = image_net().train()
    net.features.eval()
    net.head.bias.requires_grad_(False)
    return net


@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_model_mode_restored(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """Every submodule's training flag and every parameter's requires_grad survive a call."""
    net = mixed_mode_net()
    before = mode_snapshot(net)
    model, x, y, target = make_data("image", module=net)
    with pytest.warns(UserWarning, match="training mode"):
        run(spec.make(norm), model, x, y, target, targeted, EPS["image"][norm])
    assert mode_snapshot(net) == before


class FailsOnCall(nn.Module):
    """Wraps a module; its forward raises on the n-th call."""

    def __init__(self, inner: nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner = inner
        self.fail_on = fail_on
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("boom")
        return self.inner(x)


@pytest.mark.parametrize("fail_on", [2, 3])
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_model_mode_restored_when_attack_raises(
    spec: AttackSpec, norm: str, targeted: bool, fail_on: int
) -> None:
    """The model's flags are restored even when its forward raises midway through the attack."""
    net = FailsOnCall(mixed_mode_net(), fail_on)
    before = mode_snapshot(net)
    model, x, y, target = make_data("image", module=net)
    with (
        pytest.warns(UserWarning, match="training mode"),
        pytest.raises(RuntimeError, match="boom"),
    ):
        run(spec.make(norm), model, x, y, target, targeted, EPS["image"][norm])
    assert net.calls == fail_on
    assert mode_snapshot(net) == before


# ---------------------------------------------------------------------- parameter validation
def _invalid_values(cls: type[Attack], f: dataclasses.Field[Any], hint: Any) -> list[Any]:
    """Values of the wrong kind or range for a field, generated from its type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: X's bad values, but None is fine
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, f"no generator for {hint}"
        return [v for v in _invalid_values(cls, f, inner[0]) if v is not None]
    if origin is typing.Literal:
        bad: list[Any] = ["bogus", "", 3, None]
        if f.name == "norm":  # choices of the shared vocabulary that this attack lacks
            bad += [n for n in args if n not in cls.supported_norms]
        return bad
    if hint is bool:
        return [1, 0, "yes", None]
    if hint is int:
        bad = [-1, 2.5, "3", True, None]
        if isinstance(f.default, int) and f.default >= 1 and f.name not in _ZERO_OK:  # a count
            bad.append(0)
        return bad
    if hint is float:
        return [math.nan, math.inf, -math.inf, -1.0, "0.1", None]
    if f.name in ("attack", "surrogate"):  # an attack to wrap, a model factory
        return [3, "bogus"]
    raise AssertionError(f"no invalid-value generator for field {f.name!r} of type {hint}")


def _param_cases() -> list[Any]:
    cases = []
    for spec in ATTACKS:
        hints = typing.get_type_hints(spec.cls)
        for f in dataclasses.fields(spec.cls):
            for value in _invalid_values(spec.cls, f, hints[f.name]):
                cases.append(pytest.param(
                    spec.cls, f.name, value, id=f"{spec.cls.__name__}-{f.name}-{value!r}"))
    return cases


@pytest.mark.parametrize(("cls", "name", "value"), _param_cases())
def test_parameter_rejects_invalid_value(cls: type[Attack], name: str, value: Any) -> None:
    """Every attack parameter rejects a bad value with a ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match=rf"'{name}' parameter of {cls.__name__}"):
        cls(**{name: value})


@pytest.mark.parametrize("spec", ATTACKS, ids=lambda s: s.cls.__name__)
def test_attack_config_is_frozen_and_printable(spec: AttackSpec) -> None:
    """Attack configs are immutable and their repr names every parameter."""
    attack = spec.cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        attack.norm = "l2"  # type: ignore[misc]
    for f in dataclasses.fields(spec.cls):
        assert f"{f.name}=" in repr(attack)


# ---------------------------------------------------------------------- inputs
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_numpy_input_accepted(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """numpy arrays (float32 or numpy's default float64) work and match the torch result."""
    model, x, y, target = make_data("image")
    eps = EPS["image"][norm]
    ref = run(spec.make(norm), model, x, y, target, targeted, eps)
    r32 = run(spec.make(norm), model, x.numpy(), y.numpy(), target.numpy(), targeted, eps)
    assert torch.equal(r32.x_adv, ref.x_adv)
    r64 = run(spec.make(norm), model, x.double().numpy(), y.numpy(), target.numpy(), targeted,
              eps)
    assert isinstance(r64.x_adv, torch.Tensor) and r64.x_adv.dtype == torch.float64
    assert r64.x_adv.shape == x.shape


@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_quantised_results_survive_8bit_round_trip(
    spec: AttackSpec, norm: str, targeted: bool
) -> None:
    """With levels=256, x_adv*255 is integral and saving as uint8 keeps x_adv and every success."""
    model, x, y, target = make_data("image", levels=256)
    eps = {"linf": 8 / 255, "l2": 1.0, "l1": 5.0}[norm]
    r = run(spec.make(norm), model, x, y, target, targeted, eps)
    scaled = r.x_adv * 255
    assert torch.equal(scaled, torch.round(scaled))
    back = torch.round(scaled).to(torch.uint8).float() / 255
    assert torch.equal(back, r.x_adv)
    pred = model.predict(back)
    assert torch.equal(pred, r.pred_adv)
    expected = pred == target if targeted else pred != y
    assert torch.equal(r.success, expected)
    assert bool((flat_norm(r.x_adv - x, norm) <= eps + 1e-6).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("spec", "norm", "targeted"), CASES)
def test_cuda_model_cpu_inputs(spec: AttackSpec, norm: str, targeted: bool) -> None:
    """A model on the GPU with CPU inputs returns CPU results within bounds and eps."""
    net = image_net()
    model = TorchClassifier(net, bounds=(0, 1), device="cuda")
    _, x, y, target = make_data("image")
    eps = EPS["image"][norm]
    r = run(spec.make(norm), model, x, y, target, targeted, eps)
    assert r.x_adv.device == x.device and r.success.device == x.device
    assert bool((flat_norm(r.x_adv - x, norm) <= eps + 1e-6).all())


# ---------------------------------------------------------------------- small-step fast paths
def _forward_counter(net: nn.Module) -> tuple[list[int], Any]:
    """Samples through ``net`` per forward call (empty probes included as 0)."""
    seen: list[int] = []
    handle = net.register_forward_hook(lambda m, i, o: seen.append(int(i[0].shape[0])))
    return seen, handle


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_fgsm_makes_two_passes(targeted: bool) -> None:
    """FGSM's gradient pass at x gives the clean prediction: 2 passes, queries == 2."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(6, 3, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    seen, handle = _forward_counter(net)
    try:
        r = FGSM()(model, x, y, target=(y + 1) % 4 if targeted else None, eps=0.1)
    finally:
        handle.remove()
    assert [s for s in seen if s] == [6, 6]
    assert r.queries.tolist() == [2] * 6
    assert torch.equal(r.pred_clean, net(x).argmax(1))  # the same as a separate pass
    assert torch.equal(r.success, r.pred_adv != y if not targeted else r.pred_adv == (y + 1) % 4)


def test_fgsm_without_labels_attacks_the_clean_prediction() -> None:
    """With neither y nor target the labels are the clean predictions: 3 passes, counted."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).eval()
    model = TorchClassifier(net, bounds=(0, 1), num_classes=4)
    r = FGSM()(model, torch.rand(5, 3, 4), eps=0.2)
    assert r.queries.tolist() == [3] * 5


def test_pgd_without_random_start_shares_the_clean_pass() -> None:
    """PGD's first step is at x: no separate clean pass; queries stay exact per sample."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).eval()
    model = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(8, 3, 4)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[:2] = (y[:2] + 1) % 4  # two samples misclassified from the start
    seen, handle = _forward_counter(net)
    try:
        r = PGD(steps=5, random_start=False, early_stop=False)(model, x, y, eps=1e-4)
    finally:
        handle.remove()
    passes = sum(seen)
    assert passes == int(r.queries.sum())
    assert r.queries[:2].tolist() == [2, 2]  # the shared clean pass + verification
    assert r.queries[2:].tolist() == [5 + 1 + 1] * 6  # steps + final iterate + verification
    assert torch.equal(r.x_adv[:2], x[:2])


@pytest.mark.parametrize("early_stop", [True, False])
@pytest.mark.parametrize("confidence", [0.0, 0.6])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("levels", [None, 16])
def test_pgd_deferred_judging_is_exact(monkeypatch: pytest.MonkeyPatch, early_stop: bool,
                                       confidence: float, norm: str, targeted: bool,
                                       levels: int | None) -> None:
    """Judging the iterates in one batched pass gives the same result as judging each step."""
    import hoodwink.attacks.pgd as pgd_module

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)).eval()
    model = TorchClassifier(net, bounds=(0, 1), levels=levels)
    x = torch.rand(9, 3, 4)
    if levels:
        x = torch.round(x * (levels - 1)) / (levels - 1)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[:3] = (y[:3] + 1) % 5
    kw: dict[str, Any] = {"target": (y + 2) % 5} if targeted else {}
    eps = {"linf": 0.2, "l2": 0.6, "l1": 2.0}[norm]
    attack = PGD(steps=6, restarts=2, norm=norm, early_stop=early_stop,  # type: ignore[arg-type]
                 confidence=confidence, seed=4)
    monkeypatch.setattr(pgd_module, "_HISTORY_ELEMENTS", 0)
    each = attack(model, x, y, eps=eps, **kw)
    monkeypatch.setattr(pgd_module, "_HISTORY_ELEMENTS", 2**21)
    batched = attack(model, x, y, eps=eps, **kw)
    assert torch.equal(each.x_adv, batched.x_adv)
    assert torch.equal(each.queries, batched.queries)
    assert 0 < int(batched.success.sum())


# ------------------------------------------------------------ scalar-bound checks
@pytest.mark.parametrize("per_feature", [False, True], ids=["scalar", "per-feature"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_bounds_and_finite_checks_are_elementwise_exact(per_feature: bool,
                                                        dtype: torch.dtype) -> None:
    """Scalar bounds are checked through x's least and largest values: exactly the elementwise
    verdict, at the bounds (rounded to x's dtype), one ulp either side, NaN and infinities."""
    from hoodwink.errors import InputError, OutOfBoundsError

    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 3)).eval()
    lo_v, hi_v = 0.1, 0.7  # not representable: compared in x's dtype, as elementwise
    bounds: tuple[Any, Any] = ((np.full((2, 3), lo_v), np.full((2, 3), hi_v)) if per_feature
                               else (lo_v, hi_v))
    model = TorchClassifier(net, bounds=bounds)
    lo_t, hi_t = model.bounds
    lo_x, hi_x = lo_t.to(dtype), hi_t.to(dtype)  # the bounds rounded to x's dtype
    x = (lo_t + torch.rand(4, 2, 3) * (hi_t - lo_t)).clamp(lo_t, hi_t).to(dtype)
    x = x.clamp(torch.nextafter(lo_x, hi_x), torch.nextafter(hi_x, lo_x))  # strictly inside
    up, down = torch.tensor(2.0, dtype=dtype), torch.tensor(-2.0, dtype=dtype)
    l0, h0 = lo_x.flatten()[0], hi_x.flatten()[0]
    values = [l0, h0, torch.nextafter(l0, up), torch.nextafter(l0, down),
              torch.nextafter(h0, up), torch.nextafter(h0, down)]
    for value in values + [torch.tensor(float(v), dtype=dtype)
                            for v in ("nan", "inf", "-inf")]:
        xb = x.clone()
        xb[2, 0, 1] = float(value)
        xd = xb.float() if dtype == torch.float16 else xb  # as the base class checks it
        if not bool(torch.isfinite(xd).all()):
            with pytest.raises(InputError, match="NaN or infinite"):
                PGD(steps=1)(model, xb, eps=0.05)
        elif bool(((xd < lo_t) | (xd > hi_t)).any()):
            with pytest.raises(OutOfBoundsError):
                PGD(steps=1)(model, xb, eps=0.05)
        else:
            PGD(steps=1)(model, xb, eps=0.05)


def test_sloppy_non_finite_output_is_an_internal_error() -> None:
    """An inf or NaN anywhere in a subclass's raw output is caught (from its least and
    largest values), even in a sample that is then replaced by x."""

    @dataclass(frozen=True, kw_only=True)
    class NonFinite(Attack):
        value: float = float("inf")

        def _run(self, model: Any, inputs: Any) -> torch.Tensor:
            out = inputs.x.clone()
            out[0, 0] = self.value
            return out

    model, x, y, _ = make_data("image")
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(InternalError, match="not finite"):
            NonFinite(value=value)(model, x, y, eps=0.1)


def test_already_fooled_samples_come_back_as_x_exactly() -> None:
    """Untargeted samples the model already gets wrong are x, bit for bit, on and off a grid."""
    for levels in (None, 256):
        model, x, y, _ = make_data("image", levels=levels)
        pred = model.predict(x)
        y = pred.clone()
        y[::2] = (pred[::2] + 1) % NUM_CLASSES  # every other sample already fooled
        r = PGD(steps=3, early_stop=False)(model, x, y, eps=0.1)
        fooled = pred != y
        assert torch.equal(r.x_adv[fooled], x[fooled])
        assert bool((r.perturbation_norm[fooled] == 0).all())

"""Hardening of the attack core (issue 9): one test per root cause, each a class of inputs.

Every case here crashed outside the documented error tree or returned a wrong
result before the fix. The guarantees checked are those of the contract suite:
an error is a :class:`~hoodwink.errors.HoodwinkError`, and an accepted result
has x's batch size and dtype, is finite, within the bounds and the eps-ball of
*the returned tensor*, and its ``success`` matches a fresh forward pass.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hoodwink import FGSM, PGD, Attack, AttackResult, Curve, TorchClassifier
from hoodwink.attacks._norms import norms
from hoodwink.attacks.base import AttackInputs
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    HoodwinkError,
    InputError,
    InternalError,
    MissingLabelsError,
    ShapeError,
)
from hoodwink.models.base import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::hoodwink.errors.EpsScaleWarning")

NORMS = ("linf", "l2", "l1")


def diag_net(dtype: torch.dtype = torch.float32, scale: float = 1.0) -> nn.Module:
    """Class c scores ``scale * x.flatten()[c]``: the margin of a sample is set by its inputs."""
    lin = nn.Linear(6, 3, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        for c in range(3):
            lin.weight[c, c] = scale
    return nn.Sequential(nn.Flatten(), lin).to(dtype).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four (2, 3) inputs: two with a tiny margin (fooled at once), two with a large one."""
    x = torch.full((4, 2, 3), 0.25)
    x[0, 0] = torch.tensor([0.51, 0.50, 0.10])  # class 0, margin 0.01
    x[1, 0] = torch.tensor([0.90, 0.10, 0.10])  # class 0, margin 0.8
    x[2, 0] = torch.tensor([0.10, 0.49, 0.50])  # class 2, margin 0.01
    x[3, 0] = torch.tensor([0.10, 0.90, 0.10])  # class 1, margin 0.8
    return x, torch.tensor([0, 0, 2, 1])


def check_result(model: Classifier, r: AttackResult, x: torch.Tensor, y: torch.Tensor | None,
                 eps: float, norm: str) -> None:
    """The guarantees, measured on exactly the returned tensor."""
    assert r.x_adv.shape == x.shape and r.x_adv.dtype == x.dtype
    assert len(r) == x.shape[0] and r.success.shape == (x.shape[0],)
    assert bool(torch.isfinite(r.x_adv).all())
    lo, hi = model.bounds
    assert bool(((r.x_adv.double() >= lo.double()) & (r.x_adv.double() <= hi.double())).all())
    dist = norms(r.x_adv.double() - x.double(), norm)  # type: ignore[arg-type]
    # float32 grid points k/255 are rounded, so their distances are, by an ulp; low-
    # precision results are rounded towards x, so they are within eps exactly.
    slack = 1e-6 if x.dtype == torch.float32 else 1e-12
    assert bool((dist <= eps * (1 + 1e-6) + slack).all()), (dist.max().item(), eps)
    assert torch.allclose(r.perturbation_norm.double(), dist, rtol=1e-5, atol=1e-7)
    pred = model.predict(r.x_adv)
    assert torch.equal(r.pred_adv, pred)
    if y is not None and r.target is None:
        assert torch.equal(r.success, pred != y)


# --------------------------------------------------------------------- model dtypes
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("levels", [None, 256])
def test_pgd_runs_on_models_whose_logits_are_not_float32(
        dtype: torch.dtype, norm: str, levels: int | None) -> None:
    # Restarts and early stopping write the active samples' losses back into the
    # per-sample state: that write crashed when the loss dtype was not float32.
    model = TorchClassifier(diag_net(dtype), levels=levels)
    x, y = batch()
    if levels:
        x = torch.round(x * 255) / 255
    eps = 0.05
    for attack in (PGD(norm=norm, steps=3, restarts=2),  # type: ignore[arg-type]
                   PGD(norm=norm, steps=3, early_stop=False, random_start=False)):  # type: ignore[arg-type]
        r = attack(model, x, y, eps=eps)
        check_result(model, r, x, y, eps, norm)
        assert bool(r.success[[0, 2]].all()) and not bool(r.success[[1, 3]].any())


# --------------------------------------------------------------------- numpy inputs
@pytest.mark.parametrize("view", ["flipped", "big-endian", "read-only", "strided"])
def test_numpy_arrays_torch_cannot_wrap_are_copied(view: str) -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    base = x.numpy()[..., ::-1].copy()  # the flipped inputs, contiguous
    arr: np.ndarray
    if view == "flipped":
        arr = x.numpy()[..., ::-1]
    elif view == "big-endian":
        arr = base.astype(">f4")
    elif view == "read-only":
        arr = base.copy()
        arr.setflags(write=False)
    else:
        wide = np.zeros((4, 2, 6), dtype=np.float32)
        wide[..., ::2] = base
        arr = wide[..., ::2]
    expected = PGD(steps=3)(model, base, y, eps=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even torch's "array is not writable" warning
        r = PGD(steps=3)(model, arr, y, eps=0.05)
    assert torch.equal(r.x_adv, expected.x_adv)
    assert r.x_adv.dtype == torch.float32


@pytest.mark.parametrize("arr", [
    np.zeros((2, 2, 3), dtype=object),
    np.full((2, 2, 3), "0.5"),
    np.zeros((2, 2, 3), dtype="datetime64[s]"),
    np.zeros((2, 2, 3), dtype=np.longdouble) if np.dtype(np.longdouble).itemsize > 8
    else np.zeros((2, 2, 3), dtype=np.complex64),
    np.zeros((2, 2, 3), dtype=np.uint8),
    np.zeros((2,), dtype=[("a", "f4"), ("b", "f4")]),
], ids=["object", "str", "datetime", "longdouble-or-complex", "uint8", "structured"])
def test_numpy_arrays_of_unusable_dtypes_are_refused(arr: np.ndarray) -> None:
    model = TorchClassifier(diag_net())
    with pytest.raises(ShapeError, match=r"x has dtype"):
        PGD(steps=1)(model, arr, torch.tensor([0, 1]), eps=0.1)


# --------------------------------------------------------------------- the grid
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("levels", [2, 16, 256])
@pytest.mark.parametrize("k_eps", [0.0, 0.5, 1.0, 3.0])
def test_inputs_near_the_grid_are_snapped_and_never_raise(
        norm: str, levels: int, k_eps: float) -> None:
    # x is accepted as on the grid within a tolerance; the eps-ball is then around
    # its grid point, so the snap of x itself can never push a result outside it.
    model = TorchClassifier(diag_net(), levels=levels)
    x, y = batch()
    step = 1 / (levels - 1)
    grid = torch.round(x * (levels - 1)) / (levels - 1)  # the model's grid formula
    g = torch.Generator().manual_seed(0)
    off = (torch.rand(grid.shape, generator=g) * 2 - 1) * 0.9e-3 * step
    near = (grid + off).clamp(0, 1)
    eps = k_eps * step * (1 if norm == "linf" else 2.5)
    snapped = torch.round(near * (levels - 1)) / (levels - 1)
    attacks: list[Attack] = [PGD(norm=norm, steps=3),  # type: ignore[arg-type]
                             PGD(norm=norm, steps=2, random_start=False,  # type: ignore[arg-type]
                                 early_stop=False)]
    if norm != "l1":
        attacks.append(FGSM(norm=norm))  # type: ignore[arg-type]
    for attack in attacks:
        r = attack(model, near, y, eps=eps)
        # A sample the attack left alone comes back exactly as given (eps=0 returns x);
        # a moved one is on the grid, in the ball around x's grid point.
        unmoved = (r.x_adv == near).flatten(1).all(dim=1)
        if eps == 0:
            assert bool(unmoved.all())
        ref = torch.where(unmoved[:, None, None], near, snapped)
        check_result(model, r, ref, y, eps, norm)
        moved = r.x_adv[~unmoved]
        assert torch.allclose(moved * (levels - 1), torch.round(moved * (levels - 1)), atol=1e-4)


# --------------------------------------------------------------------- bounds shape
@pytest.mark.parametrize("shape", [(2, 2, 3), (1, 2, 3), (4, 1, 1, 1)])
@pytest.mark.parametrize("attack", [PGD(steps=2), FGSM()], ids=["PGD", "FGSM"])
def test_bounds_with_a_batch_dimension_are_refused(shape: tuple[int, ...], attack: Attack) -> None:
    model = TorchClassifier(diag_net(), bounds=(torch.zeros(shape), torch.ones(shape)))
    x, y = batch()
    with pytest.raises(ShapeError, match=r"bounds"):
        attack(model, x[:1], y[:1], eps=0.1)


def test_bounds_that_broadcast_to_one_input_are_accepted() -> None:
    x, y = batch()
    for shape in [(), (3,), (2, 3), (1, 3), (2, 1)]:
        model = TorchClassifier(diag_net(), bounds=(torch.zeros(shape), torch.ones(shape)))
        r = PGD(steps=2)(model, x[:1], y[:1], eps=0.1)
        assert len(r) == 1 and r.x_adv.shape == (1, 2, 3)


# --------------------------------------------------------------------- NaN made by the attack
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("budget", ["eps", "stepsize", "int-eps"])
def test_huge_budgets_do_not_overflow_into_nan(norm: str, dtype: torch.dtype, budget: str) -> None:
    # 1e39 overflows float32 (and 1e300 squared overflows float64): the attack must
    # neither crash nor hand NaN/inf to the model (which it then blamed).
    model = TorchClassifier(diag_net(scale=1e-3))
    x, y = batch()
    x = x.to(dtype)
    huge = 1e39 if dtype == torch.float32 else 1e300
    eps: Any = huge if budget != "stepsize" else 0.5
    if budget == "int-eps":
        eps = 10**39 if dtype == torch.float32 else 10**300
    attacks: list[Attack] = [PGD(norm=norm, steps=2, stepsize=huge if budget == "stepsize"  # type: ignore[arg-type]
                                 else None),
                             PGD(norm=norm, steps=2, random_start=False, early_stop=False,  # type: ignore[arg-type]
                                 stepsize=huge if budget == "stepsize" else None)]
    if norm != "l1" and budget != "stepsize":
        attacks.append(FGSM(norm=norm))  # type: ignore[arg-type]
    for attack in attacks:
        r = attack(model, x, y, eps=eps)
        check_result(model, r, x, y, float(eps), norm)
        assert r.eps == float(eps)


class Sqrt(nn.Module):
    """A preprocessing with an infinite gradient at 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x**0.5


@pytest.mark.parametrize("norm", NORMS)
def test_infinite_gradients_give_a_finite_step(norm: str) -> None:
    model = TorchClassifier(diag_net(), preprocessing=Sqrt())
    x, y = batch()
    x[:, 0, :] = torch.where(torch.arange(3) == 2, 0.0, x[:, 0, :])  # some inputs at 0
    x[1, 1, 0] = 0.0  # a zero weight behind an infinite gradient: 0 * inf = NaN
    y = model.predict(x)
    for attack in (PGD(norm=norm, steps=3, random_start=False),  # type: ignore[arg-type]
                   PGD(norm=norm, steps=3, early_stop=False)):  # type: ignore[arg-type]
        r = attack(model, x, y, eps=0.3)
        check_result(model, r, x, y, 0.3, norm)
    if norm != "l1":
        r = FGSM(norm=norm)(model, x, y, eps=0.3)  # type: ignore[arg-type]
        check_result(model, r, x, y, 0.3, norm)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Broken(Attack):
    """An attack that returns ``value`` in one coordinate: the base class must catch it."""

    value: float = float("nan")

    def _run(self, model: Any, inputs: AttackInputs) -> torch.Tensor:
        out = inputs.x.clone()
        out[0, 0, 0] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("norm", NORMS)
def test_the_guarantee_check_rejects_non_finite_results(value: float, norm: str) -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    with pytest.raises(InternalError):
        _Broken(value=value, norm=norm)(model, x, y, eps=0.1)  # type: ignore[arg-type]


# --------------------------------------------------------------------- low-precision inputs
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("levels", [None, 5])
def test_low_precision_inputs_are_checked_as_returned(
        dtype: torch.dtype, norm: str, levels: int | None) -> None:
    model = TorchClassifier(diag_net(scale=1e-3), levels=levels)
    x, y = batch()
    if levels:
        x = torch.round(x * (levels - 1)) / (levels - 1)
    x = x.to(dtype)
    y = model.predict(x)
    for eps in (0.2, 0.2002, 1 / 3):
        attacks: list[Attack] = [PGD(norm=norm, steps=5), PGD(norm=norm, steps=2,  # type: ignore[arg-type]
                                                           random_start=False)]
        if norm != "l1":
            attacks.append(FGSM(norm=norm))  # type: ignore[arg-type]
        for attack in attacks:
            r = attack(model, x, y, eps=eps)
            check_result(model, r, x, y, eps, norm)
            if levels:
                k = r.x_adv.double() * (levels - 1)
                assert torch.equal(k, torch.round(k))


# --------------------------------------------------------------------- seeds and numbers
@pytest.mark.parametrize("seed", [np.uint64(2**64 - 1), 2**64 - 1, np.int64(7), np.uint8(3)])
def test_every_valid_seed_reaches_the_generator(seed: Any) -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    r = PGD(steps=2, seed=seed)(model, x, y, eps=0.1)
    assert r.seed == int(seed) and type(r.seed) is int
    again = PGD(steps=2, seed=int(seed))(model, x, y, eps=0.1)
    assert torch.equal(r.x_adv, again.x_adv)


@pytest.mark.parametrize("seed", [2**64, -1, np.int64(-1), 10**30, 1.0, np.array(3), "3"])
def test_seeds_the_generator_refuses_are_config_errors(seed: Any) -> None:
    with pytest.raises(ConfigError, match="'seed'"):
        PGD(seed=seed)


@pytest.mark.parametrize("field,value", [
    ("stepsize", 10**39), ("stepsize", 10**400), ("l1_sparsity", 10**400),
    ("confidence", 10**400), ("steps", 1.5), ("restarts", np.array(2)),
])
def test_numbers_too_large_for_a_float_are_refused_or_run(field: str, value: Any) -> None:
    if field == "stepsize" and value == 10**39:  # a float64: it runs (checked above)
        assert PGD(stepsize=value).stepsize == 1e39
        return
    with pytest.raises(ConfigError, match=f"'{field}'"):
        PGD(**{field: value})


# --------------------------------------------------------------------- labels
@pytest.mark.parametrize("which", ["y", "target"])
@pytest.mark.parametrize("labels", [
    2**70, -(2**70), [0, 2**70, 1, 2], np.uint64(2**64 - 1),
    np.array([0, 2**63 + 1, 1, 2], dtype=np.uint64),
    np.array([0, 2**32 - 1, 1, 2], dtype=np.uint32),
    torch.tensor([0, 2**63 - 1, 1, 2]),
], ids=["huge-int", "huge-negative", "list", "np-uint64-scalar", "uint64-array",
        "uint32-max", "int64-max"])
def test_labels_outside_int64_are_input_errors(which: str, labels: Any) -> None:
    model = TorchClassifier(diag_net())
    x, _ = batch()
    with pytest.raises(InputError, match=rf"{which} contains -?\d+, outside the model's classes"):
        PGD(steps=1)(model, x, **{which: labels}, eps=0.1)


def test_uint64_labels_in_range_work() -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    r = PGD(steps=1)(model, x, y.numpy().astype(np.uint64), eps=0.1)
    assert torch.equal(r.y, y)  # type: ignore[arg-type]
    r = PGD(steps=1)(model, x, torch.tensor(y.tolist(), dtype=torch.uint64), eps=0.1)
    assert torch.equal(r.y, y)  # type: ignore[arg-type]


@pytest.mark.parametrize("labels", [np.array(["0", "0", "2", "1"]), np.full(4, 0.5, dtype=object),
                                    [0.0, 0.0, 2.0, 1.0], ["a", "b", "c", "d"], [[0], 0, 2, 1]])
def test_labels_that_are_not_integers_are_shape_errors(labels: Any) -> None:
    model = TorchClassifier(diag_net())
    x, _ = batch()
    with pytest.raises(ShapeError, match="y"):
        PGD(steps=1)(model, x, labels, eps=0.1)


# --------------------------------------------------------------------- models and devices
@pytest.mark.parametrize("model", [TorchClassifier, Classifier, nn.Linear(6, 3), object()],
                         ids=["TorchClassifier-class", "Protocol", "module", "object"])
def test_things_that_are_not_model_instances_are_capability_errors(model: Any) -> None:
    x, y = batch()
    for attack in (PGD(steps=1), FGSM()):
        with pytest.raises(CapabilityError, match="hoodwink model|instance"):
            attack(model, x, y, eps=0.1)


def test_meta_tensors_are_refused() -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    with pytest.raises(InputError, match="meta"):
        PGD(steps=1)(model, x.to("meta"), y, eps=0.1)
    with pytest.raises(InputError, match="meta"):
        PGD(steps=1)(model, x, y.to("meta"), eps=0.1)
    with pytest.raises(InputError, match="meta"):
        PGD(steps=1)(model, x, target=y.to("meta"), eps=0.1)


def test_models_on_the_meta_device_are_refused() -> None:
    model = TorchClassifier(diag_net())
    model.device = torch.device("meta")  # as a model built on the meta device reports it
    x, y = batch()
    with pytest.raises(HoodwinkError, match="meta"):
        PGD(steps=1)(model, x, y, eps=0.1)


# --------------------------------------------------------------------- parameter values
def _fields(cls: type) -> list[tuple[str, Any]]:
    obj = cls()
    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


@pytest.mark.parametrize("cls,field,default", [
    (cls, name, value) for cls in (PGD, FGSM) for name, value in _fields(cls)])
@pytest.mark.parametrize("wrap", ["0-d", "1-element", "tensor"])
def test_arrays_as_parameter_values_are_refused(cls: type, field: str, default: Any,
                                                wrap: str) -> None:
    value = 0.5 if default is None else default
    arr: Any = (np.array(value) if wrap == "0-d" else np.array([value]) if wrap == "1-element"
                else torch.tensor(value) if not isinstance(value, str) else np.array(value))
    with pytest.raises(ConfigError, match=f"'{field}'"):
        cls(**{field: arr})


@pytest.mark.parametrize("eps", [
    bytearray(b"a"), b"a", "0.1", {0.1}, frozenset({0.1}), {0.1: 1}, memoryview(b"a"),
    ["0.1"], [0.1, "0.2"], [True], [[0.1]], np.array(["0.1"]), [0.1, float("nan")],
    [0.1, -0.1], [10**400], torch.tensor([0.1]), 0.1, [], np.array([], dtype=float),
], ids=lambda e: type(e).__name__ + "-" + repr(e)[:20])
def test_sweep_takes_only_a_sequence_of_real_numbers(eps: Any) -> None:
    calls: list[int] = []

    class Counting(TorchClassifier):
        def predict(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return super().predict(x)

    model = Counting(diag_net())
    x, y = batch()
    with pytest.raises(ConfigError, match="eps"):
        PGD(steps=1).sweep(model, x, y, eps=eps)
    assert calls == []  # refused before any budget runs


def test_sweep_accepts_lists_tuples_ranges_and_arrays() -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    for eps in ([0, 0.1], (0.0, 0.1), range(2), np.array([0.0, 0.1], dtype=np.float32),
                [np.float32(0.1), np.int64(0)]):
        c = PGD(steps=1).sweep(model, x, y, eps=eps)
        assert isinstance(c, Curve) and len(c) == 2
        assert all(type(e) is float for e in c.eps)


@pytest.mark.parametrize("eps", [("0.1",), (b"a",), (float("nan"),), (True,)])
def test_curve_refuses_budgets_that_are_not_numbers(eps: tuple[Any, ...]) -> None:
    model = TorchClassifier(diag_net())
    x, y = batch()
    r = PGD(steps=1)(model, x, y, eps=0.1)
    with pytest.raises(ConfigError, match="eps"):
        Curve(eps=eps, results=(r,), norm="linf", attack=r.attack)


# --------------------------------------------------------------------- missing labels
def test_accuracies_without_labels_raise_a_hoodwink_error() -> None:
    model = TorchClassifier(diag_net())
    x, _ = batch()
    r = PGD(steps=1)(model, x, eps=0.1)
    for fn in (r.robust_accuracy, r.clean_accuracy,
               PGD(steps=1).sweep(model, x, eps=[0.1]).robust_accuracy):
        with pytest.raises(MissingLabelsError, match="needs true labels") as info:
            fn()
        assert isinstance(info.value, HoodwinkError) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------- saving
def test_saving_under_a_file_is_a_config_error(tmp_path: Any) -> None:
    pytest.importorskip("safetensors")
    model = TorchClassifier(diag_net())
    x, y = batch()
    r = PGD(steps=1)(model, x, y, eps=0.1)
    (tmp_path / "f").write_text("x")
    for target in (r, PGD(steps=1).sweep(model, x, y, eps=[0.1])):
        with pytest.raises(HoodwinkError, match="Cannot write"):
            target.save(tmp_path / "f" / "sub" / "r.json")


@pytest.mark.parametrize("field", ["steps", "restarts"])
def test_absurd_iteration_counts_are_refused(field: str) -> None:
    """PGD(steps=10**20) used to pass validation and then run without end."""
    with pytest.raises(ConfigError, match=f"'{field}' parameter of PGD"):
        PGD(**{field: 10**20})  # type: ignore[arg-type]

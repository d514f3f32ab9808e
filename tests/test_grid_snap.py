"""Grid arithmetic: fast paths are `quantize` bit for bit; PGD L∞ grid iterates are grid points.

With 0-d bounds `quantize`,
`snap_point` and `on_grid` use the bounds as Python numbers (vectorised ops); these must
give exactly what the original tensor arithmetic (`_quantize_ref`, `_on_grid_ref` below)
gives. PGD takes an improving iterate as its best without copying it, which must change
nothing.

PGD in L∞ on a grid walks in grid units (`GridUnits`): its iterates are not those of
stepping in input units and snapping, but every one must be a grid point exactly as
`quantize` writes it, within the bounds and within eps in whole grid steps.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import hoodwink.attacks.pgd as pgd_module
from hoodwink import PGD, TorchClassifier
from hoodwink.attacks._norms import GridUnits, on_grid, quantize, snap_point

BOUNDS = [(0.0, 1.0), (-0.5, 1.5), (-1.0, 0.0)]


def _quantize_ref(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str,
                  lower: torch.Tensor, upper: torch.Tensor, levels: int) -> torch.Tensor:
    """quantize's L∞ arithmetic as first written: 0-d tensor bounds, out of place."""
    assert norm == "linf"
    span = upper - lower
    step = span / (levels - 1)
    k_x = torch.round((x - lower) / step)
    k_off = (x_adv - lower) / step - k_x
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[0])
    rounded = torch.round(k_off)
    eb = e.reshape((x.shape[0],) + (1,) * (x.ndim - 1))
    kmax = torch.floor(eb / step + 1e-6)
    k = torch.maximum(torch.minimum(rounded, kmax), -kmax)
    kk = (k_x + k).clamp(min=0, max=levels - 1)
    # Capped at upper: the top grid point can round an ulp above it (found by the fuzzer).
    return torch.minimum(lower + (kk * span) / (levels - 1), upper)


def _on_grid_ref(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: int) -> bool:
    k = (x - lower) / (upper - lower) * (levels - 1)
    return bool(((k - torch.round(k)).abs() <= 1e-3).all())


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The bit pattern (tells -0.0 from +0.0), every NaN as one pattern (payloads may vary)."""
    return t.nan_to_num(float("nan")).where(~t.isnan(), float("nan")) \
        .view(torch.int64 if t.dtype == torch.float64 else torch.int32)


def _grid_x(lo: torch.Tensor, hi: torch.Tensor, levels: int, shape: tuple[int, ...],
            g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    k = torch.randint(0, levels, shape, generator=g).to(dtype)
    return lo + (k * (hi - lo)) / (levels - 1)


def _candidates(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, step: torch.Tensor,
                eps: float, g: torch.Generator) -> torch.Tensor:
    """Points around x: random ones, exact half-way points, and the box's own edges."""
    n = x.shape[0]
    box_lo = torch.maximum(x - eps, lo)
    box_hi = torch.minimum(x + eps, hi)
    parts = [
        box_lo + torch.rand(x.shape, generator=g, dtype=x.dtype) * (box_hi - box_lo),
        torch.clamp(x + torch.randint(-9, 10, x.shape, generator=g).to(x.dtype) * step / 2,
                    box_lo, box_hi),  # ties between grid levels
        box_lo, box_hi,
        torch.clamp(x + eps * torch.randint(-1, 2, x.shape, generator=g).to(x.dtype) / 2,
                    box_lo, box_hi),
    ]
    out = torch.cat(parts)
    assert out.shape[0] == 5 * n
    return out


# ---------------------------------------------------------------------- PGD before/after
def _pgd_pair(monkeypatch: pytest.MonkeyPatch, attack: PGD, model: TorchClassifier,
              x: torch.Tensor, y: torch.Tensor, eps: float, **kw: Any) -> tuple[Any, Any]:
    fast = attack(model, x, y, eps=eps, **kw)
    with monkeypatch.context() as m:
        m.setattr(pgd_module, "_REUSE_ITERATE", False)
        ref = attack(model, x, y, eps=eps, **kw)
    return fast, ref


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("levels", [16, 256])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.5, 1.5)], ids=["01", "shifted"])
@pytest.mark.parametrize("history", [0, 2**21], ids=["each-step", "deferred"])
def test_pgd_on_a_grid_is_unchanged(monkeypatch: pytest.MonkeyPatch, norm: str, levels: int,
                                    bounds: tuple[float, float], history: int) -> None:
    """PGD with iterate reuse returns exactly what the plain path (a copy each step) returns."""
    monkeypatch.setattr(pgd_module, "_HISTORY_ELEMENTS", history)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)).eval()
    model = TorchClassifier(net, bounds=bounds, levels=levels)
    g = torch.Generator().manual_seed(levels)
    lo, hi = torch.tensor(bounds[0]), torch.tensor(bounds[1])
    x = _grid_x(lo, hi, levels, (12, 3, 4), g, torch.float32)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[:3] = (y[:3] + 1) % 5
    span = bounds[1] - bounds[0]
    epss = {"linf": (8 * span / 255, 0.1 * span, 0.3 * span), "l2": (0.6 * span,),
            "l1": (2.0 * span,)}[norm]
    for eps in epss:
        for kw in ({}, {"target": (y + 2) % 5}):
            for attack in (PGD(norm=norm, steps=8, early_stop=False, seed=1),  # type: ignore[arg-type]
                           PGD(norm=norm, steps=6, restarts=2, seed=2),  # type: ignore[arg-type]
                           PGD(norm=norm, steps=5, random_start=False, early_stop=False)):  # type: ignore[arg-type]
                fast, ref = _pgd_pair(monkeypatch, attack, model, x, y, eps, **kw)
                assert torch.equal(fast.x_adv, ref.x_adv)
                assert torch.equal(fast.queries, ref.queries)


def test_pgd_reuses_iterates_without_touching_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taking an iterate as the best never aliases x: inputs stay unmodified."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).eval()
    model = TorchClassifier(net, bounds=(0, 1), levels=256)
    x = torch.round(torch.rand(10, 3, 4) * 255) / 255
    x0 = x.clone()
    with torch.no_grad():
        y = net(x).argmax(1)
    monkeypatch.setattr(pgd_module, "_HISTORY_ELEMENTS", 0)
    for rs in (False, True):
        fast, ref = _pgd_pair(monkeypatch, PGD(steps=7, random_start=rs, early_stop=False),
                              model, x, y, 0.05)
        assert torch.equal(fast.x_adv, ref.x_adv)
        assert torch.equal(x, x0)
        assert fast.x_adv is not x


def test_clip_to_bounds_with_scalar_bounds_is_clamp() -> None:
    """0-d bounds are passed to clamp as numbers (faster); dtype and values as with tensors."""
    from hoodwink.attacks._norms import clip_to_bounds

    g = torch.Generator().manual_seed(0)
    dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    for xd in dtypes:
        for bd in dtypes:
            for lo, hi in ((0.0, 1.0), (-0.1, 0.7), (1 / 3, 2 / 3)):
                x = (torch.rand(500, generator=g, dtype=torch.float64) * 2 - 0.5).to(xd)
                x[:3] = torch.tensor([float("nan"), lo, hi])
                lt, ht = torch.tensor(lo, dtype=bd), torch.tensor(hi, dtype=bd)
                got, want = clip_to_bounds(x, lt, ht), torch.clamp(x, lt, ht)
                assert got.dtype == want.dtype
                assert torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0))


# ------------------------------------------------------------ scalar bounds as numbers
SCALAR_BOUNDS = [(0.0, 1.0), (-0.5, 1.5), (-1.0, 0.0), (0.1, 0.7), (-0.0, 1.0), (1 / 3, 2.0)]


@pytest.mark.parametrize("xdtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bdtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bounds", SCALAR_BOUNDS, ids=str)
@pytest.mark.parametrize("levels", [2, 16, 256])
def test_scalar_bound_paths_are_the_tensor_arithmetic(levels: int, bounds: tuple[float, float],
                                                      bdtype: torch.dtype,
                                                      xdtype: torch.dtype) -> None:
    """quantize, snap_point and on_grid with 0-d bounds: bit for bit the tensor arithmetic."""
    g = torch.Generator().manual_seed(levels)
    lo, hi = torch.tensor(bounds[0], dtype=bdtype), torch.tensor(bounds[1], dtype=bdtype)
    lo_x, hi_x = lo.to(xdtype), hi.to(xdtype)
    step = (hi_x - lo_x) / (levels - 1)
    x = _grid_x(lo_x, hi_x, levels, (6, 5, 7), g, xdtype)
    x[0, 0, :2] = lo_x  # the lower bound itself, and -0.0 where that is 0
    if bounds[0] == 0:
        x[0, 0, 1] = -0.0
    # Near-grid points (inside and outside on_grid's tolerance) and ties between levels.
    near = x + torch.randint(-2, 3, x.shape, generator=g).to(xdtype) * step * 4e-4
    near = torch.clamp(near, lo_x, hi_x)
    for pts in (x, near, torch.clamp(x + step / 2, lo_x, hi_x)):
        assert on_grid(pts, lo, hi, levels) == _on_grid_ref(pts, lo, hi, levels)
        assert torch.equal(_bits(snap_point(pts, lo, hi, levels)),
                           _bits(_quantize_ref(pts, pts, 0.0, "linf", lo, hi, levels)))
    span = bounds[1] - bounds[0]
    for eps in (0.0, 0.3 * span / (levels - 1), 8 / 255 * span, 0.1 * span, 2.5 * span, 1e30):
        cand = _candidates(x, lo_x, hi_x, step, eps, g)
        cand = torch.cat([cand, x + 3 * eps, x - 3 * eps])  # outside the ball and the bounds
        cand[0, 0, 0] = float("nan")
        xx = x.repeat(7, 1, 1)
        got = quantize(xx, cand, eps, "linf", lo, hi, levels)
        assert torch.equal(_bits(got), _bits(_quantize_ref(xx, cand, eps, "linf", lo, hi, levels)))


def test_on_grid_of_an_empty_batch() -> None:
    assert on_grid(torch.zeros(3, 0), torch.tensor(0.0), torch.tensor(1.0), 256)


# ------------------------------------------------------------------ grid units (PGD L∞)
def _check_grid_points(pts: torch.Tensor, x: torch.Tensor, eps: float, lo: torch.Tensor,
                       hi: torch.Tensor, levels: int) -> None:
    """Each point is quantize's own output for it (bit for bit), in bounds, within eps."""
    assert torch.equal(_bits(quantize(x, pts, eps, "linf", lo, hi, levels)), _bits(pts))
    assert torch.equal(_bits(_quantize_ref(x, pts, eps, "linf", lo, hi, levels)), _bits(pts))
    assert bool(((pts >= lo) & (pts <= hi)).all())
    step = (hi - lo) / (levels - 1)
    whole = torch.round((pts - x) / step)  # whole grid steps
    kmax = torch.floor(torch.as_tensor(eps, dtype=x.dtype) / step + 1e-6)
    assert bool((whole.abs() <= kmax).all())
    assert bool(((pts - x).abs() <= eps * (1 + 1e-6) + 1e-7).all())


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.5, 1.5), (-1.0, 0.0), (0.1, 0.7)], ids=str)
@pytest.mark.parametrize("levels", [2, 16, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_units_walk_stays_on_quantize_points(levels: int, bounds: tuple[float, float],
                                                  dtype: torch.dtype) -> None:
    """Random walks in grid units: every point is quantize's, in bounds and within eps."""
    g = torch.Generator().manual_seed(levels)
    lo, hi = torch.tensor(bounds[0]), torch.tensor(bounds[1])
    x = _grid_x(lo.to(dtype), hi.to(dtype), levels, (8, 3, 5), g, dtype)
    x = quantize(x, x, 0.0, "linf", lo, hi, levels)  # as the base class hands it to PGD
    span = bounds[1] - bounds[0]
    for eps in (0.0, 0.4 * span / (levels - 1), 8 / 255 * span, 0.1 * span, 3.0 * span):
        units = GridUnits(x, eps, lo, hi, levels)
        assert torch.equal(_bits(units.point(units.k_x)), _bits(x))  # x is its own point
        start = x + (torch.rand(x.shape, generator=g, dtype=dtype) * 2 - 1) * eps
        k = units.start(torch.clamp(start, lo.to(dtype), hi.to(dtype)))
        for stepsize in (2.5 * eps / 10, 0.37 * span / (levels - 1), 10 * eps + 1e-3):
            rate = units.rate(stepsize)
            for _ in range(6):
                direction = torch.randint(-1, 2, x.shape, generator=g).to(dtype)
                units.step_(k, direction, rate)
                _check_grid_points(units.point(k), x, eps, lo, hi, levels)
        keep = torch.tensor([True, False, True, True, False, False, True, False])
        sub = units.subset(keep)
        _check_grid_points(sub.point(k[keep]), x[keep], eps, lo, hi, levels)


def test_grid_units_with_per_feature_bounds() -> None:
    """Per-feature bounds take the tensor path (a tensor rate): still quantize's points."""
    g = torch.Generator().manual_seed(3)
    lo = torch.linspace(-3, 0, 12).reshape(3, 4)
    hi = lo + torch.linspace(0.5, 5, 12).reshape(3, 4)
    x = _grid_x(lo, hi, 16, (8, 3, 4), g, torch.float32)
    for eps in (0.1, 0.4, 1.0):
        units = GridUnits(x, eps, lo, hi, 16)
        rate = units.rate(eps / 3)
        assert isinstance(rate, torch.Tensor)
        k = units.start(x)
        for _ in range(8):
            units.step_(k, torch.randint(-1, 2, x.shape, generator=g).float(), rate)
            _check_grid_points(units.point(k), x, eps, lo, hi, 16)


@pytest.mark.parametrize("levels", [16, 256])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.5, 1.5)], ids=["01", "shifted"])
@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_linf_on_a_grid_only_ever_sees_grid_points(levels: int, bounds: tuple[float, float],
                                                       random_start: bool) -> None:
    """Every input PGD sends the model, and its result, is a grid point within eps."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)).eval()
    model = TorchClassifier(net, bounds=bounds, levels=levels)
    g = torch.Generator().manual_seed(levels)
    lo, hi = torch.tensor(bounds[0]), torch.tensor(bounds[1])
    x = _grid_x(lo, hi, levels, (12, 3, 4), g, torch.float32)
    with torch.no_grad():
        y = net(x).argmax(1)
    y[:3] = (y[:3] + 1) % 5
    seen: list[torch.Tensor] = []
    handle = net.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    span = bounds[1] - bounds[0]
    try:
        for eps in (8 * span / 255, 0.1 * span, 0.3 * span):
            for attack in (PGD(steps=8, early_stop=False, random_start=random_start, seed=1),
                           PGD(steps=6, restarts=2, random_start=random_start, seed=2)):
                seen.clear()
                r = attack(model, x, y, eps=eps)
                assert len(seen) > 0
                for inp in seen:
                    # Which samples a pass covers is not known here: a point within eps of
                    # some x is enough to be checked against every x it could belong to.
                    inp = inp.reshape(-1, 3, 4)
                    ok = torch.zeros(inp.shape[0], dtype=torch.bool)
                    for j in range(x.shape[0]):
                        xj = x[j:j + 1].expand_as(inp)
                        q = quantize(xj, inp, eps, "linf", lo, hi, levels)
                        ok |= (q == inp).flatten(1).all(1) \
                            & ((inp - xj).abs().flatten(1).amax(1) <= eps + 1e-6)
                    assert bool(ok.all())
                _check_grid_points(r.x_adv, x, eps, lo, hi, levels)
                assert torch.equal(r.pred_adv, model.predict(r.x_adv))
                assert torch.equal(r.success, r.pred_adv != y)
                if bounds == (0.0, 1.0) and levels == 256:  # saving as 8-bit changes nothing
                    back = torch.round(r.x_adv * 255).to(torch.uint8).float() / 255
                    assert torch.equal(back, r.x_adv)
    finally:
        handle.remove()


@pytest.mark.parametrize("levels", [17, 256, 65536])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_budget_of_whole_grid_steps_keeps_every_step(levels: int, dtype: torch.dtype) -> None:
    """eps = k/(levels-1) allows exactly k steps, and half a step more still k (in float32
    0.2 / (1/255) is 50.99999: the budget 0.2 = 51/255 once lost a step)."""
    from hoodwink.attacks._norms import whole_steps

    step = torch.tensor(1.0) / (levels - 1)
    ks = range(0, levels, max(1, levels // 300))
    for k in ks:
        assert int(whole_steps(torch.tensor(k / (levels - 1), dtype=dtype), step)) == k
        if k < levels - 1:
            half = torch.tensor((k + 0.5) / (levels - 1), dtype=dtype)
            assert int(whole_steps(half, step)) == k


def test_linf_budget_0_2_reaches_51_of_255() -> None:
    """quantize and the PGD grid path both let eps=0.2 move a pixel by 51/255."""
    from hoodwink.attacks._norms import GridUnits, quantize

    lo, hi = torch.tensor(0.0), torch.tensor(1.0)
    x = torch.full((1, 4), 100 / 255)
    far = torch.ones(1, 4)
    assert torch.equal(quantize(x, far, 0.2, "linf", lo, hi, 256) * 255, torch.full((1, 4), 151.0))
    assert float(GridUnits(x, 0.2, lo, hi, 256).k_hi.max()) == 151.0


def test_the_top_grid_point_never_overshoots_the_upper_bound() -> None:
    """With bounds whose top grid point rounds an ulp above upper in float32 (found by the
    fuzzer), an attack driven to the upper bound still returns points within the bounds."""
    from hoodwink import FGSM, TorchClassifier

    lo, hi = -0.43312692642211914, 0.6486794352531433
    net = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    model = TorchClassifier(net.eval(), bounds=(lo, hi), levels=256)
    x = torch.full((1, 3), lo)
    r = FGSM(norm="l2")(model, x, target=1, eps=1.2)  # the whole step on one feature
    assert float(r.x_adv.max()) <= hi and float(r.x_adv.max()) > hi - 1e-6


def test_seed_none_leaves_the_global_generator_alone() -> None:
    from hoodwink import PGD, TorchClassifier

    model = TorchClassifier(torch.nn.Linear(3, 2).eval(), bounds=(0, 1))
    x = torch.rand(2, 3)
    state = torch.random.get_rng_state()
    PGD(seed=None, steps=2)(model, x, eps=0.1)
    assert torch.equal(torch.random.get_rng_state(), state)

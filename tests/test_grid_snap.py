"""The L∞ grid snap's fast path is `quantize`, bit for bit, and PGD's results do not change.

`GridSnap` computes `quantize`'s arithmetic with fewer full-size ops: the division and
the subtraction of x's grid index as one `addcdiv`, and no clamp for iterates known to lie
in a box where the clamp cannot bind (`promise_box`). PGD also takes an improving iterate as
its best without copying it. Every one of these must leave `x_adv` and `queries` exactly as
they were; these tests compare against `quantize` and against PGD with the shortcuts off.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import hoodwink.attacks.pgd as pgd_module
from hoodwink import PGD, TorchClassifier
from hoodwink.attacks._norms import GridSnap, quantize

BOUNDS = [(0.0, 1.0), (-0.5, 1.5), (-1.0, 0.0)]


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("bounds", BOUNDS, ids=lambda b: f"{b[0]}..{b[1]}")
@pytest.mark.parametrize("levels", [2, 16, 256])
def test_linf_snap_is_quantize(levels: int, bounds: tuple[float, float],
                               dtype: torch.dtype) -> None:
    """Random, half-way and box-edge points snap exactly as quantize does, in and out of the box."""
    g = torch.Generator().manual_seed(levels)
    lo, hi = torch.tensor(bounds[0], dtype=dtype), torch.tensor(bounds[1], dtype=dtype)
    step = (hi - lo) / (levels - 1)
    x = _grid_x(lo, hi, levels, (6, 5, 7), g, dtype)
    span = bounds[1] - bounds[0]
    for eps in (0.0, 0.5 * float(step), float(step), 2.5 * float(step), 8 * span / 255,
                0.1 * span, 25.5 * float(step), 1.3 * span):
        xx = x.repeat(5, 1, 1)
        cand = _candidates(x, lo, hi, step, eps, g)
        ref = quantize(xx, cand, eps, "linf", lo, hi, levels)
        snap = GridSnap(xx, eps, "linf", lo, hi, levels)
        assert torch.equal(snap(cand), ref)
        # Points outside the box (inside=False) are still snapped exactly.
        wild = cand + (torch.rand(cand.shape, generator=g, dtype=dtype) - 0.5) * 4 * eps
        wild = torch.clamp(wild, lo, hi)
        assert torch.equal(snap(wild), quantize(xx, wild, eps, "linf", lo, hi, levels))
        snap.promise_box(torch.maximum(xx - eps, lo), torch.minimum(xx + eps, hi))
        assert torch.equal(snap(cand, inside=True), ref)
        keep = torch.rand(xx.shape[0], generator=g) < 0.5
        assert torch.equal(snap.subset(keep)(cand[keep], inside=True), ref[keep])


def test_promise_box_skips_the_clamp_only_where_it_cannot_bind() -> None:
    """8/255 on the 8-bit grid: the clamp is dropped; 0.1 (25.5 steps): it is kept."""
    g = torch.Generator().manual_seed(0)
    lo, hi = torch.tensor(0.0), torch.tensor(1.0)
    x = _grid_x(lo, hi, 256, (20, 28, 28), g, torch.float32)
    for eps, skips in ((8 / 255, True), (0.1, False), (3 / 255, True)):
        snap = GridSnap(x, eps, "linf", lo, hi, 256)
        snap.promise_box(torch.maximum(x - eps, lo), torch.minimum(x + eps, hi))
        assert snap._inner is skips
        cand = _candidates(x, lo, hi, (hi - lo) / 255, eps, g)
        xx = x.repeat(5, 1, 1)
        snap = GridSnap(xx, eps, "linf", lo, hi, 256)
        snap.promise_box(torch.maximum(xx - eps, lo), torch.minimum(xx + eps, hi))
        assert torch.equal(snap(cand, inside=True), quantize(xx, cand, eps, "linf", lo, hi, 256))


def test_per_feature_bounds_snap_is_quantize() -> None:
    """Per-feature bounds (tabular) take the unfused path and stay exact."""
    g = torch.Generator().manual_seed(3)
    lo = torch.linspace(-3, 0, 12).reshape(3, 4)
    hi = lo + torch.linspace(0.5, 5, 12).reshape(3, 4)
    x = _grid_x(lo, hi, 16, (8, 3, 4), g, torch.float32)
    for eps in (0.1, 0.4, 1.0):
        step = (hi - lo) / 15
        cand = _candidates(x, lo, hi, step, eps, g)
        xx = x.repeat(5, 1, 1)
        snap = GridSnap(xx, eps, "linf", lo, hi, 16)
        snap.promise_box(torch.maximum(xx - eps, lo), torch.minimum(xx + eps, hi))
        assert torch.equal(snap(cand, inside=True), quantize(xx, cand, eps, "linf", lo, hi, 16))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_addcdiv_is_a_division_then_one_addition(dtype: torch.dtype) -> None:
    """The fused op rounds as `x / step - k` does (no reciprocal, no single rounding)."""
    g = torch.Generator().manual_seed(1)
    step = torch.tensor(1.0, dtype=dtype) / 255
    x = torch.cat([torch.rand(1 << 20, generator=g, dtype=dtype),
                   (torch.arange(0, 511, dtype=dtype) / 2) * step,  # ties
                   torch.arange(0, 256, dtype=dtype) / 255])
    k = torch.round(torch.rand(x.shape, generator=g, dtype=dtype) * 255)
    assert torch.equal(torch.addcdiv(-k, x, step), torch.div(x, step) - k)


# ---------------------------------------------------------------------- PGD before/after
class _ReferenceSnap(GridSnap):
    """GridSnap as plain quantize: no fused op, never skips the clamp."""

    def promise_box(self, box_lo: torch.Tensor, box_hi: torch.Tensor) -> None:
        self._inner = False

    def __call__(self, x_adv: torch.Tensor, *, inside: bool = False) -> torch.Tensor:
        return quantize(self.x, x_adv, self.eps, self.norm, self.lower, self.upper, self.levels)


def _pgd_pair(monkeypatch: pytest.MonkeyPatch, attack: PGD, model: TorchClassifier,
              x: torch.Tensor, y: torch.Tensor, eps: float, **kw: Any) -> tuple[Any, Any]:
    fast = attack(model, x, y, eps=eps, **kw)
    with monkeypatch.context() as m:
        m.setattr(pgd_module, "GridSnap", _ReferenceSnap)
        m.setattr(pgd_module, "_REUSE_ITERATE", False)
        ref = attack(model, x, y, eps=eps, **kw)
    return fast, ref


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("levels", [16, 256])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (-0.5, 1.5)], ids=["01", "shifted"])
@pytest.mark.parametrize("history", [0, 2**21], ids=["each-step", "deferred"])
def test_pgd_on_a_grid_is_unchanged(monkeypatch: pytest.MonkeyPatch, norm: str, levels: int,
                                    bounds: tuple[float, float], history: int) -> None:
    """PGD with the fast snap and iterate reuse returns exactly what the plain path returns."""
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

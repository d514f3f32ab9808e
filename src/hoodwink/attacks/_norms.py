"""Norm geometry shared by every attack: norms, steepest steps, projections, grids.

All functions work per sample on batches of shape (N, ...) and never modify
their arguments.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = [
    "GridUnits",
    "NormName",
    "clip_to_bounds",
    "norms",
    "on_grid",
    "project",
    "quantize",
    "random_start",
    "range_diameter",
    "scalar_bounds",
    "snap_point",
    "steepest_step",
]

NormName = Literal["linf", "l2", "l1"]


def _bshape(x: torch.Tensor) -> tuple[int, ...]:
    return (x.shape[0],) + (1,) * (x.ndim - 1)


def norms(delta: torch.Tensor, norm: NormName) -> torch.Tensor:
    """Per-sample norm of ``delta``, shape (N,)."""
    flat = delta.reshape(delta.shape[0], -1)
    if flat.shape[1] == 0:
        return flat.new_zeros(flat.shape[0])
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l2":
        out: torch.Tensor = torch.linalg.vector_norm(flat, ord=2, dim=1)
        return out
    return flat.abs().sum(dim=1)


def range_diameter(lower: torch.Tensor, upper: torch.Tensor, norm: NormName, dims: int) -> float:
    """The whole input range in ``norm``: ``max(upper - lower) * dims ** (1/p)``.

    A budget above it leaves an attack unconstrained; the attacks' EpsScaleWarning
    and the CLI's budget policy both measure against it.
    """
    span = float((upper - lower).max())
    return span * (1.0 if norm == "linf" else float(dims) ** (1.0 if norm == "l1" else 0.5))


def scalar_bounds(lower: torch.Tensor, upper: torch.Tensor) -> tuple[float, float] | None:
    """The bounds as Python numbers when both are 0-d, else None.

    The same values: an op casts a Python number to its own dtype exactly as it
    casts a 0-d tensor operand, but with a 0-d tensor many torch ops take a slow,
    unvectorised path (comparisons ~6x, ``torch.where`` ~10x slower at batch 500).
    """
    if lower.ndim == 0 and upper.ndim == 0:
        return float(lower), float(upper)
    return None


def clip_to_bounds(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Clamp elementwise into ``[lower, upper]`` (bounds broadcast to one input)."""
    if lower.ndim == 0 and upper.ndim == 0 and lower.device.type == "cpu" \
            and upper.device.type == "cpu":
        # Scalar bounds as numbers: torch.clamp with 0-d tensor bounds takes an
        # unvectorised path (10x slower at batch 500); the values are the same.
        return torch.clamp(x, float(lower), float(upper))
    return torch.clamp(x, lower, upper)  # one op: attacks call this once a step


def _project_l1(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    # Euclidean projection onto the L1 ball (Duchi et al., ICML 2008), per sample.
    n = delta.shape[0]
    flat = delta.reshape(n, -1)
    a = flat.abs()
    inside = a.sum(dim=1) <= eps
    if bool(inside.all()):
        return delta
    mu, _ = torch.sort(a, dim=1, descending=True)
    cums = mu.cumsum(dim=1)
    ks = torch.arange(1, a.shape[1] + 1, device=a.device, dtype=a.dtype)
    cond = mu - (cums - eps[:, None]) / ks > 0
    rho = cond.to(a.dtype).cumsum(dim=1).argmax(dim=1)  # last index where cond holds
    rho = torch.where(cond.any(dim=1), rho, torch.zeros_like(rho))
    theta = (cums.gather(1, rho[:, None])[:, 0] - eps) / (rho + 1).to(a.dtype)
    theta = theta.clamp_min(0)
    proj = flat.sign() * (a - theta[:, None]).clamp_min(0)
    # a - theta rounds at the scale of a, not of eps: when |delta| >> eps the sum can land
    # a few ulps(a) outside the ball. Rescaling puts it back to within an ulp of eps.
    total = proj.abs().sum(dim=1, keepdim=True)
    proj = torch.where(total > eps[:, None], proj * (eps[:, None] / total), proj)
    out = torch.where(inside[:, None], flat, proj)
    return out.reshape(delta.shape)


def project(delta: torch.Tensor, eps: torch.Tensor | float, norm: NormName) -> torch.Tensor:
    """Project each sample of ``delta`` onto the ``norm`` ball of radius ``eps``.

    Parameters
    ----------
    delta : torch.Tensor, shape (N, ...)
    eps : float or torch.Tensor of shape (N,)
    norm : {"linf", "l2", "l1"}
    """
    if norm == "linf" and isinstance(eps, float):
        return delta.clamp(-eps, eps)  # the common case, in one op
    e = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).expand(delta.shape[0])
    if norm == "linf":
        eb = e.reshape(_bshape(delta))
        return torch.maximum(torch.minimum(delta, eb), -eb)
    if norm == "l2":
        nrm = norms(delta, "l2")
        factor = torch.where(nrm > e, e / nrm.clamp_min(1e-30), torch.ones_like(nrm))
        return delta * factor.reshape(_bshape(delta))
    return _project_l1(delta, e)


def steepest_step(
    grad: torch.Tensor, norm: NormName, *, l1_sparsity: float = 0.9
) -> torch.Tensor:
    """Unit-norm steepest-ascent direction for ``grad`` under ``norm``.

    For L∞ this is ``sign(grad)`` (the fast gradient sign direction), for L2 the
    normalised gradient, and for L1 a sparse sign step on the coordinates whose
    gradient magnitude is in the top ``1 - l1_sparsity`` fraction, scaled to
    unit L1 norm (Tramèr and Boneh, 2019). Samples with a zero gradient get a
    zero step.
    """
    if norm == "linf":
        return grad.sign()
    flat = grad.reshape(grad.shape[0], -1)
    if norm == "l2":
        nrm = flat.norm(dim=1, keepdim=True)
        # An infinite or NaN entry (a preprocessing such as x ** 0.5 at 0), a norm that
        # overflows or underflows: normalise by the largest entry first, inf counting as
        # the largest and NaN as 0. Finite gradients keep the plain quotient, bit for bit.
        safe = torch.nan_to_num(flat, nan=0.0)
        safe = safe / safe.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(flat.dtype).tiny)
        safe = safe / safe.norm(dim=1, keepdim=True).clamp_min(1e-30)
        ok = (nrm > 0) & torch.isfinite(nrm)
        out = torch.where(ok, flat / nrm.clamp_min(1e-30), safe)
        return out.reshape(grad.shape)
    flat = torch.nan_to_num(flat, nan=0.0)  # NaN: no information; inf: the largest entry
    a = flat.abs()
    k = max(1, int(round((1.0 - l1_sparsity) * a.shape[1])))
    thresh = a.topk(k, dim=1).values[:, -1:]
    mask = (a >= thresh) & (a > 0)
    step = flat.sign() * mask
    count = mask.sum(dim=1, keepdim=True).clamp_min(1)
    return (step / count).reshape(grad.shape)


def random_start(
    x: torch.Tensor, eps: torch.Tensor | float, norm: NormName, generator: torch.Generator
) -> torch.Tensor:
    """A random perturbation inside the ``norm`` ball of radius ``eps``.

    Drawn on the CPU with ``generator`` and moved to ``x``'s device, so a seed
    gives the same start on every device.
    """
    shape = x.shape
    e = torch.as_tensor(eps, dtype=torch.float32).expand(shape[0]).reshape(_bshape(x))
    if norm == "linf":
        d = (torch.rand(shape, generator=generator) * 2 - 1) * e
    else:
        g = torch.randn(shape, generator=generator)
        if norm == "l1":
            g = g.sign() * torch.empty(shape).exponential_(generator=generator)
        u = torch.rand((shape[0],), generator=generator).reshape(_bshape(x))
        d = g / norms(g, norm).clamp_min(1e-30).reshape(_bshape(x)) * e * u
    return d.to(device=x.device, dtype=x.dtype)


def quantize(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    eps: torch.Tensor | float,
    norm: NormName,
    lower: torch.Tensor,
    upper: torch.Tensor,
    levels: int,
) -> torch.Tensor:
    """Snap ``x_adv`` to the quantisation grid without leaving the eps-ball.

    ``x`` must lie on the grid ``lower + k (upper - lower) / (levels - 1)``.
    Each coordinate's offset is rounded to the nearest grid step; where that
    would leave the ball (L∞: beyond ``eps``; L2/L1: norm above ``eps``), the
    offsets are truncated towards ``x`` instead, which can only shrink the norm.
    The result stays within the bounds because both ``x`` and the bounds are
    grid points.
    """
    if _fast_grid(x, lower, upper) and norm == "linf" and isinstance(eps, int | float) \
            and x_adv.dtype == x.dtype:
        return _quantize_linf_scalar(x, x_adv, float(eps), lower, upper, levels)
    span = upper - lower
    step = span / (levels - 1)
    k_x = torch.round((x - lower) / step)
    k_off = (x_adv - lower) / step - k_x
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[0])
    rounded = torch.round(k_off)
    if norm == "linf":
        # Largest whole number of steps within eps, per feature (the step may vary).
        kmax = whole_steps(e.reshape(_bshape(x)), step)
        k = torch.maximum(torch.minimum(rounded, kmax), -kmax)
    else:
        ok = norms(rounded * step, norm) <= e * (1 + 1e-6)
        k = torch.where(ok.reshape(_bshape(x)), rounded, torch.trunc(k_off))
    kk = (k_x + k).clamp(min=0, max=levels - 1)
    # lower + (k * span) / (levels - 1): computed this way k/255 is bit-identical to
    # what reading an 8-bit file back gives, so a PNG round trip changes nothing. At the
    # top index it can round an ulp above upper (lower + span != upper in floats): cap it.
    return torch.minimum(lower + (kk * span) / (levels - 1), upper)


_EXACT_DTYPES = (torch.float32, torch.float64)


def whole_steps(eps: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """The largest whole number of grid steps within ``eps``, in ``eps``'s dtype.

    ``floor(r + 1e-6 + 2.5e-7 * r)`` with ``r = eps / step`` in float64. ``eps``
    and ``step`` usually arrive rounded to float32 (relative error up to 6e-8
    each), so ``k/255 / (1/255)`` can come out as ``k - 1e-5``: without the
    relative allowance the budget 0.2 = 51/255 would silently lose a step (as
    would every k/255 from 49 up). The allowance covers exactly that rounding.
    """
    r = eps.double() / step.double()
    return torch.floor(r + 1e-6 + 2.5e-7 * r).to(eps.dtype)


def _fast_grid(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> bool:
    """Whether the grid arithmetic may run with the bounds as Python numbers, bit for bit.

    0-d bounds, ``x`` in a dtype that computes in itself (float16 computes in
    float32, where a number and a 0-d tensor could round differently), and a lower
    bound other than -0.0 (adding it is what turns a -0.0 grid point into +0.0).
    """
    if lower.ndim != 0 or upper.ndim != 0 or x.dtype not in _EXACT_DTYPES:
        return False
    lo = float(lower)
    return lo != 0 or math.copysign(1.0, lo) > 0


def _grid_numbers(lower: torch.Tensor, upper: torch.Tensor,
                  levels: int) -> tuple[float, float, float, bool]:
    """lower, span and step as numbers, computed as quantize does (0-d, in the bounds' dtype),
    and whether the lower bound is +0.0 (subtracting it then changes nothing but the sign of a
    zero, which the final addition of the lower bound erases)."""
    span = upper - lower
    step = span / (levels - 1)
    lo = float(lower)
    return lo, float(span), float(step), lo == 0


def _quantize_linf_scalar(x: torch.Tensor, x_adv: torch.Tensor, eps: float,
                          lower: torch.Tensor, upper: torch.Tensor, levels: int) -> torch.Tensor:
    """:func:`quantize` for L∞ and 0-d bounds, bit for bit: the same ops in the same order,
    with the bounds as numbers (vectorised) and in place on two fresh buffers."""
    lo, span, step, zero = _grid_numbers(lower, upper, levels)
    # kmax exactly as quantize computes it: a dimensioned tensor of eps over the 0-d step.
    kmax = float(whole_steps(torch.full((1,), eps, dtype=x.dtype, device=x.device),
                             (upper - lower) / (levels - 1))[0])
    k_x = torch.div(x, step) if zero else torch.sub(x, lo).div_(step)
    k_x.round_()
    k = torch.div(x_adv, step) if zero else torch.sub(x_adv, lo).div_(step)
    # round(offset) clamped to +-kmax (quantize's minimum then maximum: the same values).
    k.sub_(k_x).round_().clamp_(-kmax, kmax)
    k.add_(k_x).clamp_(0, levels - 1)
    if span != 1:  # a product with 1 changes no bit
        k.mul_(span)
    return _capped(k.div_(levels - 1).add_(lo), lower, upper, levels, x.dtype)


def snap_point(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
               levels: int) -> torch.Tensor:
    """``quantize(x, x, 0.0, "linf", lower, upper, levels)`` bit for bit: x's grid point.

    With eps 0 quantize's offset ``x / step - round(x / step)`` is at most half a
    step, so it rounds to a zero and the grid index is ``round(x / step)`` clamped;
    only the sign of a zero index can differ, and adding the lower bound erases it.
    """
    if not _fast_grid(x, lower, upper):
        return quantize(x, x, 0.0, "linf", lower, upper, levels)
    lo, span, step, zero = _grid_numbers(lower, upper, levels)
    k = torch.div(x, step) if zero else torch.sub(x, lo).div_(step)
    k.round_().clamp_(0, levels - 1)
    if span != 1:
        k.mul_(span)
    return _capped(k.div_(levels - 1).add_(lo), lower, upper, levels, x.dtype)


def _capped(points: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: int,
            dtype: torch.dtype) -> torch.Tensor:
    """Grid points (0-d bounds) capped at ``upper``, in place, where the top one overshoots.

    ``lower + (k * span) / (levels - 1)`` can round one ulp above ``upper`` at the
    top index for some bounds (e.g. -0.4331 and 0.6487 in float32); for the usual
    ones (0 and 1, 0 and 255) it does not, and no cap is applied.
    """
    cap = _top_cap(lower, upper, levels, dtype)
    return points.clamp_(max=cap) if cap is not None else points


def _top_cap(lower: torch.Tensor, upper: torch.Tensor, levels: int,
             dtype: torch.dtype) -> float | None:
    """``upper`` when the top grid point, computed as the fast path computes it, exceeds it."""
    lo, span, _, zero = _grid_numbers(lower, upper, levels)
    top = torch.full((1,), float(levels - 1), dtype=dtype)
    if span != 1:
        top.mul_(span)
    top.div_(levels - 1)
    if not zero:
        top.add_(lo)
    hi = float(upper)
    return hi if float(top[0]) > hi else None


class GridUnits:
    """L∞ iterates on a quantisation grid, kept as grid indices around a fixed ``x``.

    An iterate is ``k``, in units of the grid step: ``(x_adv - lower) / step``.
    :meth:`step_` adds ``rate * direction`` and clamps ``k`` to the box of whole
    grid steps that :func:`quantize` can reach from ``x``: ``k_x ± kmax``, with
    ``kmax = whole_steps(eps, step)`` as in quantize, intersected with
    ``[0, levels - 1]``. :meth:`point` rounds ``k`` to a grid index and returns
    ``lower + (index * span) / (levels - 1)``, quantize's own formula, so every
    point is bit for bit what quantize returns for that index: within the bounds,
    within eps (whole steps of at most eps), and unchanged by saving as 8-bit.

    Per step this is a step, a clamp, a rounding and a division (bounds (0, 1)),
    where stepping in input units and snapping each iterate with :func:`quantize` takes twice
    as many full-size ops. Iterates differ from that path's: the box is whole grid
    steps, so an iterate is never held half a step beyond the last reachable grid
    point, where the next step would start from.
    """

    def __init__(
        self,
        x: torch.Tensor,
        eps: float,
        lower: torch.Tensor,
        upper: torch.Tensor,
        levels: int,
    ) -> None:
        self.lower, self.upper, self.levels = lower, upper, levels
        self.span = upper - lower
        self.step = self.span / (levels - 1)
        self._numbers = _grid_numbers(lower, upper, levels) if _fast_grid(x, lower, upper) \
            else None
        self._cap = (_top_cap(lower, upper, levels, x.dtype) if self._numbers is not None
                     else None)
        self.k_x = self.units(x).round_()
        # quantize's kmax: eps in x's dtype over the step, shaped as quantize shapes it.
        e = torch.full((1,) * x.ndim, eps, dtype=x.dtype, device=x.device)
        kmax = whole_steps(e, self.step)
        self.k_lo = torch.clamp(self.k_x - kmax, min=0)
        self.k_hi = torch.clamp(self.k_x + kmax, max=levels - 1)

    def units(self, x_adv: torch.Tensor) -> torch.Tensor:
        """``(x_adv - lower) / step`` in a fresh buffer (quantize's arithmetic)."""
        if self._numbers is None:
            return (x_adv - self.lower) / self.step
        lo, _, step, zero = self._numbers
        return torch.div(x_adv, step) if zero else torch.sub(x_adv, lo).div_(step)

    def start(self, x_adv: torch.Tensor) -> torch.Tensor:
        """The iterate of ``x_adv`` (a point of the eps-ball), clamped into the box; fresh."""
        return self.units(x_adv).clamp_(self.k_lo, self.k_hi)

    def rate(self, stepsize: float) -> float | torch.Tensor:
        """``stepsize`` in grid steps (a tensor for per-feature bounds)."""
        if self._numbers is not None:
            return stepsize / self._numbers[2]
        return stepsize / self.step

    def step_(self, k: torch.Tensor, direction: torch.Tensor,
              rate: float | torch.Tensor) -> torch.Tensor:
        """``k += rate * direction``, clamped into the box; in place."""
        if isinstance(rate, torch.Tensor):
            k.addcmul_(direction, rate)
        else:
            k.add_(direction, alpha=rate)
        return k.clamp_(self.k_lo, self.k_hi)

    def point(self, k: torch.Tensor) -> torch.Tensor:
        """The grid point of the rounded index of ``k``, as quantize writes it; fresh."""
        kk = torch.round(k)
        if self._numbers is None:
            return torch.minimum(self.lower + (kk * self.span) / (self.levels - 1), self.upper)
        lo, span, _, zero = self._numbers
        if span != 1:  # a product with 1 changes no bit
            kk.mul_(span)
        kk.div_(self.levels - 1)
        # Adding +0.0 changes no bit here: k >= k_lo >= +0 after every clamp, so the
        # rounded index is never -0.0. Capped where the top grid point overshoots upper.
        out = kk if zero else kk.add_(lo)
        return out.clamp_(max=self._cap) if self._cap is not None else out

    def subset(self, keep: torch.Tensor) -> GridUnits:
        """The same grid for the samples ``keep`` (a mask or index) of ``x``."""
        out = GridUnits.__new__(GridUnits)
        out.lower, out.upper, out.levels = self.lower, self.upper, self.levels
        out.span, out.step, out._numbers = self.span, self.step, self._numbers
        out._cap = self._cap
        out.k_x, out.k_lo, out.k_hi = self.k_x[keep], self.k_lo[keep], self.k_hi[keep]
        return out


def on_grid(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: int) -> bool:
    """Whether every element of ``x`` lies on the quantisation grid (to 1e-4 step)."""
    if x.numel() == 0:
        return True
    if _fast_grid(x, lower, upper):
        # The same arithmetic with the bounds as numbers; subtracting +0.0 and dividing
        # by 1 change no bit but a zero's sign, which abs() drops. The largest distance
        # against the tolerance, as a 0-d tensor: the comparison stays in x's dtype.
        lo, span = float(lower), float(upper - lower)
        k = x if lo == 0 else torch.sub(x, lo)
        if span != 1:
            k = torch.div(k, span)
        k = torch.mul(k, levels - 1)
        k.sub_(torch.round(k)).abs_()
        return bool(k.amax() <= 1e-3)
    k = (x - lower) / (upper - lower) * (levels - 1)
    return bool(((k - torch.round(k)).abs() <= 1e-3).all())

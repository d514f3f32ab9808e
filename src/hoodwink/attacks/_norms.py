"""Norm geometry shared by every attack: norms, steepest steps, projections, grids.

All functions work per sample on batches of shape (N, ...) and never modify
their arguments.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "GridSnap",
    "NormName",
    "clip_to_bounds",
    "norms",
    "on_grid",
    "project",
    "quantize",
    "random_start",
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


def clip_to_bounds(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Clamp elementwise into ``[lower, upper]`` (bounds broadcast to one input)."""
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
        out = torch.where(nrm > 0, flat / nrm.clamp_min(1e-30), torch.zeros_like(flat))
        return out.reshape(grad.shape)
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
    span = upper - lower
    step = span / (levels - 1)
    k_x = torch.round((x - lower) / step)
    k_off = (x_adv - lower) / step - k_x
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[0])
    rounded = torch.round(k_off)
    if norm == "linf":
        # Largest whole number of steps within eps, per feature (the step may vary).
        eb = e.reshape(_bshape(x))
        kmax = torch.floor(eb / step + 1e-6)
        k = torch.maximum(torch.minimum(rounded, kmax), -kmax)
    else:
        ok = norms(rounded * step, norm) <= e * (1 + 1e-6)
        k = torch.where(ok.reshape(_bshape(x)), rounded, torch.trunc(k_off))
    kk = (k_x + k).clamp(min=0, max=levels - 1)
    # lower + (k * span) / (levels - 1): computed this way k/255 is bit-identical to
    # what reading an 8-bit file back gives, so a PNG round trip changes nothing.
    return lower + (kk * span) / (levels - 1)


class GridSnap:
    """:func:`quantize` around a fixed ``x``, with the parts that depend only on ``x`` done once.

    ``GridSnap(x, eps, norm, lower, upper, levels)(x_adv)`` equals
    ``quantize(x, x_adv, eps, norm, lower, upper, levels)`` bit for bit. Attacks
    snap every iterate around the same ``x``; for L∞ this halves the work per
    call (9 elementwise ops instead of 17). :meth:`subset` follows the attack's
    active samples.
    """

    def __init__(
        self,
        x: torch.Tensor,
        eps: float,
        norm: NormName,
        lower: torch.Tensor,
        upper: torch.Tensor,
        levels: int,
        *,
        _state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.x, self.eps, self.norm = x, eps, norm
        self.lower, self.upper, self.levels = lower, upper, levels
        self.span = upper - lower
        self.step = self.span / (levels - 1)
        if norm != "linf":
            return
        # Bounds (0, 1), the usual case: subtracting 0 and multiplying by 1 change no
        # bit, so those two full-size ops are skipped.
        self._shift = not bool((lower == 0).all())
        self._scale = not bool((self.span == 1).all())
        if _state is not None:
            self.k_x, self.k_lo, self.k_hi = _state
            return
        # As in quantize: k = clamp(round(offset), -kmax, kmax), then k_x + k clamped to
        # [0, levels - 1]. For whole numbers that equals clamping k to
        # [max(-kmax, -k_x), min(kmax, levels - 1 - k_x)], computed here once.
        self.k_x = torch.round((x - lower) / self.step)
        e = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
        kmax = torch.floor(e / self.step + 1e-6)
        self.k_lo = torch.maximum(-kmax, -self.k_x)
        self.k_hi = torch.minimum(kmax, (levels - 1) - self.k_x)

    def subset(self, keep: torch.Tensor) -> GridSnap:
        """The same snap for the samples ``keep`` (a mask or index) of ``x``."""
        state = (self.k_x[keep], self.k_lo[keep], self.k_hi[keep]) if self.norm == "linf" \
            else None
        return GridSnap(self.x[keep], self.eps, self.norm, self.lower, self.upper, self.levels,
                        _state=state)

    def __call__(self, x_adv: torch.Tensor) -> torch.Tensor:
        if self.norm != "linf":
            return quantize(self.x, x_adv, self.eps, self.norm, self.lower, self.upper,
                            self.levels)
        # quantize's arithmetic, op for op, in place on one fresh buffer: at batch 500
        # each allocation of a full-size result costs as much as the op itself.
        k = torch.sub(x_adv, self.lower).div_(self.step) if self._shift \
            else torch.div(x_adv, self.step)
        k.sub_(self.k_x).round_().clamp_(self.k_lo, self.k_hi).add_(self.k_x)
        if self._scale:
            k.mul_(self.span)
        k.div_(self.levels - 1)
        return k.add_(self.lower) if self._shift else k


def on_grid(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, levels: int) -> bool:
    """Whether every element of ``x`` lies on the quantisation grid (to 1e-4 step)."""
    k = (x - lower) / (upper - lower) * (levels - 1)
    return bool(((k - torch.round(k)).abs() <= 1e-3).all())

"""SimBA, the simple black-box attack (Guo et al., ICML 2019): one direction at a time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch

from hoodwink._validation import Interval, Options
from hoodwink.attacks._gate import QueryGate, score_loss
from hoodwink.attacks._norms import NormName, clip_to_bounds, quantize, snap_point
from hoodwink.attacks.base import AttackInputs, BlackBoxAttack
from hoodwink.errors import ConfigError
from hoodwink.losses import LossName

__all__ = ["Basis", "SimBA"]

Basis = Literal["pixel", "dct"]


@dataclass(frozen=True, kw_only=True)
class SimBA(BlackBoxAttack):
    """SimBA, the simple black-box attack (Guo, Gardner, You, Wilson and
    Weinberger, "Simple Black-box Adversarial Attacks", ICML 2019).

    Directions ``q`` are taken one at a time from an orthonormal basis, in a
    random order drawn from the attack's seed. For each, the attack tries
    ``x_adv + step * q``; only if that does not raise the loss does it try
    ``x_adv - step * q``; a candidate that raises the loss is kept. So each
    direction costs one or two queries per sample, all samples in one batched
    call per try, and the loss never goes down. A sample stops at its first
    adversarial point.

    The loss is the paper's: the probability of the true class (untargeted,
    pushed down) or of the target (pushed up), compared as log-probabilities
    (``loss="ce"``: the cross-entropy, negated when targeted); ``loss="margin"``
    uses the logit margin instead.

    Bases:

    - ``"pixel"``: the standard basis, one feature per direction, every feature
      once per pass in a random permutation (a new one for each pass). It works
      for inputs of any shape.
    - ``"dct"``: the low-frequency 2-D DCT-II basis of each channel, for images
      (N, C, H, W) only (other shapes raise :class:`~hoodwink.errors.ConfigError`).
      The directions with frequencies below ``freq_dims`` on both axes come
      first, in random order, over all channels; then the frequencies beyond,
      band by band (each band a quarter of ``freq_dims`` wider, in random order
      within it), as the paper's "strided" order.

    Each candidate is clipped to the bounds and to the eps-ball: L2, scaled
    back onto the ball when the step would leave it (the paper's perturbation
    is L2-bounded by construction, ``step * sqrt(#accepted)``, since the
    directions are orthonormal); L∞, clipped to the ball feature by feature.
    When the model has ``levels``, candidates are snapped to its grid (with
    :func:`~hoodwink.attacks._norms.quantize`), so that the point queried is
    the point returned, and with the pixel basis the step is a whole number of
    grid steps, at least one (0.2 is 51 steps of an 8-bit grid over [0, 1]).
    On a grid a DCT step smaller than about one grid step per pixel is lost to
    rounding: raise ``step`` for large images. A candidate equal to the current
    point (clipped away by the ball or the bounds) is not queried.

    Threat model: scores (logits or probabilities; never gradients), untargeted
    or targeted, L2 or L∞ ball of radius ``eps``.

    Cost: one query per sample at ``x`` (the clean pass), then one or two per
    direction while the sample is not adversarial, and the base class's
    verification pass: at most ``max_queries`` in all; a sample with one query
    left tries only ``+step``. Samples already adversarial at ``x`` are
    returned unchanged.

    Parameters
    ----------
    norm : {"l2", "linf"}, default "l2"
    basis : {"pixel", "dct"}, default "pixel"
    step : float > 0, default 0.2
        SimBA's step size (the paper's epsilon), in raw input units: the change
        of one feature (pixel basis) or the L2 length of the step (DCT basis).
        The paper's 0.2 is for images in [0, 1].
    freq_dims : int >= 1 or None, default None
        DCT basis: how many of the lowest frequencies per axis come first. None
        uses a quarter of each side (7 of 28 for MNIST; the paper takes 28 of
        224, an eighth, on ImageNet). Ignored by the pixel basis.
    loss : {"ce", "margin", "dlr"}, default "ce"
    max_queries : int in [2, 10**9], default 1000
        Most model calls per sample, the clean and verification passes included.
    seed : int >= 0 or None, default 0
        Seed of the attack's random generator (the order of the directions).

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.simba import SimBA
    >>> net = torch.nn.Linear(6, 2, bias=False).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1., 1., 1., 0., 0., 0.],
    ...                                        [0., 0., 0., 1., 1., 1.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(0, 1))
    >>> x = torch.tensor([[0.6, 0.6, 0.6, 0.5, 0.5, 0.5]])  # class 0 by 0.3
    >>> result = SimBA(norm="linf", step=0.1, max_queries=50)(model, x, eps=0.1)
    >>> bool(result.success[0]), int(result.queries[0]) <= 50
    (True, True)
    >>> bool((result.x_adv - x).abs().max() <= 0.1 + 1e-6)
    True
    """

    norm: NormName = "l2"
    basis: Basis = "pixel"
    step: float = 0.2
    freq_dims: int | None = None
    loss: LossName = "ce"

    supported_norms: ClassVar[tuple[str, ...]] = ("l2", "linf")

    _constraints = {
        "basis": (Options(get_args(Basis)),),
        "step": (Interval(float, 0, None, closed="neither"),),
        "freq_dims": (Interval(int, 1, None), None),
        "loss": (Options(get_args(LossName)),),
    }

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        x = inputs.x
        if self.basis == "dct" and x.ndim != 4:
            raise ConfigError(
                f"SimBA(basis='dct') needs images of shape (N, C, H, W); x has shape "
                f"{tuple(x.shape)}. Use basis='pixel' for inputs of other shapes."
            )
        scores = self._clean_scores(model, inputs)
        pred_clean = inputs.pred_clean
        targeted = inputs.targeted
        report = inputs.progress
        total = self.max_queries
        todo = ~inputs.is_adversarial(pred_clean) & model.can_query(None, 1)
        idx = todo.nonzero()[:, 0]
        if idx.numel() == 0 or inputs.eps == 0:
            if report is not None:
                report(total, total, "nothing to attack")
            inputs.expect(x, pred_clean)
            return x.clone()
        clean_loss = score_loss(scores, inputs.labels, model.capabilities.output,
                                loss=self.loss, targeted=targeted)
        space = _Space(self.norm, model, inputs)
        if self.basis == "dct" and model.levels is not None:
            self._check_dct_step(space, x)
        directions = self._directions(x, space, inputs.generator)
        n_dirs = space.d if self.basis == "pixel" else _dct_count(x)

        best = space.x.clone()
        best_pred = pred_clean.clone()
        # The state of the active samples: current point (the best so far), its loss
        # and prediction, queries left, and directions in a row that changed nothing.
        cur = best[idx]
        lab = inputs.labels[idx]
        a_loss = clean_loss[idx]
        a_pred = pred_clean[idx]
        left = model.remaining(idx)
        idle = torch.zeros_like(left)
        adv = torch.zeros_like(lab, dtype=torch.bool)
        # L∞ with the pixel basis moves one feature within a box: only that column is
        # computed (the ball and the bounds, snapped to the grid, once per active set).
        columns = self.basis == "pixel" and self.norm == "linf"
        box = space.box(idx) if self.norm == "linf" else None
        if box is not None:  # a box of one point (eps below a grid step): nothing to try
            idle = torch.where((box[0] == box[1]).all(dim=1), n_dirs, idle)
        for i, vec in directions:
            tried = torch.zeros_like(adv)  # improved this direction
            moved = torch.zeros_like(adv)
            for sign in (1.0, -1.0):
                if columns and box is not None:
                    col = cur[:, i]
                    new = space.column(col + sign * vec[i], i, box)
                    go = (new != col) & ~tried & (left > 0)
                else:
                    full = space.project(cur + sign * vec, idx, box)
                    go = (full != cur).any(dim=1) & ~tried & (left > 0)
                moved |= go
                pos = go.nonzero()[:, 0]
                if pos.numel() == 0:
                    continue
                if columns:
                    cand = cur[pos]
                    cand[:, i] = new[pos]
                else:
                    cand = full[pos]
                loss, pred = model.loss(space.shaped(cand), lab[pos], loss=self.loss,
                                        targeted=targeted, rows=idx[pos])
                left[pos] -= 1
                hit = pred == lab[pos] if targeted else pred != lab[pos]
                better = hit | (loss > a_loss[pos])
                good = pos[better]
                cur[good] = cand[better]
                a_loss[good] = loss[better]
                a_pred[good] = pred[better]
                adv[good] = hit[better]
                tried[good] = True
            idle = torch.where(moved, 0, idle + 1)
            if report is not None:
                report(min(int(model.used.max()), total), total, "searching")
            # Stop a sample when it is adversarial, out of queries, or when a whole pass
            # over the basis changed nothing (the ball and the bounds leave no room).
            drop = adv | (left == 0) | (idle >= n_dirs)
            if bool(drop.any()):
                out = idx[drop]
                best[out] = cur[drop]
                best_pred[out] = a_pred[drop]
                keep = ~drop
                idx, lab, cur = idx[keep], lab[keep], cur[keep]
                a_loss, a_pred, left = a_loss[keep], a_pred[keep], left[keep]
                idle, adv = idle[keep], adv[keep]
                box = None if box is None else (box[0][keep], box[1][keep])
                if idx.numel() == 0:
                    break
        if report is not None:
            report(total, total, "done")
        x_adv = best.view(x.shape)
        inputs.expect(x_adv, best_pred)
        return x_adv

    def _check_dct_step(self, space: _Space, x: torch.Tensor) -> None:
        """Refuse a DCT step that no pixel of any direction feels on the model's grid.

        A 2-D DCT basis image of H x W pixels is at most 2 / sqrt(H W) in any pixel, so
        a step below half a grid step times sqrt(H W) / 2 rounds back to the current
        point for every direction, and the attack could only loop without a query.
        """
        h, w = x.shape[2], x.shape[3]
        grid = float(space.grid_step().min())
        need = grid / 2 * math.sqrt(h * w) / 2
        if self.step * 2 / math.sqrt(h * w) < grid / 2:
            raise ConfigError(
                f"SimBA(basis='dct') with step={self.step:g} moves no pixel of a {h}x{w} "
                f"image by half a grid step ({grid:.4g}, levels={space.levels}), so every "
                f"candidate rounds back to the current point. Use step > {need:.3g}, or "
                "basis='pixel', or a model without levels."
            )

    def _directions(self, x: torch.Tensor, space: _Space,
                    gen: torch.Generator) -> Iterator[tuple[int, torch.Tensor]]:
        """``(i, step * q)`` for each direction q in order, endless: for the pixel basis
        q is feature i; for the DCT basis i is -1. The vectors are flat, (D,)."""
        d, dev, dtype = space.d, x.device, x.dtype
        if self.basis == "pixel":
            step = space.pixel_step(self.step)
            while True:
                for i in torch.randperm(d, generator=gen).tolist():
                    vec = torch.zeros(d, device=dev, dtype=dtype)
                    vec[i] = step[i]
                    yield i, vec
        c, h, w = x.shape[1:]
        fh, fw = (min(self.freq_dims, h), min(self.freq_dims, w)) if self.freq_dims \
            else (max(1, round(h / 4)), max(1, round(w / 4)))
        cos_h = _dct_matrix(h).to(device=dev, dtype=dtype)
        cos_w = _dct_matrix(w).to(device=dev, dtype=dtype)
        while True:
            for ch, u, v in _dct_order(c, h, w, fh, fw, gen).tolist():
                vec = torch.zeros(c, h, w, device=dev, dtype=dtype)
                vec[ch] = torch.outer(cos_h[u], cos_w[v]) * self.step
                yield -1, vec.reshape(-1)


class _Space:
    """Flat (N, D) geometry of one call: projection onto the ball, the bounds and the grid."""

    def __init__(self, norm: str, model: QueryGate, inputs: AttackInputs) -> None:
        x = inputs.x
        self.norm = norm
        self.eps = inputs.eps
        self.shape = x.shape
        self.d = math.prod(x.shape[1:])
        self.x = x.reshape(x.shape[0], -1)
        self.lo, self.hi = model.bounds
        one = torch.zeros(x.shape[1:], dtype=self.lo.dtype, device=self.lo.device)
        self.lo_flat = (self.lo + one).reshape(-1)
        self.hi_flat = (self.hi + one).reshape(-1)
        self.levels = model.levels

    def shaped(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape((t.shape[0],) + tuple(self.shape[1:]))

    def grid_step(self) -> torch.Tensor:
        """The grid step of every feature (D,) (the model has levels)."""
        one = torch.ones(self.shape[1:], dtype=self.x.dtype, device=self.x.device)
        return ((self.hi - self.lo) / ((self.levels or 2) - 1) * one).reshape(-1).to(self.x.dtype)

    def pixel_step(self, step: float) -> torch.Tensor:
        """The pixel basis's step per feature (D,): whole grid steps (at least one) on a grid."""
        x = self.x
        if self.levels is None:
            return torch.full((self.d,), step, dtype=x.dtype, device=x.device)
        grid = self.grid_step()
        return torch.round(step / grid).clamp_min(1) * grid

    def box(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L∞: the ends of the ball within the bounds (grid points on a grid), per active
        sample, flat."""
        xa = self.shaped(self.x[idx])
        lo = clip_to_bounds(xa - self.eps, self.lo, self.hi)
        hi = clip_to_bounds(xa + self.eps, self.lo, self.hi)
        if self.levels is not None:
            lo = quantize(xa, lo, self.eps, "linf", self.lo, self.hi, self.levels)
            hi = quantize(xa, hi, self.eps, "linf", self.lo, self.hi, self.levels)
        return lo.reshape(idx.numel(), -1), hi.reshape(idx.numel(), -1)

    def column(self, v: torch.Tensor, i: int,
               box: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Feature ``i`` of the active samples, (m,), clamped into the L∞ box, on the grid."""
        v = torch.clamp(v, box[0][:, i], box[1][:, i])
        if self.levels is None:
            return v
        # The box's ends are grid points, so the nearest grid point stays inside it.
        return snap_point(v, self.lo_flat[i], self.hi_flat[i], self.levels)

    def project(self, cand: torch.Tensor, idx: torch.Tensor,
                box: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Candidates (m, D) of samples ``idx``, in the ball, the bounds and on the grid."""
        xa = self.shaped(self.x[idx])
        if box is not None:  # L∞
            if self.levels is None:
                return torch.clamp(cand, box[0], box[1])
            # quantize rounds to the grid and clamps to the ball and the bounds.
            return quantize(xa, self.shaped(cand), self.eps, "linf", self.lo, self.hi,
                            self.levels).reshape(cand.shape)
        c = self.shaped(cand)
        c = clip_to_bounds(c, self.lo, self.hi)
        delta = (c - xa).reshape(cand.shape)
        nrm = delta.norm(dim=1, keepdim=True)
        # Scaling towards x keeps the point within the bounds (a box around x).
        scale = torch.div(self.eps, nrm.clamp_min(1e-30)).clamp_max(1.0)
        out: torch.Tensor = xa.reshape(cand.shape) + delta * scale
        if self.levels is not None:
            out = quantize(xa, self.shaped(out), self.eps, "l2", self.lo, self.hi,
                           self.levels).reshape(cand.shape)
        return out


def _dct_matrix(n: int) -> torch.Tensor:
    """(n, n) orthonormal DCT-II basis: row k is ``a_k cos(pi (2i + 1) k / (2n))``."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    m = torch.cos(math.pi * (2 * i[None] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.contiguous()


def _dct_count(x: torch.Tensor) -> int:
    return math.prod(x.shape[1:])


def _dct_order(c: int, h: int, w: int, fh: int, fw: int,
               gen: torch.Generator) -> torch.Tensor:
    """Every (channel, u, v) of the DCT basis, low frequencies first: (C * H * W, 3).

    First all frequencies below (fh, fw) over every channel in random order, then
    band after band (each a quarter of (fh, fw) wider, at least 1) in random order
    within it.
    """
    bh, bw = max(1, fh // 4), max(1, fw // 4)
    parts = []
    prev_h = prev_w = 0
    th, tw = fh, fw
    while prev_h < h or prev_w < w:
        th, tw = min(th, h), min(tw, w)
        ch, u, v = torch.meshgrid(torch.arange(c), torch.arange(th), torch.arange(tw),
                                  indexing="ij")
        new = (u >= prev_h) | (v >= prev_w)
        band = torch.stack([ch[new], u[new], v[new]], dim=1)
        parts.append(band[torch.randperm(band.shape[0], generator=gen)])
        prev_h, prev_w = th, tw
        th, tw = th + bh, tw + bw
    return torch.cat(parts)

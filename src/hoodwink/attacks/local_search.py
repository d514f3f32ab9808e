"""Plain local stochastic search on the scores: the black-box baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import torch

from hoodwink._validation import Interval, Options
from hoodwink.attacks._gate import QueryGate, score_loss
from hoodwink.attacks._norms import clip_to_bounds, norms, project, quantize
from hoodwink.attacks.base import AttackInputs, BlackBoxAttack
from hoodwink.losses import LossName

__all__ = ["LocalSearch"]

#: Largest ``patience``.
MAX_PATIENCE = 10**6
#: The step never shrinks below this fraction of its start (nor below one grid step).
_MIN_SHRINK = 2.0**-10


@dataclass(frozen=True, kw_only=True)
class LocalSearch(BlackBoxAttack):
    """Local stochastic search: random steps from the best point, kept when they help.

    The baseline every score-based attack should beat. Each iteration
    proposes, for every sample still running, ``x_best + delta`` with a
    random ``delta`` of length ``stepsize`` in the attack's norm:

    - L∞: ``±stepsize`` (random signs) on a random ``fraction`` of the
      coordinates (at least one), 0 elsewhere;
    - L2: ``stepsize`` times a uniformly random direction (a normalised
      Gaussian vector).

    The proposal is projected onto the eps-ball and the bounds (and snapped to
    the model's grid when it has ``levels``), queried once, and kept when it
    raises the attacker loss (higher is better for the attacker; the margin
    is positive exactly when the point is adversarial). A sample stops at its
    first adversarial point. After ``patience`` rejected proposals in a row a
    sample's step halves, down to 1/1024 of its start or one grid step
    (the largest, for per-feature bounds), whichever is larger.

    Anytime: a sample's step depends only on its own iterations and
    acceptances, never on ``max_queries``, so a run with a budget of B queries
    is the first B queries of a run with a bigger budget (same seed, same
    batch).

    Threat model: black box with scores (logits or probabilities; labels only
    are refused), untargeted or targeted, L∞ or L2 ball of radius ``eps``.

    Query cost: one query per running sample per iteration, besides the clean
    pass and the base class's verification (``max_queries - 2`` iterations
    at most).

    Parameters
    ----------
    norm : {"linf", "l2"}, default "linf"
    stepsize : float > 0 or None, default None
        Length of the first steps in the attack's norm, raw input units.
        None: ``2 * eps`` for L∞ (a coordinate can cross the ball, from one
        face to the other), ``eps`` for L2.
    fraction : float in (0, 1], default 0.05
        L∞: fraction of the coordinates each proposal changes (at least
        one). Unused for L2.
    patience : int in [1, 10**6], default 10
        Rejected proposals in a row after which a sample's step halves.
    loss : {"margin", "ce"}, default "margin"
        The attacker loss compared (logit margin, or cross-entropy on the
        log-scores).
    max_queries : int in [2, 10**9], default 1000
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator.

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.local_search import LocalSearch
    >>> net = torch.nn.Linear(3, 2, bias=False).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[0., 0., 0.], [3., -5., 7.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> r = LocalSearch(fraction=1.0, max_queries=50)(model, torch.zeros(1, 3), target=1,
    ...                                                eps=0.1)
    >>> r.success.tolist(), bool(r.queries[0] <= 50)
    ([True], True)
    """

    stepsize: float | None = None
    fraction: float = 0.05
    patience: int = 10
    loss: LossName = "margin"

    threat: ClassVar[Literal["scores"]] = "scores"
    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    supports_targeted: ClassVar[bool] = True

    _constraints = {
        "stepsize": (Interval(float, 0, None, closed="neither"), None),
        "fraction": (Interval(float, 0, 1, closed="right"),),
        "patience": (Interval(int, 1, MAX_PATIENCE),),
        "loss": (Options(get_args(LossName)),),
    }

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        scores = self._clean_scores(model, inputs)
        x, eps, n = inputs.x, inputs.eps, inputs.x.shape[0]
        lo, hi = model.bounds
        levels = model.levels
        report = inputs.progress
        total = max(1, int(model.remaining().max()))
        if eps == 0 or x[0].numel() == 0:
            if report is not None:
                report(total, total, "eps = 0: nothing to do")
            return x.clone()
        output = model.capabilities.output
        labels, targeted = inputs.labels, inputs.targeted
        best = x.clone()
        best_loss = score_loss(scores, labels, output, loss=self.loss, targeted=targeted)
        best_pred = inputs.pred_clean.clone()
        done = inputs.is_adversarial(best_pred)  # targeted too: x may be the target already
        first = self.stepsize if self.stepsize is not None else (
            2 * eps if self.norm == "linf" else eps)
        first = min(first, inputs.max_stepsize)
        floor = first * _MIN_SHRINK
        if levels is not None:
            # A step below one grid step snaps back to where it started.
            floor = min(first, max(floor, float(((hi - lo) / (levels - 1)).max())))
        step = torch.full((n,), first, dtype=torch.float64, device=x.device)
        fails = torch.zeros(n, dtype=torch.int64, device=x.device)
        bshape = (-1,) + (1,) * (x.ndim - 1)
        it = 0
        while True:
            idx = (~done & model.can_query(None, 1)).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            xa, ba = x[idx], best[idx]
            delta = self._delta(xa, inputs.generator) * step[idx].to(x.dtype).reshape(bshape)
            cand = clip_to_bounds(xa + project(ba + delta - xa, eps, self.norm), lo, hi)
            if levels is not None:
                cand = quantize(xa, cand, eps, self.norm, lo, hi, levels)
            loss, pred = model.loss(cand, labels[idx], loss=self.loss, targeted=targeted,
                                    rows=idx)
            adv = inputs.is_adversarial(pred, idx)
            better = adv | (loss > best_loss[idx])
            keep = idx[better]
            best[keep] = cand[better]
            best_loss[keep] = loss[better]
            best_pred[keep] = pred[better]
            done[idx] = adv
            # Consecutive rejections; at ``patience`` the step halves (and the count restarts).
            f = torch.where(better, torch.zeros_like(fails[idx]), fails[idx] + 1)
            shrink = f >= self.patience
            step[idx] = torch.where(shrink, (step[idx] / 2).clamp_min(floor), step[idx])
            fails[idx] = torch.where(shrink, torch.zeros_like(f), f)
            it += 1
            if report is not None:
                report(min(it, total), total, f"iteration {it}, {int(done.sum())}/{n} fooled")
        if report is not None and it < total:
            report(total, total, "all samples done")
        inputs.expect(best, best_pred)
        return best

    def _delta(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random unit-length directions in the attack's norm, one per row (CPU draws)."""
        shape = tuple(x.shape)
        if self.norm == "linf":
            d = x[0].numel()
            k = max(1, round(self.fraction * d))
            signs = torch.randint(0, 2, shape, generator=generator).mul_(2).sub_(1)
            if k < d:
                keep = torch.rand((shape[0], d), generator=generator).topk(k, dim=1).indices
                mask = torch.zeros((shape[0], d), dtype=signs.dtype)
                mask.scatter_(1, keep, 1)
                signs = signs * mask.reshape(shape)
            return signs.to(device=x.device, dtype=x.dtype)
        g = torch.randn(shape, generator=generator, dtype=torch.float64)
        g = g / norms(g, "l2").clamp_min(1e-300).reshape((-1,) + (1,) * (g.ndim - 1))
        return g.to(device=x.device, dtype=x.dtype)

"""A random walk along the decision boundary, from labels only (after Brendel et al., 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from hoodwink._validation import Boolean, Interval
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import NormName, norms
from hoodwink.attacks.base import AttackInputs, BlackBoxAttack, Threat
from hoodwink.attacks.hopskipjump import _bshape, _Tracker

__all__ = ["BoundaryWalk"]

#: Precision of the binary search from the start towards x (blend factor, or L∞
#: radius, relative): ten queries.
_START_TOL = 1e-3
#: Iterations between two adaptations of the step sizes (Brendel et al. adapt on
#: the success rates of recent steps).
_ADAPT_EVERY = 10
#: Largest step sizes: an orthogonal step as long as the distance itself, half of it
#: towards x.
_MAX_SPHERICAL = 1.0
_MAX_SOURCE = 0.5
#: Smallest step sizes; below them a step changes nothing in float32.
_MIN_STEP = 1e-9


@dataclass(frozen=True, kw_only=True)
class BoundaryWalk(BlackBoxAttack):
    """A random walk along the decision boundary towards ``x``, from the
    predicted labels only: a plain baseline after the boundary attack of
    Brendel, Rauber and Bethge ("Decision-Based Adversarial Attacks: Reliable
    Attacks Against Black-Box Machine Learning Models", ICLR 2018).

    Start from an adversarial point (as :class:`~hoodwink.attacks.hopskipjump.HopSkipJump`
    does: uniform noise redrawn until adversarial, for a targeted attack until
    it is the target, else the batch's nearest adversarial input) and
    binary-search towards ``x`` (to 0.1 %). Then, per iteration, from the
    current point ``x_c`` at L2 distance r from ``x``:

    1. an *orthogonal step*: Gaussian noise made orthogonal to ``x - x_c``,
       of length ``spherical_step * r``, then rescaled back onto the sphere of
       radius r around ``x``: the spherical candidate;
    2. a *step towards x*: the spherical candidate moved by
       ``source_step * r`` towards ``x`` (L2), or clipped into the L∞ box
       around ``x`` of radius ``(1 - source_step) ‖x_c - x‖∞`` (L∞);
    3. both candidates are queried (one batched call, two rows per sample);
       the second becomes ``x_c`` when it is adversarial and not farther from
       ``x`` in the attack's norm.

    Every 10 iterations the steps adapt to the success rates, as in the
    paper: when over half the spherical candidates were adversarial both
    steps grow by ``step_adaptation``, under a fifth they shrink; when over a
    quarter of the full candidates were adversarial the step towards ``x``
    grows, under a tenth it shrinks. The schedule depends on the iteration
    number and the answers seen only, never on ``max_queries``, and each
    sample draws from a random stream of its own: a run with
    ``max_queries=B`` makes, per sample, exactly the first queries of a
    longer run (same seed and batch), so its result is that run's best point
    after those queries.

    This is a minimum-norm attack: it walks until its queries are spent
    (unless ``stop_at_eps``) and returns the nearest adversarial point it
    queried. ``eps`` is the largest norm that counts as a success; the base
    class projects the result onto the eps-ball and judges it again.

    Grid. When the model has quantisation ``levels``, candidates are rounded
    to the grid at random (up or down, unbiased), so that steps far smaller
    than a grid step still move; the label seen is the label of the point
    that may be returned.

    Threat model: black box, predicted labels only (models with scores work
    too); untargeted or targeted; L2 or L∞ (the walk is in L2, and the L∞
    norm of the current point shrinks through the step towards ``x``; on a
    linear model it stalls some 25-30 % above the smallest L∞ distance,
    where HopSkipJump gets within a few percent).

    Query cost per sample: one query at ``x`` (shared with the base class's
    clean pass), one per noise draw, ten for the binary search, two per
    iteration, and the base class's verification query.

    Parameters
    ----------
    norm : {"l2", "linf"}, default "l2"
        The norm minimised.
    spherical_step : float in (0, 1], default 0.01
        First length of the orthogonal step, relative to the distance.
    source_step : float in (0, 0.5], default 0.01
        First length of the step towards ``x``, relative to the distance.
    step_adaptation : float in (1, 10], default 1.5
        Factor by which the step sizes grow or shrink.
    batch_starts : bool, default True
        When 20 noise draws find no start for a sample, start from the
        nearest other input of the batch that the model classifies
        adversarially for it (known from the clean pass, so free). False keeps
        each sample's result independent of the rest of the batch.
    stop_at_eps : bool, default False
        Stop a sample as soon as an adversarial point within ``eps`` is found.
    max_queries : int in [2, 10**9], default 1000
        Most model calls per sample, everything included. Never exceeded.
    seed : int >= 0 or None, default 0
        Seed of the attack's random generator.

    Examples
    --------
    A linear model whose class 1 starts where ``x0 + x1 = 1``: the nearest
    point of class 1 to (0.2, 0.3) is ``0.5 / sqrt(2) = 0.354`` away in L2.

    >>> import torch, hoodwink
    >>> from hoodwink.attacks.boundary_walk import BoundaryWalk
    >>> net = torch.nn.Linear(2, 2).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[0., 0.], [1., 1.]]))
    ...     _ = net.bias.copy_(torch.tensor([0., -1.]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(0, 1))
    >>> x = torch.tensor([[0.2, 0.3]])
    >>> r = BoundaryWalk(max_queries=1000)(model, x, torch.tensor([0]), eps=1.0)
    >>> bool(r.success[0]), abs(float(r.perturbation_norm[0]) - 0.3536) < 0.005
    (True, True)
    """

    norm: NormName = "l2"
    spherical_step: float = 0.01
    source_step: float = 0.01
    step_adaptation: float = 1.5
    batch_starts: bool = True
    stop_at_eps: bool = False

    threat: ClassVar[Threat] = "labels"
    supported_norms: ClassVar[tuple[str, ...]] = ("l2", "linf")
    supports_targeted: ClassVar[bool] = True
    #: It looks for the smallest adversarial perturbation; eps bounds what counts.
    minimum_norm: ClassVar[bool] = True

    _constraints = {
        "spherical_step": (Interval(float, 0, _MAX_SPHERICAL, closed="right"),),
        "source_step": (Interval(float, 0, _MAX_SOURCE, closed="right"),),
        "step_adaptation": (Interval(float, 1, 10, closed="right"),),
        "batch_starts": (Boolean(),),
        "stop_at_eps": (Boolean(),),
    }

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        self._clean_labels(model, inputs)
        report = inputs.progress
        total = self.max_queries

        def tell(msg: str) -> None:
            if report is not None:
                report(min(int(model.used.max()), total - 1), total, msg)

        tr = _Tracker(model, inputs, self.norm, tell if report is not None else None)
        done = tr.at_x()
        if inputs.eps == 0:  # nothing but x fits in the ball
            done[:] = True
        todo = (~done).nonzero()[:, 0]
        cur = tr.x.clone()
        if todo.numel():
            found, starts = tr.starts(todo, self.batch_starts)
            todo, starts = todo[found], starts[found]
            if todo.numel():
                cur[todo] = tr.bisect(todo, starts, _START_TOL)
        active = torch.zeros(tr.n, dtype=torch.bool, device=tr.device)
        active[todo] = True
        cur_norm = tr.dist(cur, torch.arange(tr.n, device=tr.device))
        dt, dev = tr.dtype, tr.device
        sph = torch.full((tr.n,), self.spherical_step, dtype=dt, device=dev)
        src = torch.full((tr.n,), self.source_step, dtype=dt, device=dev)
        hits_s = torch.zeros(tr.n, dtype=torch.int64, device=dev)
        hits_c = torch.zeros(tr.n, dtype=torch.int64, device=dev)
        a = self.step_adaptation
        t = 0
        while True:
            if self.stop_at_eps:
                active &= ~(tr.best_norm <= inputs.eps)
            active &= model.can_query(None, 2)
            # A point on x itself (a model that changes its answer there) cannot walk.
            active &= cur_norm > 0
            idx = active.nonzero()[:, 0]
            if idx.numel() == 0:
                break
            t += 1
            m = idx.shape[0]
            s_cand, c_cand = self._candidates(tr, idx, cur[idx], sph[idx], src[idx])
            rows = torch.cat([idx, idx])
            adv = tr.query(torch.cat([s_cand, c_cand]), rows)
            adv_s, adv_c = adv[:m], adv[m:]
            c_norm = tr.dist(c_cand, idx)
            take = adv_c & (c_norm <= cur_norm[idx])
            if bool(take.any()):
                ti = idx[take]
                cur[ti] = c_cand[take]
                cur_norm[ti] = c_norm[take]
            hits_s[idx] += adv_s.to(torch.int64)
            hits_c[idx] += adv_c.to(torch.int64)
            if t % _ADAPT_EVERY == 0:
                rate_s = hits_s[idx].to(dt) / _ADAPT_EVERY
                rate_c = hits_c[idx].to(dt) / _ADAPT_EVERY
                grow = torch.where(rate_s > 0.5, a, torch.where(rate_s < 0.2, 1 / a, 1.0))
                grow_c = torch.where(rate_c > 0.25, a, torch.where(rate_c < 0.1, 1 / a, 1.0))
                sph[idx] = (sph[idx] * grow).clamp(_MIN_STEP, _MAX_SPHERICAL)
                src[idx] = (src[idx] * grow * grow_c).clamp(_MIN_STEP, _MAX_SOURCE)
                hits_s[idx] = 0
                hits_c[idx] = 0
        if report is not None:
            report(total, total, "done")
        return tr.result()

    def _candidates(self, tr: _Tracker, idx: torch.Tensor, cur: torch.Tensor, sph: torch.Tensor,
                    src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spherical and the full candidate of samples ``idx`` (clipped, on the grid)."""
        x = tr.x[idx]
        m = x.shape[0]
        bs = _bshape(m, x.ndim)
        v = x - cur
        r = norms(v, "l2").reshape(bs)
        unit = v / r
        eta = tr.draw(idx, tr.shape, "normal")
        eta = eta - (eta * unit).flatten(1).sum(dim=1).reshape(bs) * unit
        eta = eta / norms(eta, "l2").clamp_min(1e-30).reshape(bs) * (sph.reshape(bs) * r)
        s = cur + eta
        s = x + (s - x) * (r / norms(s - x, "l2").clamp_min(1e-30).reshape(bs))
        if self.norm == "linf":
            radius = ((1 - src) * norms(cur - x, "linf")).reshape(bs)
            full = x + torch.maximum(torch.minimum(s - x, radius), -radius)
        else:
            full = x + (s - x) * (1 - src).reshape(bs)
        if tr.levels:
            return tr.snap_random(s, idx), tr.snap_random(full, idx)
        return tr.snap(s), tr.snap(full)

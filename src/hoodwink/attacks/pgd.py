"""Projected gradient descent (Madry et al., ICLR 2018) in L∞, L2 and L1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch

from hoodwink._validation import Boolean, Interval, Options
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import (
    GridUnits,
    clip_to_bounds,
    project,
    quantize,
    random_start,
    steepest_step,
)
from hoodwink.attacks.base import AttackInputs, GradientAttack
from hoodwink.losses import LossName, attack_loss

__all__ = ["MAX_RESTARTS", "MAX_STEPS", "PGD"]

#: Largest ``steps``: far beyond any published evaluation (AutoAttack uses 100).
MAX_STEPS = 1_000_000
#: Largest ``restarts``.
MAX_RESTARTS = 10_000

#: Largest number of iterate elements (all steps of one restart) kept for deferred
#: judging; 2**21 float32 values are 8 MiB. Larger runs judge every step.
_HISTORY_ELEMENTS = 2**21

#: Take an iterate that improves every active sample as the best itself, not a copy
#: (CPU only: deciding costs a sync). Off only in tests, to compare with the plain path.
_REUSE_ITERATE = True


@dataclass(frozen=True, kw_only=True)
class PGD(GradientAttack):
    """Projected gradient descent (Madry et al., "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018); the L1 step is the sparse
    steepest-ascent step of Tramèr and Boneh (NeurIPS 2019).

    Each step moves by ``stepsize`` along the steepest-ascent direction of the
    attack loss for ``norm`` (``sign`` of the gradient for L∞), then projects
    back onto the eps-ball and the bounds. A sample stops as soon as it is
    adversarial (``early_stop``); restarts run only on samples not yet fooled,
    and each sample keeps its best iterate: the first adversarial one (or, with
    ``early_stop=False``, the adversarial one of highest loss), else the one of
    highest loss. When the model has quantisation ``levels``, every iterate is
    judged (and differentiated) at a grid point, so what is returned is
    adversarial *on the grid*.

    On a grid, L∞ iterates are kept in grid units, ``k = (x_adv - lower) / step``
    (Madry et al.'s step, measured in grid steps): a step adds
    ``stepsize / step * sign(grad)`` to ``k`` and clamps it to the box of whole
    grid steps within the eps-ball, ``k(x) ± floor(eps / step)`` intersected
    with ``[0, levels - 1]``; the model sees the grid point of ``round(k)``, written
    as :func:`~hoodwink.attacks._norms.quantize` writes it. Every iterate is thus
    within the bounds, within eps (in whole grid steps), and exactly a grid point
    (saving it as an 8-bit image changes nothing); the base class still snaps,
    checks and re-judges the result. This is half the per-step work of stepping
    in input units and snapping each iterate, and its iterates differ from that
    scheme's where the ball's edge is not a grid point (eps 0.1 on an 8-bit grid
    is 25.5 steps): an iterate stops at the last whole step instead of half a step
    beyond it. L2 and L1 iterates are snapped with ``quantize`` after each step.

    Threat model: white box (input gradients), untargeted or targeted,
    L∞, L2 or L1 ball of radius ``eps``.

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}, default "linf"
    steps : int in [1, 1_000_000], default 40
        Gradient steps per restart (each costs one forward+backward pass).
    stepsize : float > 0 or None, default None
        Step length in the attack's norm, in raw input units. None uses
        ``2.5 * eps / steps`` (Madry et al.).
    random_start : bool, default True
        Start each restart from a uniform random point in the ball.
    restarts : int in [1, 10_000], default 1
    loss : {"ce", "margin", "dlr"}, default "ce"
    early_stop : bool, default True
        Stop each sample at its first adversarial iterate.
    l1_sparsity : float in [0, 1), default 0.9
        Fraction of coordinates left out of each L1 step.
    confidence : float in [0, 1), default 0.0
        A sample counts as done (for early stopping and for choosing its best
        iterate) only once it is adversarial *and* the model gives its
        predicted class at least this softmax probability. 0 stops at the
        first adversarial iterate; 0.9 keeps going to a confident mistake.
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator (random starts).
    """

    steps: int = 40
    stepsize: float | None = None
    random_start: bool = True
    restarts: int = 1
    loss: LossName = "ce"
    early_stop: bool = True
    l1_sparsity: float = 0.9
    confidence: float = 0.0

    _constraints = {
        # Upper limits so that a typo (steps=10**20) is an error, not a run that never ends.
        "steps": (Interval(int, 1, MAX_STEPS),),
        "restarts": (Interval(int, 1, MAX_RESTARTS),),
        "stepsize": (Interval(float, 0, None, closed="neither"), None),
        "random_start": (Boolean(),),
        "early_stop": (Boolean(),),
        "loss": (Options(get_args(LossName)),),
        "l1_sparsity": (Interval(float, 0, 1, closed="left"),),
        "confidence": (Interval(float, 0, 1, closed="left"),),
    }

    def _first_pass_at_x(self) -> bool:
        # Without a random start the first step's pass is at x itself.
        return not self.random_start

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        # Written for small steps: at batch 1 on a small net a step's forward+backward
        # takes ~0.3 ms, so every tensor op (~2-5 µs) counts, and at batch 500 on a
        # linear model every full-size elementwise op (~40 µs) does.
        # - The state of the active samples (best iterate, its loss, whether it is
        #   adversarial, passes made) is kept local to them, as whole tensors, and
        #   written back to the per-sample state only when the active set changes or
        #   the restart ends: no index ops per step.
        # - When the iterates are small, judging them is deferred: each step appends
        #   its iterate, loss and logits, and one batched pass picks each sample's
        #   best (_pick_best) when the restart ends or the first sample leaves.
        # - The L∞ step clamps to a per-restart box (the eps-ball intersected with the
        #   bounds) in one op. On a grid the box is in grid units and the iterate is
        #   rounded to a grid point (GridUnits): step, clamp, round, divide. L2/L1
        #   snap each iterate with quantize.
        dmodel = model
        x, eps, n = inputs.x, inputs.eps, inputs.x.shape[0]
        lo, hi = model.bounds
        levels = model.levels
        targeted = inputs.targeted
        report = inputs.progress
        total = self.steps * self.restarts
        stepsize = min(self.stepsize if self.stepsize is not None else 2.5 * eps / self.steps,
                       inputs.max_stepsize)  # a longer step only overflows
        need_clean = not inputs.has_pred_clean
        if eps == 0:
            if need_clean:
                inputs.set_pred_clean(dmodel.predict(x))
            if report is not None:
                report(total, total, "eps = 0: nothing to do")
            return x.clone()
        best = x.clone()
        # float64 holds the loss of a model of any float dtype exactly.
        best_loss = torch.full((n,), -torch.inf, device=x.device, dtype=torch.float64)
        best_adv = torch.zeros(n, dtype=torch.bool, device=x.device)
        if not need_clean and not targeted:
            best_adv |= inputs.is_adversarial(inputs.pred_clean)
        bshape = (-1,) + (1,) * (x.ndim - 1)
        linf = self.norm == "linf"
        done = 0

        for r in range(self.restarts):
            idx: torch.Tensor | None = None  # the active samples; None: all of them
            if r > 0 or bool(best_adv.any()):
                idx = (~best_adv).nonzero()[:, 0]
                if idx.numel() == 0:
                    break
            xa = x if idx is None else x[idx]
            lab = inputs.labels if idx is None else inputs.labels[idx]
            a_best = best if idx is None else best[idx]
            a_loss = best_loss if idx is None else best_loss[idx]
            a_adv = best_adv if idx is None else best_adv[idx]
            xc = xa
            if self.random_start:
                xc = clip_to_bounds(xa + random_start(xa, eps, self.norm, inputs.generator), lo, hi)
            # L∞ on a grid: iterates in grid units (GridUnits), kc; otherwise xc.
            grid = GridUnits(xa, eps, lo, hi, levels) if levels and linf else None
            # L2/L1 on a grid: each iterate is snapped with quantize.
            snap_levels = levels if levels and not linf else None
            if grid is not None:
                rate = grid.rate(stepsize)
                # Without a random start the first iterate is x, exactly its own index.
                kc = grid.start(xc) if self.random_start else grid.k_x.clone()
            elif linf:
                box_lo = torch.maximum(xa - eps, lo)
                box_hi = torch.minimum(xa + eps, hi)
            # Take the iterate itself as the best, not a copy, when every sample improves
            # (most steps at batch 500); one sync per step, so on the CPU only.
            alias = _REUSE_ITERATE and x.device.type == "cpu"
            # (iterate, loss, logits) of each step while deferring; None: judge each step.
            history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = (
                [] if xa.numel() * (self.steps + 1) <= _HISTORY_ELEMENTS else None)
            for t in range(self.steps + 1):
                clean_pass = need_clean and r == 0 and t == 0
                if grid is not None:
                    # x is its own grid point, bit for bit: the first pass without a
                    # random start is at x itself.
                    xq = xa if t == 0 and not self.random_start else grid.point(kc)
                else:
                    # x is on the grid already: snapping it could only move it by an ulp.
                    xq = (quantize(xa, xc, eps, self.norm, lo, hi, snap_levels)
                          if snap_levels is not None and not clean_pass else xc)
                if t < self.steps:
                    loss, logits, grad = dmodel.loss_gradient(
                        xq, lab, loss=self.loss, targeted=targeted, rows=idx)
                else:
                    logits = dmodel.logits(xq, rows=idx)
                    loss = attack_loss(logits, lab, loss=self.loss, targeted=targeted)
                last = t == self.steps
                drop, dropping = None, False
                if history is not None and not (clean_pass or self.early_stop or last):
                    history.append((xq, loss, logits))  # judged later, in one go
                else:
                    pred = logits.argmax(dim=1)
                    adv = pred == lab if targeted else pred != lab
                    if clean_pass:  # idx is None: this pass covered every sample at x
                        need_clean = False
                        inputs.set_pred_clean(pred)
                        if not targeted:
                            drop = adv  # already misclassified: done, at x
                    if self.confidence > 0:
                        adv = adv & (torch.softmax(logits, dim=1).amax(dim=1) >= self.confidence)
                    if self.early_stop and not last:
                        drop = adv if drop is None else drop | adv
                    if clean_pass and drop is not None:
                        a_adv = a_adv | drop  # counts as adversarial whatever the confidence
                    dropping = drop is not None and bool(drop.any())
                    if history is not None and not (last or dropping or clean_pass):
                        history.append((xq, loss, logits))
                    else:
                        if history:  # judge what was deferred, then this step as usual
                            a_best, a_loss, a_adv = self._pick_best(
                                history, lab, targeted, a_best, a_loss, a_adv)
                        # Defer again only while every sample stays active.
                        history = [] if history is not None and not (last or dropping) else None
                        # Adversarial beats not; within the same kind, higher loss wins.
                        better = torch.where(adv == a_adv, loss > a_loss, adv)
                        if alias and xq is not xa and bool(better.all()):
                            # xq is this step's own tensor (nothing else writes to it; the
                            # next iterate is a new one), never x: it can be the best.
                            a_best = xq
                        else:
                            # lerp with weights 0/1 selects exactly, and unlike where()
                            # with a broadcast mask it is vectorised (4x faster at batch
                            # 500). In place: a_best is never x, an input or a kept
                            # iterate (history holds only iterates not judged here).
                            a_best.lerp_(xq, better.reshape(bshape).to(xq.dtype))
                        a_loss = torch.where(better, loss, a_loss)
                        a_adv = a_adv | adv
                if dropping or last:
                    best, best_loss, best_adv = _write_back(
                        idx, (best, best_loss, best_adv), (a_best, a_loss, a_adv))
                if last:
                    break
                if dropping and drop is not None:
                    keep = ~drop
                    k = keep.nonzero()[:, 0] if idx is None else keep
                    idx = k if idx is None else idx[keep]
                    if idx.numel() == 0:
                        break
                    xa, lab, grad = xa[k], lab[k], grad[k]
                    a_best, a_loss, a_adv = a_best[k], a_loss[k], a_adv[k]
                    if grid is not None:
                        kc, grid = kc[k], grid.subset(k)
                    else:
                        xc = xc[k]
                        if linf:
                            box_lo, box_hi = box_lo[k], box_hi[k]
                if grid is not None:
                    # In place: kc is this loop's own (every point is a fresh tensor).
                    grid.step_(kc, grad.sign_(), rate)
                elif linf:
                    # A new tensor (earlier iterates may be kept), then in place.
                    xc = torch.add(xc, grad.sign_(), alpha=stepsize).clamp_(box_lo, box_hi)
                else:
                    step = steepest_step(grad, self.norm, l1_sparsity=self.l1_sparsity)
                    xn = xc + stepsize * step
                    xc = clip_to_bounds(xa + project(xn - xa, eps, self.norm), lo, hi)
                if report is not None:
                    done = r * self.steps + t + 1
                    report(done, total, f"restart {r + 1}/{self.restarts}, step {t + 1}")
            if report is not None and done < (r + 1) * self.steps:
                done = (r + 1) * self.steps
                report(done, total, f"restart {r + 1}/{self.restarts} done")
        if report is not None and done < total:
            report(total, total, "all samples done")
        return best

    def _pick_best(
        self,
        history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        labels: torch.Tensor,
        targeted: bool,
        best: torch.Tensor,
        best_loss: torch.Tensor,
        best_adv: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fold deferred iterates of all samples into the best-so-far, in one batched pass.

        Gives exactly what judging each step in turn gives: an adversarial iterate
        beats a non-adversarial one; among the same kind the highest loss wins, the
        earliest on ties, and the best-so-far wins ties with the history.
        """
        xs = torch.stack([h[0] for h in history])  # (T, N, ...)
        losses = torch.stack([h[1] for h in history])  # (T, N)
        logits = torch.stack([h[2] for h in history])  # (T, N, C)
        pred = logits.argmax(dim=2)
        adv = pred == labels if targeted else pred != labels
        if self.confidence > 0:
            adv &= torch.softmax(logits, dim=2).amax(dim=2) >= self.confidence
        has_adv = adv.any(dim=0)
        # Candidates: the adversarial iterates where there is one, else all of them.
        cand = torch.where(adv == has_adv, losses, -torch.inf)
        t_best = cand.argmax(dim=0)  # the first maximum: the earliest on ties
        loss_best = cand.gather(0, t_best[None])[0]
        better = torch.where(has_adv == best_adv, loss_best > best_loss, has_adv)
        x_best = xs[t_best, torch.arange(xs.shape[1], device=xs.device)]
        bshape = (-1,) + (1,) * (best.ndim - 1)
        return (torch.where(better.reshape(bshape), x_best, best),
                torch.where(better, loss_best, best_loss), best_adv | has_adv)


def _write_back(
    idx: torch.Tensor | None,
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    active: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-sample state with the active samples' entries replaced."""
    if idx is None:
        return active
    for whole, part in zip(state, active, strict=True):
        whole[idx] = part.to(whole.dtype)
    return state

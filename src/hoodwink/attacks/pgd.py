"""Projected gradient descent (Madry et al., ICLR 2018) in L∞, L2 and L1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from hoodwink.attacks._norms import clip_to_bounds, project, quantize, random_start, steepest_step
from hoodwink.attacks.base import AttackInputs, GradientAttack
from hoodwink.losses import LossName, attack_loss
from hoodwink.models.base import Classifier, DifferentiableClassifier

__all__ = ["PGD"]


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
    judged (and differentiated) at its grid-snapped point, so what is returned
    is adversarial *on the grid*.

    Threat model: white box (input gradients), untargeted or targeted,
    L∞, L2 or L1 ball of radius ``eps``.

    Parameters
    ----------
    norm : {"linf", "l2", "l1"}, default "linf"
    steps : int >= 1, default 40
        Gradient steps per restart (each costs one forward+backward pass).
    stepsize : float > 0 or None, default None
        Step length in the attack's norm, in raw input units. None uses
        ``2.5 * eps / steps`` (Madry et al.).
    random_start : bool, default True
        Start each restart from a uniform random point in the ball.
    restarts : int >= 1, default 1
    loss : {"ce", "margin"}, default "ce"
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

    def _validate(self) -> None:
        self._check_int("steps", 1)
        self._check_int("restarts", 1)
        self._check_float("stepsize", 0.0, allow_none=True, strict=True)
        self._check("random_start", isinstance(self.random_start, bool), "a bool")
        self._check("early_stop", isinstance(self.early_stop, bool), "a bool")
        self._check_choice("loss", ("ce", "margin"))
        self._check_float("l1_sparsity", 0.0)
        self._check("l1_sparsity", self.l1_sparsity < 1, "a float in [0, 1)")
        self._check_float("confidence", 0.0)
        self._check("confidence", self.confidence < 1, "a float in [0, 1)")

    def _run(self, model: Classifier, inputs: AttackInputs) -> tuple[torch.Tensor, torch.Tensor]:
        dmodel = cast(DifferentiableClassifier, model)
        x, eps, n = inputs.x, inputs.eps, inputs.x.shape[0]
        lo, hi = model.bounds
        levels = model.levels
        stepsize = self.stepsize if self.stepsize is not None else 2.5 * eps / self.steps
        queries = torch.zeros(n, dtype=torch.int64, device=x.device)
        best = x.clone()
        best_loss = torch.full((n,), -torch.inf, device=x.device)
        best_adv = torch.zeros(n, dtype=torch.bool, device=x.device)
        if not inputs.targeted:
            best_adv |= inputs.is_adversarial(inputs.pred_clean)
        if eps == 0:
            return best, queries

        def snap(xa: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
            return quantize(xa, xc, eps, self.norm, lo, hi, levels) if levels else xc

        for _ in range(self.restarts):
            idx = (~best_adv).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            xa, lab = x[idx], inputs.labels[idx]
            xc = xa.clone()
            if self.random_start:
                xc = clip_to_bounds(xa + random_start(xa, eps, self.norm, inputs.generator), lo, hi)
            for t in range(self.steps + 1):
                xq = snap(xa, xc)
                if t < self.steps:
                    loss, logits, grad = dmodel.loss_gradient(
                        xq, lab, loss=self.loss, targeted=inputs.targeted)
                else:
                    logits = dmodel.logits(xq)
                    loss = attack_loss(logits, lab, loss=self.loss, targeted=inputs.targeted)
                queries[idx] += 1
                adv = inputs.is_adversarial(logits.argmax(dim=1), idx)
                if self.confidence > 0:
                    adv &= torch.softmax(logits, dim=1).amax(dim=1) >= self.confidence
                better = (adv & ~best_adv[idx]) | ((adv == best_adv[idx]) & (loss > best_loss[idx]))
                upd = idx[better]
                best[upd] = xq[better]
                best_loss[upd] = loss[better]
                best_adv[upd] = adv[better]
                if t == self.steps:
                    break
                keep = ~adv
                if self.early_stop and not bool(keep.all()):
                    idx, xa, xc, lab, grad = idx[keep], xa[keep], xc[keep], lab[keep], grad[keep]
                    if idx.numel() == 0:
                        break
                step = steepest_step(grad, self.norm, l1_sparsity=self.l1_sparsity)
                xn = xc + stepsize * step
                xc = clip_to_bounds(xa + project(xn - xa, eps, self.norm), lo, hi)
        return best, queries

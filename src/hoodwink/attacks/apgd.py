"""Auto-PGD (Croce and Hein, ICML 2020): PGD with momentum and a self-tuning step size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, get_args

import torch

from hoodwink._validation import Interval, Options, reject
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import (
    NormName,
    clip_to_bounds,
    norms,
    project,
    quantize,
    steepest_step,
)
from hoodwink.attacks.base import AttackInputs, GradientAttack
from hoodwink.losses import LossName, attack_loss

__all__ = ["APGD", "MAX_RESTARTS", "MAX_STEPS", "MAX_TARGET_CLASSES", "checkpoints"]

#: Largest ``steps`` (the reference runs 100).
MAX_STEPS = 1_000_000
#: Largest ``restarts``.
MAX_RESTARTS = 10_000
#: Largest ``target_classes`` (it is capped at the model's classes minus one anyway).
MAX_TARGET_CLASSES = 100_000

# The checkpoint schedule of the paper in hundredths, so that it is exact in integers:
# p_1 = 0.22, and each gap shrinks by 0.03 down to 0.06.
_FIRST_GAP, _GAP_DECREASE, _MIN_GAP = 22, 3, 6


def checkpoints(steps: int) -> tuple[int, ...]:
    """The iterations at which APGD may halve its step size, for a run of ``steps`` steps.

    ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` (Croce and Hein, 2020),
    computed exactly; repeated values and those at or after the last step
    (where halving could change nothing) are left out.

    Parameters
    ----------
    steps : int >= 1

    Returns
    -------
    tuple of int
        Increasing iteration numbers in ``[1, steps - 1]``.

    Examples
    --------
    >>> checkpoints(100)
    (22, 41, 57, 70, 80, 87, 93, 99)
    >>> checkpoints(10)
    (3, 5, 6, 7, 8, 9)
    """
    out: list[int] = []
    p, gap = _FIRST_GAP, _FIRST_GAP
    while True:
        w = -(-p * steps // 100)  # ceil(p / 100 * steps), in integers
        if w >= steps:
            return tuple(out)
        if not out or w > out[-1]:
            out.append(w)
        gap = max(gap - _GAP_DECREASE, _MIN_GAP)
        p += gap


@dataclass(frozen=True, kw_only=True)
class APGD(GradientAttack):
    """Auto-PGD (Croce and Hein, "Reliable evaluation of adversarial robustness
    with an ensemble of diverse parameter-free attacks", ICML 2020), with its
    targeted variant APGD-T.

    PGD with momentum and a step size that tunes itself, so there is no step
    size to choose. Each restart starts from a random point of the eps-ball
    (L∞: ``eps * u / max|u|`` with ``u`` uniform in ``[-1, 1]^d``; L2: a random
    direction of length ``eps``, as in the reference code), clipped to the
    bounds, with step size ``eta = 2 * eps``. Step ``k`` is

    ``z = P(x_k + eta * s(grad))``,
    ``x_{k+1} = P(x_k + momentum * (z - x_k) + (1 - momentum) * (x_k - x_{k-1}))``

    (the first step without momentum: ``x_1 = z``), where ``P`` projects onto
    the eps-ball and clips to the bounds and ``s`` is the steepest-ascent
    direction (L∞: the sign, L2: the normalised gradient). At the checkpoints
    ``w_j = ceil(p_j * steps)``, ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j +
    max(p_j - p_{j-1} - 0.03, 0.06)`` (22, 41, 57, 70, 80, 87, 93 and 99 for 100
    steps; see :func:`checkpoints`), a sample halves its step size and goes
    back to its best point (the iterate of highest loss, with the gradient
    there) when (1) its loss increased in fewer than ``rho`` of the steps since
    the last checkpoint, or (2) its step size was not halved at the last
    checkpoint and its best loss has not improved since (as in the reference
    code, (2) cannot hold at the first checkpoint). Step sizes, best points and
    checkpoint decisions are per sample.

    A sample stops as soon as it is adversarial (the point is kept; the
    reference code also keeps it); restarts run only on samples not yet
    fooled. Each sample returns its first adversarial point, else its point of
    highest loss over all runs. When the model has quantisation ``levels``,
    each iterate is snapped onto the grid with
    :func:`~hoodwink.attacks._norms.quantize` before the model sees it, and the
    snapped points are what is judged and kept, so what was seen adversarial is
    what is returned.

    **APGD-T** (``target_classes=k > 0`` in an untargeted call): for each of
    the ``k`` classes with the highest clean logits other than the true one
    (``k`` capped at the number of classes minus one), in order, run
    ``restarts`` restarts of targeted APGD towards that class with the targeted
    form of ``loss`` (the paper's APGD-T is ``loss="dlr"``, the registry's
    ``apgd-t``) on the samples still correctly classified; a sample is broken
    when it is misclassified, whichever class it lands in. In a targeted call
    ``target_classes`` changes nothing: the given targets are attacked.

    Threat model: white box (input gradients), untargeted or targeted, L∞ or
    L2 ball of radius ``eps``.

    Cost: one forward+backward pass (one query) per sample at each of the
    ``steps + 1`` iterates of a run (the random start and each step), for
    ``restarts`` runs (``restarts * k`` for APGD-T), plus the clean pass at
    ``x`` and the base class's verification pass; samples stop paying once
    fooled. So a sample never costs more than ``runs * (steps + 1) + 2``
    queries (one more for APGD-T when neither ``y`` nor ``target`` is given:
    the base class's clean pass gives labels, and the targets need logits).
    The schedule is defined against ``steps``: a run of 50 steps is not the
    first half of a run of 100.

    Parameters
    ----------
    norm : {"linf", "l2"}, default "linf"
    steps : int in [1, 1_000_000], default 100
        Steps per run (the reference's 100 iterations).
    restarts : int in [1, 10_000], default 1
        Runs from fresh random starts (per target class for APGD-T).
    loss : {"ce", "dlr", "margin"}, default "ce"
        Cross-entropy, the difference of logits ratio (scale invariant: it
        works on saturated logits where the cross-entropy gradient vanishes;
        needs at least 3 classes), or the logit margin; see
        :func:`hoodwink.losses.attack_loss`.
    target_classes : int in [0, 100_000], default 0
        0: plain APGD. ``k > 0``: APGD-T over the top ``k`` other classes
        (untargeted calls only; see above).
    skip_targets : int in [0, 100_000], default 0
        APGD-T leaves out the ``skip_targets`` likeliest of its ``k`` classes
        and attacks ranks ``skip_targets + 1`` to ``k`` only: how a run that
        attacked the first ranks goes on to the rest (``hoodwink.evaluate``'s
        probe). Must be smaller than ``target_classes`` when that is > 0.
    rho : float in [0, 1], default 0.75
        Condition (1) halves the step when the loss rose in fewer than this
        fraction of the steps since the last checkpoint.
    momentum : float in [0, 1], default 0.75
        The weight ``alpha`` of the new point ``z``; 1 is no momentum.
    seed : int >= 0 or None, default 0
        Seed of the attack's local random generator (random starts).

    Raises
    ------
    hoodwink.errors.ConfigError
        At construction, for a parameter outside its range; when called,
        for ``loss="dlr"`` on a model with fewer than 3 classes (the ratio is
        then constant).

    Examples
    --------
    >>> import torch, hoodwink
    >>> from hoodwink.attacks.apgd import APGD
    >>> net = torch.nn.Linear(2, 3, bias=False).eval()
    >>> with torch.no_grad():  # class c scores x . w_c
    ...     _ = net.weight.copy_(torch.tensor([[1., 0.], [0., 1.], [-1., -1.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> x = torch.tensor([[0.3, 0.1], [0.6, 0.0]])
    >>> # L∞ distances to class 1: (0.3 - 0.1) / 2 = 0.1 and 0.6 / 2 = 0.3.
    >>> result = APGD(steps=20)(model, x, torch.tensor([0, 0]), eps=0.2)
    >>> result.success.tolist(), result.pred_adv.tolist()
    ([True, False], [1, 0])
    """

    norm: NormName = "linf"
    steps: int = 100
    restarts: int = 1
    loss: LossName = "ce"
    target_classes: int = 0
    skip_targets: int = 0
    rho: float = 0.75
    momentum: float = 0.75

    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    _constraints = {
        # Upper limits so that a typo (steps=10**20) is an error, not a run that never ends.
        "steps": (Interval(int, 1, MAX_STEPS),),
        "restarts": (Interval(int, 1, MAX_RESTARTS),),
        "loss": (Options(get_args(LossName)),),
        "target_classes": (Interval(int, 0, MAX_TARGET_CLASSES),),
        "skip_targets": (Interval(int, 0, MAX_TARGET_CLASSES),),
        "rho": (Interval(float, 0, 1),),
        "momentum": (Interval(float, 0, 1),),
    }

    def _validate(self) -> None:
        if self.target_classes > 0:
            self._check("skip_targets", self.skip_targets < self.target_classes,
                        f"smaller than target_classes ({self.target_classes}), or no class "
                        "would be left to attack")

    def _first_pass_at_x(self) -> bool:
        # The clean pass is the attack's own: its logits give APGD-T its targets.
        return True

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        x, eps, n = inputs.x, inputs.eps, inputs.x.shape[0]
        num_classes = model.num_classes
        if self.loss == "dlr" and num_classes < 3:
            reject("APGD", "loss", self.loss,
                   "'ce' or 'margin' for a model with fewer than 3 classes",
                   hint=(f"The model has {num_classes} classes, and the difference of logits "
                         "ratio of 2 classes is constant, so it has no gradient."))
        clean_logits: torch.Tensor | None = None
        if not inputs.has_pred_clean:
            clean_logits = model.logits(x)
            inputs.set_pred_clean(clean_logits.argmax(dim=1))
        report = inputs.progress
        apgd_t = self.target_classes > 0 and not inputs.targeted
        k = min(self.target_classes, num_classes - 1)
        skip = min(self.skip_targets, k) if apgd_t else 0
        n_targets = k - skip if apgd_t else 1
        total = self.steps * self.restarts * n_targets
        # Samples are done once adversarial; those adversarial at x are done at once.
        broken = inputs.is_adversarial(inputs.pred_clean)
        if eps == 0 or n_targets == 0 or bool(broken.all()):
            if report is not None:
                report(total, total, "eps = 0: nothing to do" if eps == 0 else "all samples done")
            return x.clone()
        best = x.clone()
        # float64 holds the loss of a model of any float dtype exactly.
        best_loss = torch.full((n,), -torch.inf, dtype=torch.float64, device=x.device)
        targets: torch.Tensor | None = None
        if apgd_t:
            if clean_logits is None:  # the base class's clean pass gave labels only
                rows = (~broken).nonzero()[:, 0]
                clean_logits = torch.zeros(n, num_classes, dtype=x.dtype, device=x.device)
                clean_logits[rows] = model.logits(x[rows], rows=rows).to(x.dtype)
            # The classes of highest clean logits other than the true one, best first.
            others = clean_logits.scatter(1, inputs.labels[:, None], -torch.inf)
            targets = others.topk(k, dim=1).indices[:, skip:]
        state = _Best(best, best_loss, broken)
        run = 0
        for j in range(n_targets):
            for r in range(self.restarts):
                idx = (~state.broken).nonzero()[:, 0]
                if idx.numel() == 0:
                    break
                lab = inputs.labels if targets is None else targets[:, j]
                self._single_run(model, inputs, idx, lab[idx], targets is not None or
                                 inputs.targeted, state, (run, total))
                run += 1
                if report is not None:
                    what = (f"target {j + 1}/{n_targets}, " if apgd_t else "")
                    report(run * self.steps, total, f"{what}restart {r + 1}/{self.restarts} done")
        if report is not None and run * self.steps < total:
            report(total, total, "all samples done")
        return state.x

    def _single_run(self, model: QueryGate, inputs: AttackInputs, idx: torch.Tensor,
                    lab: torch.Tensor, targeted_loss: bool, state: _Best,
                    where: tuple[int, int]) -> None:
        """One APGD run from a random start on samples ``idx``, folded into ``state``.

        ``lab`` are the labels the loss is taken against (true labels, the
        caller's targets, or APGD-T's target class); success is always
        :meth:`AttackInputs.is_adversarial` against the caller's labels.
        ``where`` is (runs done before this one, steps of all runs) for progress.
        """
        x, eps = inputs.x, inputs.eps
        lo, hi = model.bounds
        levels = model.levels
        report, (run, total) = inputs.progress, where
        linf = self.norm == "linf"
        bshape = (-1,) + (1,) * (x.ndim - 1)
        full = idx.numel() == x.shape[0]  # every sample, in order: rows=None is cheaper
        xa = x[idx]
        if linf:
            box_lo = torch.maximum(xa - eps, lo)
            box_hi = torch.minimum(xa + eps, hi)

        def proj(z: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
            if linf:
                return torch.clamp(z, box_lo, box_hi)
            return clip_to_bounds(xs + project(z - xs, eps, "l2"), lo, hi)

        def snap(z: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
            return z if levels is None else quantize(xs, z, eps, self.norm, lo, hi, levels)

        def judge(q: torch.Tensor, last: bool) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor | None]:
            rows = None if full else idx
            if last:  # the final iterate needs no gradient
                logits = model.logits(q, rows=rows)
                loss = attack_loss(logits, lab, loss=self.loss, targeted=targeted_loss)
                return loss.double(), logits.argmax(dim=1), None
            loss, logits, grad = model.loss_gradient(q, lab, loss=self.loss,
                                                     targeted=targeted_loss, rows=rows)
            return loss.double(), logits.argmax(dim=1), grad

        # The random start, drawn on the CPU so that a seed gives the same start anywhere.
        u = (torch.rand(xa.shape, generator=inputs.generator) * 2 - 1 if linf
             else torch.randn(xa.shape, generator=inputs.generator))
        u = u.to(device=x.device, dtype=x.dtype)
        u = u / norms(u, self.norm).clamp_min(1e-30).reshape(bshape)
        xk = proj(xa + eps * u, xa)
        q = snap(xk, xa)
        loss, pred, grad = judge(q, False)
        m = idx.numel()
        x_max, f_max = q, loss
        g_max = grad
        eta = torch.full((m,), min(2 * eps, inputs.max_stepsize), dtype=x.dtype,
                         device=x.device)
        x_prev = xk
        f_prev = loss
        increases = torch.zeros(m, dtype=torch.int64, device=x.device)
        f_max_at_check = f_max
        halved_at_check = torch.ones(m, dtype=torch.bool, device=x.device)
        checks = set(checkpoints(self.steps))
        last_check = 0
        for k in range(self.steps + 1):
            if k > 0:
                increases = increases + (loss > f_prev)
                f_prev = loss
                better = loss > f_max
                x_max = torch.where(better.reshape(bshape), q, x_max)
                f_max = torch.where(better, loss, f_max)
                if grad is not None and g_max is not None:
                    g_max = torch.where(better.reshape(bshape), grad, g_max)
            adv = inputs.is_adversarial(pred, idx)
            if bool(adv.any()):
                state.take(idx[adv], q[adv], loss[adv], adversarial=True)
                keep = ~adv
                idx = idx[keep]
                if idx.numel() == 0:
                    return
                full = False
                xa, lab, q, loss = xa[keep], lab[keep], q[keep], loss[keep]
                xk, x_prev, f_prev = xk[keep], x_prev[keep], f_prev[keep]
                x_max, f_max = x_max[keep], f_max[keep]
                eta, increases = eta[keep], increases[keep]
                f_max_at_check, halved_at_check = f_max_at_check[keep], halved_at_check[keep]
                if linf:
                    box_lo, box_hi = box_lo[keep], box_hi[keep]
                if grad is not None and g_max is not None:
                    grad, g_max = grad[keep], g_max[keep]
            if k == self.steps or grad is None or g_max is None:
                break
            if k in checks:
                cond1 = increases < self.rho * (k - last_check)
                cond2 = ~halved_at_check & (f_max <= f_max_at_check)
                halve = cond1 | cond2
                eta = torch.where(halve, eta / 2, eta)
                hb = halve.reshape(bshape)
                xk = torch.where(hb, x_max, xk)
                grad = torch.where(hb, g_max, grad)
                halved_at_check, f_max_at_check = halve, f_max
                increases = torch.zeros_like(increases)
                last_check = k
            direction = grad.sign() if linf else steepest_step(grad, "l2")
            z = proj(xk + eta.reshape(bshape) * direction, xa)
            if k == 0:  # the first step is without momentum
                xn = z
            else:
                a = self.momentum
                xn = proj(xk + a * (z - xk) + (1 - a) * (xk - x_prev), xa)
            x_prev, xk = xk, xn
            q = snap(xk, xa)
            loss, pred, grad = judge(q, k + 1 == self.steps)
            if report is not None and k + 1 < self.steps:
                report(run * self.steps + k + 1, total, f"run {run + 1}, step {k + 1}")
        state.take(idx, x_max, f_max, adversarial=False)


class _Best:
    """Per sample: the point to return, its loss, and whether it is adversarial."""

    def __init__(self, x: torch.Tensor, loss: torch.Tensor, broken: torch.Tensor) -> None:
        self.x, self.loss, self.broken = x, loss, broken

    def take(self, rows: torch.Tensor, points: torch.Tensor, loss: torch.Tensor, *,
             adversarial: bool) -> None:
        """Keep ``points`` for samples ``rows``: always if adversarial, else where the loss rose."""
        if not adversarial:
            better = loss > self.loss[rows]
            rows, points, loss = rows[better], points[better], loss[better]
        else:
            self.broken[rows] = True
        self.x[rows] = points.to(self.x.dtype)
        self.loss[rows] = loss

"""The fast gradient sign method and its L2 form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, get_args

import torch

from hoodwink._validation import Options
from hoodwink.attacks._gate import QueryGate
from hoodwink.attacks._norms import clip_to_bounds, steepest_step
from hoodwink.attacks.base import AttackInputs, GradientAttack
from hoodwink.losses import LossName

__all__ = ["FGSM"]


@dataclass(frozen=True, kw_only=True)
class FGSM(GradientAttack):
    """Fast gradient sign method (Goodfellow, Shlens and Szegedy, ICLR 2015).

    One gradient step of size ``eps``: ``x + eps * sign(∇x L)`` for L∞, or
    ``x + eps * ∇x L / ‖∇x L‖₂`` for L2, then clipped to the bounds. For a
    linear score ``wᵀx`` the L∞ step raises the score by exactly ``eps‖w‖₁``,
    which grows with the input dimension: the seed article's ε·n·m argument.

    Threat model: white box (needs input gradients), untargeted or targeted
    (a targeted call steps *down* the loss of the target class), L∞ or L2.

    Cost: two model passes per sample (``result.queries == 2``): the gradient
    pass at ``x``, which also gives the clean prediction, and the base class's
    verification pass on the result.

    Parameters
    ----------
    norm : {"linf", "l2"}, default "linf"
    loss : {"ce", "margin", "dlr"}, default "ce"
        Cross-entropy, the logit margin or the DLR (see hoodwink.losses.attack_loss).
    seed : int or None, default 0
        Unused (FGSM is deterministic); recorded for uniformity.

    Examples
    --------
    >>> import torch, hoodwink
    >>> net = torch.nn.Linear(3, 2, bias=False).eval()
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[0., 0., 0.], [3., -5., 7.]]))
    >>> model = hoodwink.TorchClassifier(net, bounds=(-1, 1))
    >>> x = torch.zeros(1, 3)
    >>> r = hoodwink.FGSM()(model, x, target=1, eps=0.1)
    >>> (r.x_adv / 0.1).round().tolist()  # eta = sign(w) = [1, -1, 1]
    [[1.0, -1.0, 1.0]]
    >>> float(net(r.x_adv / 0.1)[0, 1].detach())  # w . eta = 3 + 5 + 7
    15.0
    """

    loss: LossName = "ce"

    supported_norms: ClassVar[tuple[str, ...]] = ("linf", "l2")

    _constraints = {"loss": (Options(get_args(LossName)),)}

    def _first_pass_at_x(self) -> bool:
        return True  # the gradient pass at x also gives the clean prediction

    def _run(self, model: QueryGate, inputs: AttackInputs) -> torch.Tensor:
        x = inputs.x
        _, logits, grad = model.loss_gradient(
            x, inputs.labels, loss=self.loss, targeted=inputs.targeted
        )
        if not inputs.has_pred_clean:
            inputs.set_pred_clean(logits.argmax(dim=1))
        lo, hi = model.bounds
        step = steepest_step(grad, self.norm)
        x_adv = clip_to_bounds(x + inputs.eps * step, lo, hi)
        if inputs.progress is not None:
            inputs.progress(1, 1, "FGSM step")
        return x_adv

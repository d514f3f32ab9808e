"""Attacker objectives shared by adapters and attacks."""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["LossName", "attack_loss"]

LossName = Literal["ce", "margin", "dlr"]
#: Guard of the DLR denominator (Croce and Hein, 2020).
_DLR_TINY = 1e-12


def attack_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, loss: LossName, targeted: bool
) -> torch.Tensor:
    """Per-sample attacker objective (higher is better for the attacker).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
    labels : torch.Tensor, shape (N,)
        True labels (untargeted) or targets (targeted).
    loss : {"ce", "margin", "dlr"}
        Cross-entropy, the logit margin of Carlini and Wagner (2017), or the
        difference of logits ratio of Croce and Hein (2020).
    targeted : bool

    Returns
    -------
    torch.Tensor, shape (N,)
        Untargeted: ``CE(y)``, ``max_{j≠y} z_j − z_y`` or the DLR
        ``(max_{j≠y} z_j − z_y) / (z_π1 − z_π3)``. Targeted: ``−CE(t)``,
        ``z_t − max_{j≠t} z_j`` or ``(z_t − max_{j≠t} z_j) / (z_π1 − (z_π3 +
        z_π4) / 2)``, where ``z_π1 ≥ z_π2 ≥ ...`` are the sorted logits. For the
        margin and the DLR, positive means success.

    Notes
    -----
    The DLR is the margin divided by a spread of the top logits, so it does not
    change when the logits are shifted or scaled: saturated (very large)
    logits do not make it vanish. Its targeted form takes the largest other
    logit where the paper takes the true class's (the loss sees only the
    target); while the true class leads, they are the same. With fewer classes
    than its denominator needs (3 untargeted, 4 targeted) the last logit stands
    in for the missing ones. A tiny constant (1e-12) keeps the denominator
    positive.
    """
    if loss == "ce":
        ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        return -ce if targeted else ce
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], -math.inf).amax(dim=1)
    margin = own - others if targeted else others - own
    if loss == "margin":
        return margin
    top = logits.sort(dim=1, descending=True).values
    last = logits.shape[1] - 1

    def z(i: int) -> torch.Tensor:  # the i-th largest logit (1-based), the last if fewer
        return top[:, min(i, last + 1) - 1]

    spread = z(1) - (0.5 * (z(3) + z(4)) if targeted else z(3))
    return margin / (spread + _DLR_TINY)

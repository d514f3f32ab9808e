"""Attacker objectives shared by adapters and attacks."""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["LossName", "attack_loss"]

LossName = Literal["ce", "margin"]


def attack_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, loss: LossName, targeted: bool
) -> torch.Tensor:
    """Per-sample attacker objective (higher is better for the attacker).

    Parameters
    ----------
    logits : torch.Tensor, shape (N, C)
    labels : torch.Tensor, shape (N,)
        True labels (untargeted) or targets (targeted).
    loss : {"ce", "margin"}
        Cross-entropy, or the logit margin of Carlini and Wagner (2017).
    targeted : bool

    Returns
    -------
    torch.Tensor, shape (N,)
        Untargeted: ``CE(y)`` or ``max_{j≠y} z_j − z_y``. Targeted: ``−CE(t)``
        or ``z_t − max_{j≠t} z_j``. For the margin, positive means success.
    """
    if loss == "ce":
        ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        return -ce if targeted else ce
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.scatter(1, labels[:, None], -math.inf).amax(dim=1)
    return own - others if targeted else others - own

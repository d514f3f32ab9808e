"""The one result record every attack returns: :class:`AttackResult`."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["SCHEMA_VERSION", "AttackResult", "environment"]

#: Version of the JSON layout written by :meth:`AttackResult.to_dict`.
SCHEMA_VERSION = "hoodwink.attack_result/1"


@dataclass(frozen=True)
class AttackResult:
    """What an attack produced, per sample, with the facts needed to judge it.

    ``success`` and ``pred_adv`` come from a fresh forward pass on ``x_adv``
    made by the attack base class after all projections, so they cannot
    disagree with the model.

    Attributes
    ----------
    x_adv : torch.Tensor, shape (N, ...)
        Adversarial inputs: same shape, dtype and device as the inputs, within
        the model bounds and the eps-ball (and on the model's grid if it has
        ``levels``).
    success : torch.Tensor of bool, shape (N,)
        Untargeted: ``pred_adv != y``. Targeted: ``pred_adv == target``.
        An untargeted sample the model already got wrong counts as a success
        with ``x_adv == x``.
    clean_correct : torch.Tensor of bool, shape (N,)
        ``pred_clean == y``; all False when no true labels were given.
    pred_clean, pred_adv : torch.Tensor of int64, shape (N,)
        Predictions on ``x`` and on ``x_adv``.
    perturbation_norm : torch.Tensor, shape (N,)
        ``‖x_adv − x‖`` in the attack's norm.
    queries : torch.Tensor of int64, shape (N,)
        Model evaluations (forward passes, with or without backward) spent on
        each sample.
    y : torch.Tensor or None
        True labels, when given.
    target : torch.Tensor or None
        Target labels for a targeted attack, else None.
    eps : float or None
        The budget; None for minimum-norm attacks.
    norm : str
        "linf", "l2" or "l1".
    attack : str
        The attack's repr: every parameter that shaped the result.
    seed : int or None
        The seed of the attack's local random generator.
    time_s : float
        Wall time of the attack call, in seconds.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    clean_correct: torch.Tensor
    pred_clean: torch.Tensor
    pred_adv: torch.Tensor
    perturbation_norm: torch.Tensor
    queries: torch.Tensor
    y: torch.Tensor | None
    target: torch.Tensor | None
    eps: float | None
    norm: str
    attack: str
    seed: int | None
    time_s: float

    @property
    def targeted(self) -> bool:
        """Whether the attack aimed at given target classes."""
        return self.target is not None

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    def robust_accuracy(self) -> float:
        """Fraction of *all* samples still classified correctly after the attack.

        ``mean(pred_adv == y)`` over every sample, so samples the model got
        wrong before the attack count as errors. This is the number to quote as
        "accuracy under attack at eps". Needs true labels.

        Raises
        ------
        ValueError
            When the attack was run without true labels.
        """
        if self.y is None:
            raise ValueError(
                "robust_accuracy() needs true labels; this attack was run without y."
            )
        return float((self.pred_adv == self.y).float().mean().item())

    def success_rate(self) -> float:
        """Fraction of the samples the attack could act on where it succeeded.

        Untargeted: among samples classified correctly before the attack, the
        fraction whose prediction changed (``mean(success[clean_correct])``);
        samples already wrong are excluded, since there is nothing to attack.
        Targeted: among all samples, the fraction classified as their target.
        Returns ``nan`` when no sample qualifies.
        """
        if self.target is not None:
            return float(self.success.float().mean().item())
        if self.y is None:
            return float(self.success.float().mean().item())
        mask = self.clean_correct
        if not bool(mask.any()):
            return float("nan")
        return float(self.success[mask].float().mean().item())

    def clean_accuracy(self) -> float:
        """Fraction of samples classified correctly before the attack."""
        if self.y is None:
            raise ValueError("clean_accuracy() needs true labels; this run had none.")
        return float(self.clean_correct.float().mean().item())

    def summary(self) -> dict[str, Any]:
        """Aggregate figures (no per-sample arrays)."""
        out: dict[str, Any] = {
            "attack": self.attack,
            "norm": self.norm,
            "eps": self.eps,
            "targeted": self.targeted,
            "n": len(self),
            "success_rate": _finite_or_none(self.success_rate()),
            "seed": self.seed,
            "time_s": round(self.time_s, 4),
            "queries_mean": float(self.queries.float().mean().item()) if len(self) else 0.0,
        }
        if self.y is not None:
            out["clean_accuracy"] = self.clean_accuracy()
            out["robust_accuracy"] = self.robust_accuracy()
        succ = self.success
        if bool(succ.any()):
            out["median_norm_successful"] = float(self.perturbation_norm[succ].median().item())
        return out

    def to_dict(self, *, per_sample: bool = True) -> dict[str, Any]:
        """A JSON-ready record: summary, environment and per-sample results.

        Parameters
        ----------
        per_sample : bool, default True
            Include per-sample arrays (labels, predictions, success, norms).
        """
        rec: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "summary": self.summary(),
            "environment": environment(),
        }
        if per_sample:
            rec["samples"] = {
                "y": _list(self.y),
                "target": _list(self.target),
                "pred_clean": _list(self.pred_clean),
                "pred_adv": _list(self.pred_adv),
                "success": _list(self.success),
                "perturbation_norm": _list(self.perturbation_norm),
                "queries": _list(self.queries),
            }
        return rec


def _finite_or_none(v: float) -> float | None:
    return None if np.isnan(v) else v


def _list(t: torch.Tensor | None) -> list[Any] | None:
    if t is None:
        return None
    return [v for v in t.detach().cpu().tolist()]


def environment() -> dict[str, str]:
    """Library and platform versions, recorded in every report."""
    from hoodwink import __version__

    return {
        "hoodwink": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }

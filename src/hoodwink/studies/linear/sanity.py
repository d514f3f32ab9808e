"""The sanity checks a practitioner makes while training a linear classifier.

Karpathy's essay on fooling linear classifiers lists three moments where the
numbers told him a hyperparameter was wrong; :func:`hoodwink.studies.linear.train_linear`
checks each one and both records a :class:`SanityFlag` in its training log and
issues a warning (a subclass of :class:`hoodwink.errors.SanityWarning`):

* :class:`InitialLossWarning`: the loss before the first update is far from
  what small random weights give (``ln C`` for softmax, ``C - 1`` for the
  multi-class SVM). "A starting loss of about 80 [instead of 7.0] right away
  tells you that the initialisation is completely out of whack."
* :class:`ExplodingLossWarning`: the loss became non-finite or grew far above
  its starting value: the learning rate is too high.
* :class:`WeakRegularizationWarning`: at the end of training the weight decay
  term is a negligible share of the total loss, as with the usual 0.0005 on
  12,288-dimensional input.

The thresholds are module constants, documented here so that a report can
state them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hoodwink.errors import SanityWarning

__all__ = [
    "EXPLODE_FACTOR",
    "EXPLODE_WINDOW",
    "INITIAL_LOSS_HIGH",
    "INITIAL_LOSS_LOW",
    "MIN_REG_SHARE",
    "ExplodingLossWarning",
    "InitialLossWarning",
    "LossKind",
    "SanityFlag",
    "WeakRegularizationWarning",
    "check_exploding_loss",
    "check_initial_loss",
    "check_regularization_share",
    "expected_initial_loss",
]

LossKind = Literal["softmax", "svm"]

#: The initial loss is flagged when it exceeds this multiple of the expected one.
INITIAL_LOSS_HIGH = 1.5
#: ... or falls below this multiple (a sign of a broken loss or labels).
INITIAL_LOSS_LOW = 0.5
#: The loss has exploded when the mean of the last EXPLODE_WINDOW step losses
#: exceeds EXPLODE_FACTOR times max(initial loss, expected initial loss).
EXPLODE_FACTOR = 3.0
#: Number of recent steps averaged by the explosion check.
EXPLODE_WINDOW = 10
#: Weight decay is "negligible" when its share of the final total loss is below this.
MIN_REG_SHARE = 1e-3


class InitialLossWarning(SanityWarning):
    """The loss at initialisation is far from ln(C) (softmax) or C - 1 (SVM)."""


class ExplodingLossWarning(SanityWarning):
    """The training loss became non-finite or grew far above its initial value."""


class WeakRegularizationWarning(SanityWarning):
    """The weight-decay term is a negligible share of the total loss."""


@dataclass(frozen=True)
class SanityFlag:
    """One sanity check that fired during training.

    Attributes
    ----------
    check : {"initial_loss", "exploding_loss", "weak_regularization"}
        Which check fired.
    message : str
        The full explanation, naming the hyperparameter and a likely fix.
    value : float
        The measured quantity (initial loss, exploded loss, regularisation share).
    expected : float
        What a healthy run gives (expected loss, threshold).
    parameter : str
        The hyperparameter to change: ``init_std``, ``lr`` or ``weight_decay``.
    suggestion : float
        A value of that hyperparameter likely to fix the problem.
    """

    check: Literal["initial_loss", "exploding_loss", "weak_regularization"]
    message: str
    value: float
    expected: float
    parameter: str
    suggestion: float

    @property
    def warning_class(self) -> type[SanityWarning]:
        """The warning class issued for this flag."""
        return {
            "initial_loss": InitialLossWarning,
            "exploding_loss": ExplodingLossWarning,
            "weak_regularization": WeakRegularizationWarning,
        }[self.check]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "check": self.check,
            "warning": self.warning_class.__name__,
            "message": self.message,
            "value": _finite(self.value),
            "expected": self.expected,
            "parameter": self.parameter,
            "suggestion": self.suggestion,
        }


def _finite(v: float) -> float | str:
    return v if math.isfinite(v) else repr(v)


def expected_initial_loss(kind: LossKind, num_classes: int) -> float:
    """The data loss of a linear classifier whose weights are all near zero.

    Parameters
    ----------
    kind : {"softmax", "svm"}
    num_classes : int
        Number of classes C.

    Returns
    -------
    float
        ``ln C`` for softmax (every class gets probability 1/C: 2.30 for 10
        classes, 6.91 for 1000) and ``C - 1`` for the multi-class hinge loss
        with margin 1 (every wrong class violates the margin by exactly 1).
    """
    return math.log(num_classes) if kind == "softmax" else float(num_classes - 1)


def check_initial_loss(
    initial_loss: float,
    *,
    kind: LossKind,
    num_classes: int,
    init_std: float,
    input_norm: float,
) -> SanityFlag | None:
    """Flag an initial loss far from :func:`expected_initial_loss`.

    Parameters
    ----------
    initial_loss : float
        Mean data loss over the training set before the first update.
    kind : {"softmax", "svm"}
    num_classes : int
    init_std : float
        Standard deviation of the Gaussian initialisation of the weights.
    input_norm : float
        Root-mean-square L2 norm of the training inputs; the initial logits
        have standard deviation about ``init_std * input_norm``.

    Returns
    -------
    SanityFlag or None
        None when ``initial_loss`` lies within [0.5, 1.5] times the expected value.
    """
    expected = expected_initial_loss(kind, num_classes)
    ratio = initial_loss / expected if math.isfinite(initial_loss) else math.inf
    if INITIAL_LOSS_LOW <= ratio <= INITIAL_LOSS_HIGH:
        return None
    # Logits of std init_std * input_norm; about 0.01 keeps every class near 1/C.
    suggestion = float(f"{0.01 / max(input_norm, 1e-12):.1g}")
    logit_std = init_std * input_norm
    if ratio > INITIAL_LOSS_HIGH:
        message = (
            f"The initial loss is {initial_loss:.4g}, but a {kind} classifier with small random "
            f"weights should start near {expected:.3g} "
            f"({'ln' if kind == 'softmax' else 'C - 1 for C ='} {num_classes}). The "
            f"initialisation scale init_std={init_std:g} is too large for inputs of RMS norm "
            f"{input_norm:.3g}: the initial logits have std about {logit_std:.3g}. "
            f"Try init_std={suggestion:g}."
        )
    else:
        message = (
            f"The initial loss is {initial_loss:.4g}, well below the {expected:.3g} that small "
            f"random weights give for {num_classes} classes. Check that the labels match the "
            f"inputs and that init_std={init_std:g} is what you meant (try {suggestion:g})."
        )
    return SanityFlag(
        check="initial_loss", message=message, value=initial_loss, expected=expected,
        parameter="init_std", suggestion=suggestion,
    )


def check_exploding_loss(
    recent_losses: list[float], *, initial_loss: float, expected: float, lr: float, step: int
) -> SanityFlag | None:
    """Flag a loss that became non-finite or grew far above where it started.

    Parameters
    ----------
    recent_losses : list of float
        The most recent step losses (the check averages the last
        ``EXPLODE_WINDOW``). The newest is last.
    initial_loss : float
        Data loss before training.
    expected : float
        :func:`expected_initial_loss` for the model.
    lr : float
        The learning rate, named in the message.
    step : int
        The optimisation step at which the check runs (for the message).

    Returns
    -------
    SanityFlag or None
    """
    if not recent_losses:
        return None
    last = recent_losses[-1]
    window = recent_losses[-EXPLODE_WINDOW:]
    mean = sum(window) / len(window)
    base = max(initial_loss if math.isfinite(initial_loss) else expected, expected)
    limit = EXPLODE_FACTOR * base
    if math.isfinite(last) and math.isfinite(mean) and mean <= limit:
        return None
    suggestion = float(f"{lr / 10:.1g}")
    shown = last if not math.isfinite(last) else mean
    message = (
        f"The training loss exploded to {shown:.4g} at step {step} (it started at "
        f"{initial_loss:.4g}; the limit is {EXPLODE_FACTOR:g}x that). The learning rate "
        f"lr={lr:g} is too high for this input scale: lower it, e.g. lr={suggestion:g}, and "
        "keep lowering it by 10x until the loss decreases steadily. Training was stopped; the "
        "model keeps the weights of the last epoch completed before the explosion (the "
        "initial weights if none was)."
    )
    return SanityFlag(
        check="exploding_loss", message=message, value=shown, expected=limit,
        parameter="lr", suggestion=suggestion,
    )


def check_regularization_share(
    reg_loss: float, data_loss: float, *, weight_decay: float, input_dim: int
) -> SanityFlag | None:
    """Flag a weight decay whose loss term is a negligible share of the total.

    Parameters
    ----------
    reg_loss : float
        ``0.5 * weight_decay * ||W||^2`` at the end of training.
    data_loss : float
        Mean data loss at the end of training.
    weight_decay : float
        The weight-decay coefficient. A zero weight decay is an explicit
        choice and is never flagged.
    input_dim : int
        Input dimension, named in the message.

    Returns
    -------
    SanityFlag or None
        None when ``weight_decay == 0`` or the share is at least ``MIN_REG_SHARE``.
    """
    if weight_decay == 0:
        return None
    total = reg_loss + data_loss
    share = reg_loss / total if total > 0 else 0.0
    if not math.isfinite(share) or share >= MIN_REG_SHARE:
        return None
    # The share grows roughly linearly in weight_decay while it is small.
    factor = MIN_REG_SHARE * 10 / max(share, 1e-30)
    suggestion = float(f"{weight_decay * min(factor, 1e6):.1g}")
    message = (
        f"The regularisation loss is {100 * share:.2g}% of the total loss at the end of "
        f"training ({reg_loss:.3g} of {total:.4g}): weight_decay={weight_decay:g} is negligible "
        f"on {input_dim}-dimensional input and the templates are likely overfitted noise. Try "
        f"weight_decay={suggestion:g} or more (the essay needed 100 on 12,288-dimensional "
        "images)."
    )
    return SanityFlag(
        check="weak_regularization", message=message, value=share, expected=MIN_REG_SHARE,
        parameter="weight_decay", suggestion=suggestion,
    )

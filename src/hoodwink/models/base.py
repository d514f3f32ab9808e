"""The model seam: the :class:`Classifier` protocol and its capability flags.

Every adapter (PyTorch today; scikit-learn, plain callables and ONNX later)
satisfies :class:`Classifier`. Attacks ask the model for what they need through
this protocol and check :attr:`Classifier.capabilities` first, so a gradient
attack on a label-only model fails with a :class:`~hoodwink.errors.CapabilityError`
instead of a confusing crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

import torch

from hoodwink._validation import check_bool, check_choice

__all__ = [
    "Capabilities", "Classifier", "DifferentiableClassifier", "OutputKind", "ScoreClassifier",
]

OutputKind = Literal["logits", "probabilities", "labels"]


@dataclass(frozen=True)
class Capabilities:
    """What a wrapped model can do.

    Parameters
    ----------
    differentiable : bool
        Whether gradients of the output with respect to the raw input exist.
    output : {"logits", "probabilities", "labels"}
        The richest output the model exposes: unnormalised scores, a
        probability vector, or only the predicted label (decision-based).
    """

    differentiable: bool
    output: OutputKind

    def __post_init__(self) -> None:
        # Attacks branch on these flags: a truthy string or a misspelt kind would
        # silently pick the wrong branch.
        object.__setattr__(self, "differentiable",
                           check_bool("Capabilities", "differentiable", self.differentiable))
        object.__setattr__(self, "output", check_choice("Capabilities", "output", self.output,
                                                        get_args(OutputKind)))


@runtime_checkable
class Classifier(Protocol):
    """A classifier over raw inputs in a box ``[lower, upper]``.

    Inputs are always *raw* (e.g. pixels in [0, 1]); any normalisation the
    underlying network expects is applied by the adapter, never by attacks.
    """

    @property
    def capabilities(self) -> Capabilities:
        """What this model can do (gradients, kind of output)."""
        ...

    @property
    def num_classes(self) -> int:
        """Number of classes C.

        An adapter that learns it from the model's first output may raise
        :class:`~hoodwink.errors.ConfigError` before that, naming the fix
        (e.g. pass ``num_classes=``).
        """
        ...

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds, each broadcastable to one input."""
        ...

    @property
    def levels(self) -> int | None:
        """Number of quantisation levels per feature (256 = 8-bit), or None."""
        ...

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, shape (N,), int64, on ``x``'s device."""
        ...


@runtime_checkable
class ScoreClassifier(Classifier, Protocol):
    """A :class:`Classifier` that answers with a score per class.

    ``capabilities.output`` says whether the scores are logits (any real
    numbers, the larger the likelier) or probabilities.
    """

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Scores, shape (N, C), float, on ``x``'s device."""
        ...


@runtime_checkable
class DifferentiableClassifier(Classifier, Protocol):
    """A :class:`Classifier` that also gives logits and input gradients."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, C)."""
        ...

    def loss_gradient(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss: Literal["ce", "margin", "dlr"] = "ce",
        targeted: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attacker loss (higher is better for the attacker), logits, gradient w.r.t. x."""
        ...

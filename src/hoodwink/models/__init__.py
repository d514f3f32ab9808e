"""Model adapters: the :class:`Classifier` protocol and its implementations."""

from hoodwink.models.base import Capabilities, Classifier, DifferentiableClassifier
from hoodwink.models.loading import load_model
from hoodwink.models.torch import Normalize, TorchClassifier

__all__ = [
    "Capabilities",
    "Classifier",
    "DifferentiableClassifier",
    "Normalize",
    "TorchClassifier",
    "load_model",
]

"""Model adapters: the :class:`Classifier` protocol and its implementations.

:class:`TorchClassifier` wraps PyTorch networks (white box, gradients);
:class:`SklearnClassifier`, :class:`CallableClassifier` and
:class:`OnnxClassifier` wrap black boxes that answer NumPy batches with scores
or labels. scikit-learn, onnxruntime and skops are imported only when used.
"""

from hoodwink.models.base import (
    Capabilities,
    Classifier,
    DifferentiableClassifier,
    ScoreClassifier,
)
from hoodwink.models.callable import CallableClassifier
from hoodwink.models.loading import load_model
from hoodwink.models.onnx import OnnxClassifier
from hoodwink.models.sklearn import SklearnClassifier
from hoodwink.models.torch import Normalize, TorchClassifier

__all__ = [
    "CallableClassifier",
    "Capabilities",
    "Classifier",
    "DifferentiableClassifier",
    "Normalize",
    "OnnxClassifier",
    "ScoreClassifier",
    "SklearnClassifier",
    "TorchClassifier",
    "load_model",
]

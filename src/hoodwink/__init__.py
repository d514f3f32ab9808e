"""hoodwink: systematically fool classifiers and measure how easily they are fooled."""

from hoodwink import errors
from hoodwink.attacks import FGSM, PGD, Attack, AttackResult
from hoodwink.models import Capabilities, Classifier, Normalize, TorchClassifier

__version__ = "0.1.0"

__all__ = [
    "FGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "Capabilities",
    "Classifier",
    "Normalize",
    "TorchClassifier",
    "__version__",
    "errors",
]

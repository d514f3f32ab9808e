"""hoodwink: systematically fool classifiers and measure how easily they are fooled.

>>> import hoodwink
>>> sorted(hoodwink.zoo.available())[:2]
['efficientnet-lite0', 'efficientnet-lite1']
"""

__version__ = "0.1.0"

from hoodwink import errors, zoo  # noqa: E402
from hoodwink.attacks import FGSM, PGD, Attack, AttackResult, Curve, ResultTable  # noqa: E402
from hoodwink.data import Dataset, load_dataset  # noqa: E402
from hoodwink.models import (  # noqa: E402
    Capabilities,
    Classifier,
    Normalize,
    TorchClassifier,
    load_model,
)

__all__ = [
    "Attack",
    "AttackResult",
    "Capabilities",
    "Classifier",
    "Curve",
    "Dataset",
    "FGSM",
    "Normalize",
    "PGD",
    "ResultTable",
    "TorchClassifier",
    "__version__",
    "errors",
    "load_dataset",
    "load_model",
    "zoo",
]

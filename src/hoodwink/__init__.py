"""hoodwink: systematically fool classifiers and measure how easily they are fooled.

>>> import hoodwink
>>> sorted(hoodwink.zoo.available())[:2]
['efficientnet-lite0', 'efficientnet-lite1']
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names load on first use (PEP 562), so that `import hoodwink` and the CLI's
# start-up (`hoodwink --version`, `--help`) do not pay for importing torch.
_LAZY = {
    "Attack": "hoodwink.attacks",
    "AttackResult": "hoodwink.attacks",
    "Curve": "hoodwink.attacks",
    "BoundaryWalk": "hoodwink.attacks",
    "EstimatedGradient": "hoodwink.attacks",
    "HopSkipJump": "hoodwink.attacks",
    "LocalSearch": "hoodwink.attacks",
    "SimBA": "hoodwink.attacks",
    "Square": "hoodwink.attacks",
    "Substitute": "hoodwink.attacks",
    "FGSM": "hoodwink.attacks",
    "PGD": "hoodwink.attacks",
    "APGD": "hoodwink.attacks",
    "CarliniWagner": "hoodwink.attacks",
    "DeepFool": "hoodwink.attacks",
    "FMN": "hoodwink.attacks",
    "Evaluation": "hoodwink.evaluation",
    "evaluate": "hoodwink.evaluation",
    "TrainingResult": "hoodwink.training",
    "adversarial_train": "hoodwink.training",
    "ResultTable": "hoodwink.attacks",
    "Dataset": "hoodwink.data",
    "load_dataset": "hoodwink.data",
    "CallableClassifier": "hoodwink.models",
    "Capabilities": "hoodwink.models",
    "Classifier": "hoodwink.models",
    "Normalize": "hoodwink.models",
    "OnnxClassifier": "hoodwink.models",
    "SklearnClassifier": "hoodwink.models",
    "TorchClassifier": "hoodwink.models",
    "load_model": "hoodwink.models",
    "errors": "hoodwink.errors",
    "zoo": "hoodwink.zoo",
}

if TYPE_CHECKING:
    from hoodwink import errors, zoo
    from hoodwink.attacks import (
        APGD,
        FGSM,
        FMN,
        PGD,
        Attack,
        AttackResult,
        BoundaryWalk,
        CarliniWagner,
        Curve,
        DeepFool,
        EstimatedGradient,
        HopSkipJump,
        LocalSearch,
        ResultTable,
        SimBA,
        Square,
        Substitute,
    )
    from hoodwink.data import Dataset, load_dataset
    from hoodwink.evaluation import Evaluation, evaluate
    from hoodwink.models import (
        CallableClassifier,
        Capabilities,
        Classifier,
        Normalize,
        OnnxClassifier,
        SklearnClassifier,
        TorchClassifier,
        load_model,
    )
    from hoodwink.training import TrainingResult, adversarial_train


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hoodwink' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    value = mod if module == f"hoodwink.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "APGD",
    "Attack",
    "AttackResult",
    "BoundaryWalk",
    "CallableClassifier",
    "Capabilities",
    "CarliniWagner",
    "Classifier",
    "Curve",
    "Dataset",
    "DeepFool",
    "EstimatedGradient",
    "Evaluation",
    "FGSM",
    "FMN",
    "HopSkipJump",
    "LocalSearch",
    "Normalize",
    "OnnxClassifier",
    "PGD",
    "ResultTable",
    "SimBA",
    "SklearnClassifier",
    "Square",
    "Substitute",
    "TorchClassifier",
    "TrainingResult",
    "__version__",
    "adversarial_train",
    "errors",
    "evaluate",
    "load_dataset",
    "load_model",
    "zoo",
]

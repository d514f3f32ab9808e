"""TorchClassifier, Normalize, load_model, and the NumPy-backed adapters (scikit-learn,
callables, ONNX) with generated arguments, models and files."""

from ._gen_adapter import (
    classifier_constructions,
    model_loads,
    normalize_constructions,
    numpy_adapters,
)
from ._suite import fuzz_pair

test_classifier, test_classifier_long = fuzz_pair(
    classifier_constructions(), "classifier", examples=40)
test_normalize, test_normalize_long = fuzz_pair(normalize_constructions(), "normalize", examples=40)
test_load_model, test_load_model_long = fuzz_pair(model_loads(), "load_model", examples=30)
test_numpy_adapter, test_numpy_adapter_long = fuzz_pair(
    numpy_adapters(), "adapter_numpy", examples=60)

"""CallableClassifier: any function from NumPy batches to scores or labels."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
import torch

import hoodwink
from hoodwink.errors import CapabilityError, ConfigError, ModelOutputError, ShapeError
from hoodwink.models import CallableClassifier, Classifier

#: A 3-class linear model on 2x3 inputs: class c scores W[c] . x.
W = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 2.0],
              [0.0, 1.0, 0.0, 0.0, -1.0, 0.0],
              [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]])


def linear(batch: np.ndarray) -> np.ndarray:
    out: np.ndarray = batch.reshape(len(batch), -1) @ W.T
    return out


def softmax(batch: np.ndarray) -> np.ndarray:
    z = linear(batch)
    e = np.exp(z - z.max(1, keepdims=True))
    out: np.ndarray = e / e.sum(1, keepdims=True)
    return out


def inputs(n: int = 10) -> torch.Tensor:
    return torch.rand(n, 2, 3, generator=torch.Generator().manual_seed(0))


def test_logits_are_the_function_output() -> None:
    x = inputs()
    clf = CallableClassifier(linear, num_classes=3, bounds=(0, 1), levels=256)
    assert isinstance(clf, Classifier)
    assert clf.capabilities == hoodwink.Capabilities(differentiable=False, output="logits")
    expected = torch.from_numpy(linear(x.numpy())).float()
    s = clf.scores(x)
    assert s.dtype == torch.float32 and torch.equal(s, expected)
    p = clf.predict(x)
    assert p.dtype == torch.int64 and torch.equal(p, expected.argmax(1))
    assert clf.num_classes == 3 and clf.levels == 256 and clf.class_names is None


def test_function_sees_float32_batches_in_x_shape_in_chunks() -> None:
    seen: list[tuple[tuple[int, ...], np.dtype[Any]]] = []

    def spy(batch: np.ndarray) -> np.ndarray:
        seen.append((batch.shape, batch.dtype))
        out = linear(batch.copy())
        batch += 100.0  # writing into its input must not reach x
        return out

    x = inputs(10).double()
    x0 = x.clone()
    clf = CallableClassifier(spy, num_classes=3, bounds=(0, 1), batch_size=4)
    s = clf.scores(x)
    assert seen == [((4, 2, 3), np.dtype(np.float32))] * 2 + [((2, 2, 3), np.dtype(np.float32))]
    assert torch.equal(x, x0)
    np.testing.assert_allclose(s.numpy(), linear(x.float().numpy()), rtol=1e-6)


def test_probabilities_are_validated() -> None:
    x = inputs()
    clf = CallableClassifier(softmax, num_classes=3, bounds=(0, 1), output="probabilities")
    s = clf.scores(x)
    np.testing.assert_allclose(s.sum(1).numpy(), 1.0, atol=1e-6)
    assert torch.equal(clf.predict(x), torch.from_numpy(linear(x.numpy())).argmax(1))
    for bad in (lambda b: softmax(b) * 2,  # rows sum to 2
                lambda b: linear(b),  # scores, not probabilities
                lambda b: softmax(b) - 0.5):  # negative values
        with pytest.raises(ModelOutputError, match=r"not probabilities.*output='logits'"):
            CallableClassifier(bad, num_classes=3, bounds=(0, 1),
                               output="probabilities").scores(x)


def test_labels_output() -> None:
    x = inputs()
    truth = linear(x.numpy()).argmax(1)
    clf = CallableClassifier(lambda b: linear(b).argmax(1).tolist(), num_classes=3,
                             bounds=(0, 1), output="labels", class_names=("a", "b", "c"))
    assert clf.capabilities.output == "labels" and clf.class_names == ("a", "b", "c")
    assert clf.predict(x).tolist() == truth.tolist()
    with pytest.raises(CapabilityError, match=r"label-only.*HopSkipJump"):
        clf.scores(x)
    integral = CallableClassifier(lambda b: linear(b).argmax(1).astype(np.float64),
                                  num_classes=3, bounds=(0, 1), output="labels")
    assert integral.predict(x).tolist() == truth.tolist()


@pytest.mark.parametrize(
    ("fn", "output", "match"),
    [(lambda b: linear(b)[:, 0], "logits", r"shape \(10,\).*output='labels'"),
     (lambda b: linear(b)[:, :2], "logits", r"2 scores per input.*3 classes"),
     (lambda b: linear(b)[:5], "logits", r"shape \(5, 3\) for a batch of 10"),
     (lambda b: linear(b)[:, :1], "logits", r"1 value\(s\) per input"),
     (lambda b: np.full((len(b), 3), np.nan), "logits", "NaN or infinite"),
     (lambda b: np.full((len(b), 3), 1e300), "logits", "float32 range"),
     (lambda b: np.array([["x"] * 3] * len(b)), "logits", "dtype <U1"),
     (lambda b: [[1, 2], [3]], "logits", "not an array"),
     (lambda b: np.full((len(b), 3), np.inf), "probabilities", "NaN or infinite"),
     (lambda b: linear(b), "labels", r"shape \(10, 3\).*output='logits'"),
     (lambda b: np.full(len(b), 0.5), "labels", "integers 0..C-1"),
     (lambda b: np.full(len(b), 3), "labels", r"label 3, outside the class indices 0\.\.2"),
     (lambda b: np.full(len(b), -1), "labels", "label -1"),
     (lambda b: np.array(["a"] * len(b)), "labels", "dtype <U1")],
    ids=["1d-logits", "too-few-classes", "too-few-rows", "one-column", "nan", "overflow",
         "strings", "ragged", "inf-prob", "2d-labels", "fractional", "too-large", "negative",
         "str-labels"],
)
def test_bad_outputs_are_model_output_errors(fn: Any, output: Any, match: str) -> None:
    clf = CallableClassifier(fn, num_classes=3, bounds=(0, 1), output=output)
    with pytest.raises(ModelOutputError, match=match):
        clf.predict(inputs())


def test_function_errors_are_chained_and_named() -> None:
    def score_remote(batch: np.ndarray) -> np.ndarray:
        raise ConnectionError("HTTP 503")

    clf = CallableClassifier(score_remote, num_classes=3, bounds=(0, 1))
    with pytest.raises(ModelOutputError, match=r"score_remote raised ConnectionError.*503") as e:
        clf.scores(inputs())
    assert isinstance(e.value.__cause__, ConnectionError)


def test_empty_batch_does_not_call_the_function() -> None:
    calls = []

    def fn(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return linear(batch)

    clf = CallableClassifier(fn, num_classes=3, bounds=(0, 1))
    empty = torch.zeros(0, 2, 3)
    assert clf.predict(empty).shape == (0,) and clf.predict(empty).dtype == torch.int64
    s = clf.scores(empty)
    assert s.shape == (0, 3) and s.dtype == torch.float32
    assert calls == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"fn": 3}, "needs a function"),
     ({"fn": dict}, "the class dict"),
     ({"num_classes": 1}, "'num_classes'"),
     ({"num_classes": 2.0}, "'num_classes'"),
     # Found by the fuzz suite: 2**64 was accepted, then scores() of an empty batch
     # crashed in torch.empty with an OverflowError-like TypeError.
     ({"num_classes": 2**64}, r"'num_classes'.*\[2, 2147483647\]"),
     ({"output": "scores"}, "'output'"),
     ({"class_names": ("a", "b")}, r"class_names has 2 entries.*3 classes"),
     ({"class_names": ("a", "a", "b")}, "Not unique"),
     ({"class_names": "abc"}, "'class_names'"),
     ({"bounds": (1, 0)}, "lower < upper"),
     ({"bounds": (0, 1), "input_shape": (2, 0)}, "'input_shape'"),
     ({"bounds": (torch.zeros(4), torch.ones(4)), "input_shape": (2, 3)}, "does not fit")],
    ids=["not-callable", "class", "one-class", "float-classes", "huge-classes", "output",
         "names-count", "names-dupes", "names-str", "bounds", "input-shape", "bounds-shape"],
)
def test_bad_parameters(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"fn": linear, "num_classes": 3, "bounds": (0, 1)} | kwargs
    fn = args.pop("fn")
    with pytest.raises(ConfigError, match=match):
        CallableClassifier(fn, **args)


def test_input_shape_and_bounds_are_checked_before_the_call() -> None:
    clf = CallableClassifier(linear, num_classes=3, bounds=(0, 1), input_shape=(2, 3))
    with pytest.raises(ShapeError, match=r"\(N, 2, 3\); got \(4, 6\)"):
        clf.predict(torch.zeros(4, 6))
    per_feature = CallableClassifier(linear, num_classes=3,
                                     bounds=(torch.zeros(2, 3), torch.ones(2, 3)))
    with pytest.raises(ShapeError, match="bounds"):
        per_feature.predict(torch.zeros(4, 6))


def test_repr_and_docstring_example() -> None:
    clf = CallableClassifier(linear, num_classes=3, bounds=(0, 1), levels=256)
    assert repr(clf) == ("CallableClassifier(linear, output='logits', classes=3, "
                         "bounds=(0, 1), levels=256)")
    import hoodwink.models.callable as mod

    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0

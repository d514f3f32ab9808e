"""Hardening of the model adapter (issue 9, "Adapter"): one test per root cause.

Each test states the class of bad value it covers, so a regression names its
cause. The errors must be in the documented tree and name the parameter and
the fix; no input may be changed by the model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import LINEAR_NET_SRC, C, D, N, inputs, linear_net  # noqa: E402
from hoodwink import FGSM, PGD, TorchClassifier
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    HoodwinkError,
    InputError,
    ModelOutputError,
    ShapeError,
)
from hoodwink.models import Normalize, load_model


class Wrap(nn.Module):
    """A module applying ``fn`` to its input and to a linear layer's output."""

    def __init__(self, before: Any = None, after: Any = None) -> None:
        super().__init__()
        self.lin = linear_net()
        self.before, self.after = before, after
        self.eval()

    def forward(self, x: torch.Tensor) -> Any:
        if self.before is not None:
            x = self.before(x)
        out = self.lin(x)
        return self.after(out) if self.after is not None else out


# ---------------------------------------------------------------------------- device
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only machine")
def test_device_cuda_without_gpu_is_config_error() -> None:
    """device='cuda' on a machine without CUDA: ConfigError naming 'device' and the fix."""
    with pytest.raises(ConfigError, match=r"'device' parameter of TorchClassifier.*'cuda'.*'cpu'"):
        TorchClassifier(linear_net(), device="cuda")
    with pytest.raises(ConfigError, match=r"'device'"):
        TorchClassifier(linear_net(), device=torch.device("cuda", 3))


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "cpu:-1", 3, 1.5, ["cpu"], b"cpu"],
                         ids=repr)
def test_device_bad_value_is_config_error(device: Any) -> None:
    """A device string torch cannot parse, or a value of another type, is a ConfigError."""
    with pytest.raises(ConfigError, match=r"'device' parameter of TorchClassifier"):
        TorchClassifier(linear_net(), device=device)


def test_device_meta_is_refused() -> None:
    """The meta device holds no data: refused as a device, and a meta module is refused."""
    with pytest.raises(ConfigError, match=r"'device'.*meta"):
        TorchClassifier(linear_net(), device="meta")
    with torch.device("meta"):
        net = nn.Linear(D, C)
    with pytest.raises(ConfigError, match=r"meta device.*load"):
        TorchClassifier(net)


def test_device_cpu_spellings_accepted() -> None:
    """'cpu', torch.device('cpu') and None all give a working CPU model."""
    x, _ = inputs()
    for device in ("cpu", torch.device("cpu"), None):
        assert TorchClassifier(linear_net(), device=device).predict(x).shape == (N,)


# ---------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("pre", ["normalize", 3, (0.5, 0.25), Normalize],
                         ids=["str", "int", "tuple", "class-not-instance"])
def test_preprocessing_must_be_callable(pre: Any) -> None:
    """preprocessing= must be a callable instance (a module or function), not a class or value."""
    with pytest.raises(ConfigError, match=r"'preprocessing' parameter of TorchClassifier"):
        TorchClassifier(linear_net(), preprocessing=pre)


def test_preprocessing_returning_non_tensor() -> None:
    """A preprocessing that returns something else than a tensor: ModelOutputError naming it."""
    model = TorchClassifier(linear_net(), preprocessing=lambda x: x.numpy())
    x, _ = inputs()
    with pytest.raises(ModelOutputError, match=r"preprocessing returned ndarray"):
        model.predict(x)


# ---------------------------------------------------------------------------- num_classes etc.
@pytest.mark.parametrize("value", ["2", 1, 0, -3, True, 2.0, 3.5, None.__class__, [3]],
                         ids=repr)
def test_num_classes_must_be_int_at_least_2(value: Any) -> None:
    """num_classes is an int >= 2: "2" is refused at construction, not at the first call."""
    with pytest.raises(ConfigError, match=r"'num_classes' parameter of TorchClassifier must be "
                                          r"an int in \[2, inf\)"):
        TorchClassifier(linear_net(), num_classes=value)


def test_num_classes_numpy_int_accepted() -> None:
    """A numpy integer is a valid num_classes, stored as a Python int."""
    model = TorchClassifier(linear_net(), num_classes=np.int64(3))
    assert model.num_classes == 3 and type(model.num_classes) is int


def test_num_classes_mismatch_names_source() -> None:
    """An output width other than num_classes names both numbers and where each came from."""
    model = TorchClassifier(linear_net(), num_classes=4)
    x, _ = inputs()
    with pytest.raises(ModelOutputError, match=r"returned 3 class scores.*num_classes=4"):
        model.predict(x)


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        ("abc", r"a sequence of str"),
        ([1, 2, 3], r"a sequence of str"),
        (("a", "b", None), r"a sequence of str"),
        (("a", "b", "a"), r"unique.*'a'"),
        (("a",), r"at least 2"),
        ({"a": 0, "b": 1, "c": 2}, r"a sequence of str"),
        (42, r"a sequence of str"),
    ],
    ids=["str", "ints", "none-entry", "duplicate", "one-name", "dict", "int"],
)
def test_class_names_checked(names: Any, pattern: str) -> None:
    """class_names is a sequence of at least 2 distinct strings."""
    prefix = r"'class_names' parameter of TorchClassifier.*"
    with pytest.raises(ConfigError, match=prefix + pattern):
        TorchClassifier(linear_net(), class_names=names)


def test_class_names_against_num_classes() -> None:
    """class_names and num_classes that disagree: ConfigError naming both."""
    with pytest.raises(ConfigError, match=r"class_names has 2 entries but num_classes is 3"):
        TorchClassifier(linear_net(), class_names=("a", "b"), num_classes=3)


def test_class_names_against_output_width() -> None:
    """class_names are compared with the output width on the first call."""
    model = TorchClassifier(linear_net(), class_names=("a", "b", "c", "d"))
    x, _ = inputs()
    with pytest.raises(ModelOutputError, match=r"returned 3 class scores.*class_names \(4 names\)"):
        model.logits(x)


def test_class_names_numpy_strings_accepted() -> None:
    """A numpy array of names is accepted and stored as a tuple of str."""
    model = TorchClassifier(linear_net(), class_names=np.array(["a", "b", "c"]))
    assert model.class_names == ("a", "b", "c")
    assert all(type(n) is str for n in model.class_names)


@pytest.mark.parametrize("shape", [(0, 6), (-1,), "6", 6, (6.0,), (True,), (), [[6]], (2**70,)],
                         ids=repr)
def test_input_shape_is_tuple_of_positive_ints(shape: Any) -> None:
    """input_shape is a non-empty sequence of positive ints."""
    with pytest.raises(ConfigError, match=r"'input_shape' parameter of TorchClassifier"):
        TorchClassifier(linear_net(), input_shape=shape)


def test_input_shape_accepts_sizes_and_lists() -> None:
    """torch.Size, lists and numpy ints are valid input shapes, stored as a tuple of int."""
    for shape in (torch.Size([D]), [D], (np.int64(D),)):
        model = TorchClassifier(linear_net(), input_shape=shape)
        assert model.input_shape == (D,)


def test_input_shape_and_bounds_shape_must_fit() -> None:
    """Per-feature bounds with a batch dimension do not fit one input of input_shape."""
    with pytest.raises(ConfigError, match=r"bounds.*shape \(1, 6\).*input_shape \(6,\)"):
        TorchClassifier(linear_net(), bounds=(np.zeros((1, D)), np.ones((1, D))),
                        input_shape=(D,))


# ---------------------------------------------------------------------------- output dtype
@pytest.mark.parametrize(
    "after",
    [lambda z: z.argmax(1, keepdim=True).expand(-1, C), lambda z: z > 0,
     lambda z: z.round().long(), lambda z: torch.complex(z, z)],
    ids=["argmax-int", "bool", "long", "complex"],
)
def test_non_float_logits_refused(after: Any) -> None:
    """A module returning labels or bools instead of scores: ModelOutputError naming the fix."""
    model = TorchClassifier(Wrap(after=after))
    x, y = inputs()
    with pytest.raises(ModelOutputError, match=r"dtype torch\.\w+.*float scores"):
        model.predict(x)
    with pytest.raises(ModelOutputError, match=r"float scores"):
        FGSM()(model, x, y, eps=0.1)


# ---------------------------------------------------------------------------- no gradient path
class Constant(nn.Module):
    """Logits that ignore the input."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


class Detached(nn.Module):
    """Logits computed from a detached copy of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = linear_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.detach())


class OwnLeaf(nn.Module):
    """Logits from a fresh leaf that requires grad but does not involve x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], C, requires_grad=True) * 2


@pytest.mark.parametrize("net", [Constant, Detached, OwnLeaf], ids=lambda c: c.__name__)
@pytest.mark.parametrize("attack", [FGSM(), PGD(steps=2)], ids=["FGSM", "PGD"])
def test_no_gradient_path_is_capability_error(net: type[nn.Module], attack: Any) -> None:
    """Logits that do not depend on x differentiably: CapabilityError, not an autograd error."""
    model = TorchClassifier(net().eval())
    x, y = inputs()
    with pytest.raises(CapabilityError, match=r"no gradient.*input"):
        attack(model, x, y, eps=0.1)
    with pytest.raises(CapabilityError, match=r"no gradient"):
        model.loss_gradient(x, y)


def test_no_gradient_path_in_objective() -> None:
    """An objective_gradient objective that ignores its inputs: CapabilityError naming it."""
    model = TorchClassifier(linear_net())
    x, _ = inputs()
    with pytest.raises(CapabilityError, match=r"objective"):
        model.objective_gradient(x, lambda out, xc: out.detach().sum(1))


# ---------------------------------------------------------------------------- in-place writes
class WritesInput(nn.Module):
    """A module that scales its input in place before a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = linear_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x.mul_(0.5)
        return self.lin(x)


class SetsInput(nn.Module):
    """A module that zeroes a slice of its input (an in-place write through a view)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = linear_net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone() if x.requires_grad else x  # writing a leaf that needs grad is refused
        x[:, 0] = 0
        return self.lin(x)


@pytest.mark.parametrize("net", [WritesInput, SetsInput], ids=lambda c: c.__name__)
def test_module_writing_its_input_leaves_x_unchanged(net: type[nn.Module]) -> None:
    """A module that writes into its input never changes the caller's x, on any call."""
    model = TorchClassifier(net().eval())
    x, y = inputs()
    before = x.clone()
    for _ in range(3):  # the first call and the ones after it
        model.logits(x)
        model.predict(x[:2])
        model.loss_gradient(x, y)
        assert torch.equal(x, before)
    PGD(steps=3)(model, x, y, eps=0.1)
    FGSM()(model, x, y, eps=0.1)
    assert torch.equal(x, before)


def test_preprocessing_writing_its_input_leaves_x_unchanged() -> None:
    """A preprocessing callable that writes in place is handed a copy too."""

    def pre(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return x.sub_(0.5)

    model = TorchClassifier(linear_net(), preprocessing=pre)
    x, y = inputs()
    before = x.clone()
    for _ in range(2):
        model.logits(x)
        PGD(steps=2)(model, x, y, eps=0.1)
    assert torch.equal(x, before)


def test_module_writing_input_gives_same_logits_as_on_a_copy() -> None:
    """The copy is what the module sees: logits equal the module's on a fresh copy of x."""
    net = WritesInput().eval()
    model = TorchClassifier(net)
    x, _ = inputs()
    with torch.no_grad():
        expected = net(x.clone())
    for _ in range(2):
        assert torch.allclose(model.logits(x), expected)


# ---------------------------------------------------------------------------- levels
@pytest.mark.parametrize("levels", [1, 0, -256, 2.5, 256.0, True, "256", 10**30, np.array(256)],
                         ids=repr)
def test_levels_range_checked(levels: Any) -> None:
    """levels is an int in [2, 2**24] or None."""
    with pytest.raises(ConfigError, match=r"'levels' parameter of TorchClassifier must be an int"):
        TorchClassifier(linear_net(), levels=levels)


def test_levels_numpy_int_accepted() -> None:
    """np.int64(256) is a valid number of levels, stored as an int."""
    model = TorchClassifier(linear_net(), levels=np.int64(256))
    assert model.levels == 256 and type(model.levels) is int


# ---------------------------------------------------------------------------- Normalize
@pytest.mark.parametrize(
    ("mean", "std", "name"),
    [
        (None, 0.5, "mean"),
        (0.5, None, "std"),
        ("0.5", 0.5, "mean"),
        (0.5, "abc", "std"),
        ([0.5, [0.5, 0.5]], 0.5, "mean"),
        ([[0.5, 0.5], [0.5, 0.5]], 0.5, "mean"),
        ([], 0.5, "mean"),
        (0.5, 0.0, "std"),
        (0.5, -0.25, "std"),
        (0.5, [0.2, 0.0, 0.2], "std"),
        (math.nan, 0.5, "mean"),
        (0.5, math.inf, "std"),
        (10**400, 0.5, "mean"),
        (1e39, 0.5, "mean"),
        (True, 0.5, "mean"),
        (0.5, np.array(["a"]), "std"),
        (0.5, torch.tensor([1 + 1j]), "std"),
        (0.5, 1e-46, "std"),
    ],
    ids=["mean-None", "std-None", "mean-str", "std-str", "ragged", "2d", "empty", "std-zero",
         "std-negative", "std-zero-entry", "mean-nan", "std-inf", "huge-int", "float32-overflow",
         "bool", "str-array", "complex", "std-underflow"],
)
def test_normalize_statistics_checked(mean: Any, std: Any, name: str) -> None:
    """Normalize refuses missing, non-numeric, ragged, non-finite or non-positive statistics."""
    with pytest.raises(ConfigError, match=rf"'{name}' parameter of Normalize"):
        Normalize(mean, std)


def test_normalize_mean_std_lengths() -> None:
    """mean and std of different lengths (neither 1) name both lengths."""
    with pytest.raises(ConfigError, match=r"mean has 3 values and std 2"):
        Normalize([0.5, 0.5, 0.5], [0.2, 0.2])


@pytest.mark.parametrize("dim", [0, -1, True, "1", 1.0], ids=repr)
def test_normalize_dim_checked(dim: Any) -> None:
    """dim is an int >= 1."""
    with pytest.raises(ConfigError, match=r"'dim' parameter of Normalize"):
        Normalize(0.5, 0.5, dim=dim)


def test_normalize_accepts_arrays_and_tensors() -> None:
    """numpy arrays, tensors (even requiring grad) and numpy scalars are valid statistics."""
    a = Normalize(np.array([0.5, 0.5, 0.5]), torch.tensor([0.25, 0.25, 0.25], requires_grad=True))
    b = Normalize(np.float32(0.5), 0.25)
    x = torch.ones(1, 3, 2, 2)
    assert torch.allclose(a(x), b(x))


def test_float16_module_with_normalize() -> None:
    """Normalize's float32 statistics do not turn a float16 module's input into float32."""
    net = nn.Linear(D, C).to(torch.bfloat16).eval()
    model = TorchClassifier(net, preprocessing=Normalize(0.5, 0.25))
    x, _ = inputs()
    assert model.logits(x).shape == (N, C)


# ---------------------------------------------------------------------------- num_classes early
def test_num_classes_before_first_call_inferred_with_input_shape() -> None:
    """With input_shape, num_classes is learnt from one pass before any call."""
    model = TorchClassifier(linear_net(), input_shape=(D,))
    assert model.num_classes == C


def test_num_classes_before_first_call_without_shape_says_how() -> None:
    """Without input_shape or class_names, num_classes is a ConfigError naming the fixes."""
    model = TorchClassifier(linear_net())
    with pytest.raises(ConfigError, match=r"num_classes=.*input_shape=.*logits\(x\)"):
        _ = model.num_classes
    x, _ = inputs()
    model.predict(x)
    assert model.num_classes == C


def test_num_classes_from_class_names() -> None:
    """class_names give the number of classes without a forward pass."""
    assert TorchClassifier(linear_net(), class_names=("a", "b", "c")).num_classes == C


# ---------------------------------------------------------------------------- unbatched input
class Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 5 * 6, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def image() -> torch.Tensor:
    return torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preprocessing": Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])},
        {"input_shape": (3, 5, 6)},
        {"bounds": (torch.zeros(3, 5, 6), torch.ones(3, 5, 6))},
    ],
    ids=["normalize", "input-shape", "shaped-bounds"],
)
def test_unbatched_input_says_add_batch_dimension(kwargs: dict[str, Any]) -> None:
    """A single (C, H, W) input gets "add a batch dimension", not a complaint about Normalize."""
    model = TorchClassifier(Cnn().eval(), **kwargs)
    x = image()
    with pytest.raises(ShapeError, match=r"batch dimension.*x\[None\]"):
        model.logits(x)
    with pytest.raises(ShapeError, match=r"batch dimension"):
        PGD(steps=2)(model, x, eps=0.1)
    assert model.logits(x[None]).shape == (1, C)


def test_bounds_with_batch_dimension_refused_at_call() -> None:
    """Bounds shaped (2, D) with inputs (1, D): ShapeError, not 2 results for 1 input."""
    model = TorchClassifier(linear_net(), bounds=(torch.zeros(2, D), torch.ones(2, D)))
    x, y = inputs()
    with pytest.raises(ShapeError, match=r"bounds.*\(2, 6\).*one input"):
        model.logits(x[:1])
    with pytest.raises(ShapeError):
        PGD(steps=2)(model, x[:1], y[:1], eps=0.1)


@pytest.mark.parametrize(
    ("x", "error", "pattern"),
    [
        (np.zeros((N, D), dtype=np.float32), InputError, r"torch\.Tensor"),
        (torch.zeros(N, D, dtype=torch.uint8), ShapeError, r"dtype torch\.uint8"),
        (torch.zeros(N, D, dtype=torch.bool), ShapeError, r"dtype torch\.bool"),
        (torch.tensor(0.5), ShapeError, r"shape \(\)"),
        (torch.zeros(N, D, device="meta"), ShapeError, r"meta"),
    ],
    ids=["numpy", "uint8", "bool", "0-d", "meta"],
)
def test_logits_input_checked(x: Any, error: type[Exception], pattern: str) -> None:
    """logits/predict/loss_gradient refuse inputs they cannot use with a clear error."""
    model = TorchClassifier(linear_net())
    with pytest.raises(error, match=pattern):
        model.logits(x)
    with pytest.raises(error, match=pattern):
        model.loss_gradient(x, torch.zeros(N, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"loss": "hinge"}, ConfigError, r"'loss' parameter"),
        ({"targeted": "yes"}, ConfigError, r"'targeted' parameter"),
        ({"labels": torch.tensor([0, 1, 2, 3])}, InputError, r"labels.*0\.\.2"),
        ({"labels": torch.tensor([0.0, 1.0, 2.0, 0.0])}, ShapeError, r"labels.*dtype"),
        ({"labels": torch.tensor([0, 1])}, ShapeError, r"labels.*shape \(2,\)"),
    ],
    ids=["loss", "targeted", "label-range", "float-labels", "label-count"],
)
def test_loss_gradient_arguments_checked(kwargs: dict[str, Any], error: type[Exception],
                                         pattern: str) -> None:
    """loss_gradient called directly validates loss, targeted and labels."""
    model = TorchClassifier(linear_net())
    x, y = inputs()
    args: dict[str, Any] = {"labels": y, **kwargs}
    with pytest.raises(error, match=pattern):
        model.loss_gradient(x, **args)


def test_objective_must_be_callable_and_shaped() -> None:
    """objective_gradient needs a callable objective returning one value per sample."""
    model = TorchClassifier(linear_net())
    x, _ = inputs()
    with pytest.raises(ConfigError, match=r"'objective'"):
        model.objective_gradient(x, "ce")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"objective returned shape \(\)"):
        model.objective_gradient(x, lambda out, xc: out.sum())


# ---------------------------------------------------------------------------- bounds values
@pytest.mark.parametrize(
    "bounds",
    [("0", "1"), (0, "1"), (False, True), (0, 10**400), (0, 1e39), (np.zeros(0), np.ones(0)),
     (np.array(["0"]), 1), (0, torch.zeros(D, device="meta")), (0, 1j), (None, 1)],
    ids=["strs", "str", "bools", "huge-int", "float32-overflow", "empty", "str-array", "meta",
         "complex", "none"],
)
def test_bounds_values_checked(bounds: Any) -> None:
    """Bounds are real numbers or arrays of them: strings, bools and overflows are refused."""
    with pytest.raises(ConfigError, match=r"bound"):
        TorchClassifier(linear_net(), bounds=bounds)


def test_user_preprocessing_module_not_moved() -> None:
    """A preprocessing module on another device than the model's is copied, never moved."""
    pre = Normalize(0.5, 0.25)
    TorchClassifier(linear_net(), preprocessing=pre)
    assert pre.mean.device.type == "cpu"


# ---------------------------------------------------------------------------- load_model
@pytest.fixture()
def net_file(tmp_path: Path) -> Path:
    p = tmp_path / "usernet.py"
    p.write_text(LINEAR_NET_SRC + '''

import hoodwink


def the_class():
    return hoodwink.TorchClassifier


def exits():
    raise SystemExit(3)
''')
    return p


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"bounds": ("0", "1")}, r"bound"),
        ({"bounds": "0,1"}, r"'bounds'"),
        ({"bounds": (0,)}, r"'bounds'"),
        ({"mean": "0.5", "std": "0.25"}, r"'mean'"),
        ({"mean": [0.5, None], "std": [0.2, 0.2]}, r"'mean'"),
        ({"mean": [0.5], "std": [0.0]}, r"'std'"),
        ({"levels": "256"}, r"'levels'"),
        ({"trust_pickle": "yes"}, r"'trust_pickle'"),
        ({"device": "cuda:abc"}, r"'device'"),
    ],
    ids=["bounds-strs", "bounds-str", "bounds-short", "mean-str", "mean-none-entry", "std-zero",
         "levels-str", "trust-pickle-str", "device"],
)
def test_load_model_domain_checked(net_file: Path, kwargs: dict[str, Any], pattern: str) -> None:
    """load_model refuses a bad domain with a ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match=pattern):
        load_model(f"{net_file}:factory", **kwargs)


def test_load_model_scalar_mean_std(net_file: Path) -> None:
    """Scalar mean and std are one statistic for every channel, not a crash."""
    clf = load_model(f"{net_file}:factory", mean=0.5, std=0.25)
    assert clf.predict(torch.full((2, 2, 3), 0.5)).shape == (2,)


def test_load_model_statistics_of_the_wrong_length(net_file: Path) -> None:
    """mean/std that do not fit the channels: an error in the tree at the first call."""
    clf = load_model(f"{net_file}:factory", mean=[0.5] * 4, std=[0.25] * 4)
    with pytest.raises(HoodwinkError, match=r"Normalize has 4 statistics"):
        clf.predict(torch.full((2, 2, 3), 0.5))


@pytest.mark.parametrize(
    ("spec", "kwargs", "pattern"),
    [
        ("a\0b.pt", {}, r"."),
        ("x" * 5000 + ".pt", {}, r"."),
        ("x" * 5000 + ".safetensors", {"arch": "m:C"}, r"."),
        ("x" * 5000, {}, r"Unknown model"),
        ("{net}:factory", {"arch": 3}, r"'arch'"),
        ("{net}:the_class", {}, r"returned a type"),
        ("{net}:exits", {}, r"SystemExit"),
        (3, {}, r"model spec"),
    ],
    ids=["nul", "long-pickle", "long-safetensors", "long-name", "arch-int", "class",
         "system-exit", "spec-int"],
)
def test_load_model_odd_specs(net_file: Path, spec: Any, kwargs: dict[str, Any],
                              pattern: str) -> None:
    """Odd specs end in a ConfigError, never an OSError, ValueError or SystemExit."""
    if isinstance(spec, str):
        spec = spec.replace("{net}", str(net_file))
    with pytest.raises(ConfigError, match=pattern):
        load_model(spec, **kwargs)


def test_load_model_state_dict_with_odd_keys(net_file: Path, tmp_path: Path) -> None:
    """A pickled state dict with non-string keys or non-tensor values is a ConfigError."""
    p = tmp_path / "odd.pt"
    torch.save({1: torch.zeros(3), "fc.weight": "nope"}, p)
    with pytest.raises(ConfigError, match=r"do not fit"):
        load_model(str(p), arch=f"{net_file}:Net", trust_pickle=True)
    good = {"fc.weight": torch.zeros(3, 6), "fc.bias": [0.0, 0.0, 0.0]}
    torch.save(good, p)
    with pytest.raises(ConfigError, match=r"fc\.bias"):
        load_model(str(p), arch=f"{net_file}:Net", trust_pickle=True)


# ---------------------------------------------------------------------------- Capabilities
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"differentiable": "yes", "output": "logits"}, "differentiable"),
     ({"differentiable": 1, "output": "logits"}, "differentiable"),
     ({"differentiable": True, "output": "logit"}, "output"),
     ({"differentiable": True, "output": np.array(["logits"])}, "output")],
    ids=["str-flag", "int-flag", "misspelt-kind", "array-kind"],
)
def test_capabilities_checked(kwargs: dict[str, Any], name: str) -> None:
    """Capabilities flags are a bool and one of the output kinds: attacks branch on them."""
    from hoodwink.models import Capabilities

    with pytest.raises(ConfigError, match=rf"'{name}' parameter of Capabilities"):
        Capabilities(**kwargs)
    assert Capabilities(differentiable=np.True_, output="labels").differentiable is True


# ---------------------------------------------------------------------------- inference mode
def test_inference_tensors() -> None:
    """Inference tensors work for logits (no version counter needed) and get a clear error
    where gradients are needed, inside or outside inference mode."""
    model = TorchClassifier(WritesInput().eval())
    with torch.inference_mode():
        x = torch.rand(N, D)
        before = x.clone()
        for _ in range(2):
            assert model.logits(x).shape == (N, C)
        assert torch.equal(x, before)
        with pytest.raises(InputError, match=r"inference_mode"):
            model.loss_gradient(x, torch.zeros(N, dtype=torch.long))
    assert model.logits(x).shape == (N, C)
    assert torch.equal(x, before)
    with pytest.raises(InputError, match=r"inference_mode"):
        model.loss_gradient(x, torch.zeros(N, dtype=torch.long))
    with pytest.raises(InputError, match=r"inference_mode"):
        FGSM()(model, x, torch.zeros(N, dtype=torch.long), eps=0.1)

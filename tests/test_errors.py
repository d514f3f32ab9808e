"""Bad inputs a new user would try: the documented error class and a message with the fix."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from _helpers import C, D, inputs, linear_net  # noqa: E402
from hoodwink import FGSM, PGD, Capabilities, Classifier, TorchClassifier, errors
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    EpsScaleWarning,
    InputError,
    ModelOutputError,
    OutOfBoundsError,
    ShapeError,
    TrainingModeWarning,
)


def mode_snapshot(module: nn.Module) -> tuple[list[bool], list[bool]]:
    return [m.training for m in module.modules()], [p.requires_grad for p in module.parameters()]


class Returns(nn.Module):
    """A module returning whatever ``fn`` makes of the linear logits."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.lin = linear_net()
        self.fn = fn
        self.eval()

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(self.lin(x))


# Each case: (id, module factory, model kwargs, call(model, x, y), error, message pattern).
Call = Callable[[TorchClassifier, torch.Tensor, torch.Tensor], Any]
_CASES: list[tuple[str, Callable[[], nn.Module], dict[str, Any], Call, type[Exception], str]] = [
    ("negative-eps", linear_net, {}, lambda m, x, y: PGD()(m, x, y, eps=-0.03),
     ConfigError, r"'eps' parameter of PGD must be a float in \[0, inf\)\. Got -0\.03"),
    ("nan-eps", linear_net, {}, lambda m, x, y: FGSM()(m, x, y, eps=float("nan")),
     ConfigError, r"'eps' parameter of FGSM .*Got nan"),
    ("inf-eps", linear_net, {}, lambda m, x, y: PGD()(m, x, y, eps=float("inf")),
     ConfigError, r"'eps' parameter of PGD .*Got inf"),
    ("string-eps", linear_net, {}, lambda m, x, y: PGD()(m, x, y, eps="8/255"),
     ConfigError, r"'eps' parameter of PGD must be a float"),
    ("array-eps", linear_net, {}, lambda m, x, y: PGD()(m, x, y, eps=np.array([0.1])),
     ConfigError, r"'eps' parameter of PGD must be a float in \[0, inf\)\. Got array\(\[0\.1\]\)"),
    ("bool-eps", linear_net, {}, lambda m, x, y: FGSM()(m, x, y, eps=True),
     ConfigError, r"'eps' parameter of FGSM .*Got True\."),
    ("huge-int-eps", linear_net, {}, lambda m, x, y: FGSM()(m, x, y, eps=10**400),
     ConfigError, r"'eps' parameter of FGSM .*Got an int of about 1e400, too large for a float"),
    ("out-of-bounds", linear_net, {}, lambda m, x, y: PGD()(m, (x - 0.5) / 0.25, y, eps=0.1),
     OutOfBoundsError, r"outside the model bounds \[0, 1\].*preprocessing="),
    ("label-too-large", linear_net, {}, lambda m, x, y: PGD()(m, x, y + 3, eps=0.1),
     InputError, r"y contains \d, outside the model's classes 0\.\.2"),
    ("negative-label", linear_net, {}, lambda m, x, y: PGD()(m, x, y - 1, eps=0.1),
     InputError, r"y contains -1, outside the model's classes 0\.\.2"),
    ("label-shape", linear_net, {}, lambda m, x, y: PGD()(m, x, y[:, None], eps=0.1),
     ShapeError, r"y has shape \(4, 1\) .* must have shape \(4,\)"),
    ("label-count", linear_net, {}, lambda m, x, y: PGD()(m, x, y[:3], eps=0.1),
     ShapeError, r"y has shape \(3,\) but x has 4 samples"),
    ("float-labels", linear_net, {}, lambda m, x, y: PGD()(m, x, y.float(), eps=0.1),
     ShapeError, r"y has dtype torch\.float32; labels must be integers .*\.long\(\)"),
    ("one-hot-labels", linear_net, {},
     lambda m, x, y: PGD()(m, x, nn.functional.one_hot(y, C), eps=0.1),
     ShapeError, r"y has shape \(4, 3\)"),
    ("target-equals-label", linear_net, {}, lambda m, x, y: PGD()(m, x, y, target=y, eps=0.1),
     InputError, r"target equals the true label y .*pick another target"),
    ("target-out-of-range", linear_net, {}, lambda m, x, y: PGD()(m, x, target=7, eps=0.1),
     InputError, r"target contains 7, outside the model's classes 0\.\.2"),
    ("empty-batch", linear_net, {}, lambda m, x, y: PGD()(m, x[:0], y[:0], eps=0.1),
     InputError, r"empty batch"),
    ("uint8-inputs", linear_net, {},
     lambda m, x, y: PGD()(m, (x * 255).to(torch.uint8), y, eps=0.1),
     ShapeError, r"dtype torch\.uint8.*x\.float\(\) / 255"),
    ("nan-inputs", linear_net, {},
     lambda m, x, y: PGD()(m, torch.where(x > 0.5, torch.nan, x), y, eps=0.1),
     InputError, r"NaN"),
    ("unbatched-input", linear_net, {}, lambda m, x, y: PGD()(m, x[0], y[:1], eps=0.1),
     ShapeError, r"batch of shape \(N, \.\.\.\).*x\[None\]"),
    ("list-input", linear_net, {}, lambda m, x, y: PGD()(m, x.tolist(), y, eps=0.1),
     InputError, r"x must be a torch\.Tensor or numpy array"),
    ("off-grid-inputs", linear_net, {"levels": 256}, lambda m, x, y: PGD()(m, x, y, eps=0.1),
     InputError, r"levels=256 but x is not on that grid.*torch\.round\(x \* 255\) / 255"),
    ("output-rank-1", lambda: Returns(lambda z: z[:, 0]), {},
     lambda m, x, y: PGD()(m, x, eps=0.1),
     ModelOutputError, r"returned shape \(4,\).*logits of shape \(N, C\)"),
    ("output-one-column", lambda: Returns(lambda z: z[:, :1]), {},
     lambda m, x, y: PGD()(m, x, eps=0.1),
     ModelOutputError, r"at least 2"),
    ("output-extra-row", lambda: Returns(lambda z: torch.cat([z, z[:1]])), {},
     lambda m, x, y: PGD()(m, x, y, eps=0.1),
     ModelOutputError, r"returned shape \(5, 3\) for a batch of 4"),
    ("output-nan", lambda: Returns(lambda z: z * torch.nan), {},
     lambda m, x, y: FGSM()(m, x, y, eps=0.1),
     ModelOutputError, r"NaN or infinite logits"),
    ("output-tuple", lambda: Returns(lambda z: (z, z)), {},
     lambda m, x, y: FGSM()(m, x, y, eps=0.1),
     ModelOutputError, r"returned tuple.*tensor of logits"),
]
CASES = [pytest.param(*case[1:], id=case[0]) for case in _CASES]


@pytest.mark.parametrize(("make_net", "model_kw", "call", "error", "pattern"), CASES)
def test_bad_call_raises_documented_error(
    make_net: Callable[[], nn.Module], model_kw: dict[str, Any], call: Call,
    error: type[Exception], pattern: str,
) -> None:
    """Each bad call raises its documented error class with a message naming problem and fix."""
    model = TorchClassifier(make_net(), **model_kw)
    x, y = inputs()
    with pytest.raises(error, match=pattern):
        call(model, x, y)


@pytest.mark.parametrize(("make_net", "model_kw", "call", "error", "pattern"), CASES)
def test_bad_call_leaves_model_mode_unchanged(
    make_net: Callable[[], nn.Module], model_kw: dict[str, Any], call: Call,
    error: type[Exception], pattern: str,
) -> None:
    """A failing call leaves every training flag and requires_grad flag as it found them."""
    net = make_net().train()
    for child in net.children():
        child.eval()  # a deliberately mixed-mode module: training on top, eval inside
    next(net.parameters()).requires_grad_(False)
    before = mode_snapshot(net)
    model = TorchClassifier(net, **model_kw)
    x, y = inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingModeWarning)
        with pytest.raises(error):
            call(model, x, y)
    assert mode_snapshot(net) == before


def test_eps_in_pixel_units_warns() -> None:
    """eps=8 on [0, 1] bounds warns EpsScaleWarning and suggests 8/255."""
    model = TorchClassifier(linear_net())
    x, y = inputs()
    with pytest.warns(EpsScaleWarning, match=r"8/255"):
        FGSM()(model, x, y, eps=8)


def test_sensible_eps_does_not_warn() -> None:
    """A budget inside the input range raises no hoodwink warning."""
    model = TorchClassifier(linear_net())
    x, y = inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error", errors.HoodwinkWarning)
        FGSM()(model, x, y, eps=8 / 255)
        PGD(norm="l2", steps=2)(model, x, y, eps=1.0)


def test_training_mode_warns_and_is_kept() -> None:
    """A module in training mode triggers TrainingModeWarning and is in training mode afterwards."""
    net = nn.Sequential(nn.Linear(D, 8), nn.Dropout(0.5), nn.Linear(8, C)).train()
    model = TorchClassifier(net)
    x, y = inputs()
    with pytest.warns(TrainingModeWarning, match=r"training mode.*module\.eval\(\)"):
        r1 = PGD(steps=3)(model, x, y, eps=0.1)
    assert all(m.training for m in net.modules())
    # Evaluated in eval mode: dropout is off, so a second run is identical.
    r2 = PGD(steps=3)(model, x, y, eps=0.1)
    assert torch.equal(r1.x_adv, r2.x_adv)
    assert all(m.training for m in net.modules())


class LabelOnly:
    """A decision-based model: the Classifier protocol without gradients."""

    capabilities = Capabilities(differentiable=False, output="labels")
    num_classes = C
    levels = None

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(0.0), torch.tensor(1.0)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return (x.sum(dim=1) * 10).long() % C


@pytest.mark.parametrize("attack", [FGSM(), PGD()], ids=["FGSM", "PGD"])
def test_gradient_attack_on_label_only_model(attack: Any) -> None:
    """A gradient attack on a model without gradients raises CapabilityError naming the fix."""
    model = LabelOnly()
    assert isinstance(model, Classifier)
    x, y = inputs()
    with pytest.raises(CapabilityError, match=r"gradient attack.*no gradients"):
        attack(model, x, y, eps=0.1)


def test_raw_module_instead_of_model() -> None:
    """Passing a bare nn.Module raises CapabilityError pointing to TorchClassifier."""
    x, y = inputs()
    with pytest.raises(CapabilityError, match=r"TorchClassifier\(module, bounds=\.\.\.\)"):
        PGD()(linear_net(), x, y, eps=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"bounds": (1, 0)}, r"'bounds' parameter of TorchClassifier needs lower < upper"),
        ({"bounds": (0.5, 0.5)}, r"lower < upper"),
        ({"bounds": (np.zeros(D), np.r_[np.ones(D - 1), 0.0])}, r"lower < upper"),
        ({"bounds": (0, float("nan"))}, r"upper bound of TorchClassifier must be finite"),
        ({"bounds": 1.0}, r"'bounds' parameter of TorchClassifier must be a pair"),
        ({"bounds": (np.zeros(3), np.ones(4))}, r"incompatible shapes"),
        ({"levels": 1}, r"'levels' parameter of TorchClassifier must be an int >= 2"),
        ({"levels": 2.5}, r"'levels' parameter"),
        ({"batch_size": 0}, r"'batch_size' parameter of TorchClassifier must be an int >= 1"),
        ({"batch_size": True}, r"'batch_size' parameter"),
    ],
    ids=["reversed", "empty", "per-feature-empty", "nan", "scalar", "shapes", "levels-1",
         "levels-float", "batch-size-0", "batch-size-bool"],
)
def test_torch_classifier_config_errors(kwargs: dict[str, Any], pattern: str) -> None:
    """TorchClassifier rejects bad bounds, levels and batch_size with a ConfigError naming them."""
    with pytest.raises(ConfigError, match=pattern):
        TorchClassifier(linear_net(), **kwargs)


def test_torch_classifier_rejects_non_module() -> None:
    """Wrapping a plain function raises ConfigError telling the user to wrap it in nn.Module."""
    with pytest.raises(ConfigError, match=r"needs a torch\.nn\.Module; got function"):
        TorchClassifier(lambda x: x)  # type: ignore[arg-type]


def test_sweep_with_scalar_eps() -> None:
    """sweep() with a single number raises ConfigError showing the list form."""
    x, y = inputs()
    with pytest.raises(ConfigError, match=r"sweep\(\) takes a list of budgets"):
        FGSM().sweep(TorchClassifier(linear_net()), x, y, eps=0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (errors.ConfigError, (errors.HoodwinkError, ValueError)),
        (errors.InputError, (errors.HoodwinkError, ValueError)),
        (errors.OutOfBoundsError, (errors.InputError, ValueError)),
        (errors.ShapeError, (errors.InputError, ValueError)),
        (errors.ModelOutputError, (errors.HoodwinkError,)),
        (errors.CapabilityError, (errors.HoodwinkError, TypeError)),
        (errors.MissingDependencyError, (errors.HoodwinkError, ImportError)),
        (errors.BudgetExhaustedError, (errors.HoodwinkError,)),
        (errors.InternalError, (errors.HoodwinkError,)),
        (errors.HoodwinkError, (Exception,)),
        (errors.HoodwinkWarning, (UserWarning,)),
        (errors.EpsScaleWarning, (errors.HoodwinkWarning,)),
        (errors.TrainingModeWarning, (errors.HoodwinkWarning,)),
        (errors.SanityWarning, (errors.HoodwinkWarning,)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_error_tree(error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    """The exception classes derive from the documented bases (ValueError, TypeError, ...)."""
    for base in bases:
        assert issubclass(error, base)


def test_error_tree_is_exported() -> None:
    """errors.__all__ lists every exception and warning class the module defines."""
    defined = {
        name for name, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, Exception | Warning)
    }
    assert defined == set(errors.__all__)


# ---------------------------------------------------------------------------- adapter hardening
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_classes": "3"}, r"'num_classes' parameter of TorchClassifier must be an int in "
                               r"\[2, inf\) or None\. Got '3'"),
        ({"class_names": ("a", "b", "a")}, r"'class_names' parameter.*Not unique: 'a'"),
        ({"class_names": "abc"}, r"'class_names' parameter.*sequence of str"),
        ({"input_shape": (0, D)}, r"'input_shape' parameter.*positive ints"),
        ({"levels": 10**30}, r"'levels' parameter of TorchClassifier must be an int >= 2"),
        ({"preprocessing": "normalize"}, r"'preprocessing' parameter.*callable"),
        ({"device": "gpu"}, r"'device' parameter of TorchClassifier"),
        ({"device": "meta"}, r"'device' parameter.*meta device holds"),
        ({"bounds": ("0", "1")}, r"lower bound of TorchClassifier must be a float"),
    ],
    ids=["num-classes-str", "class-names-dup", "class-names-str", "input-shape-zero",
         "levels-huge", "preprocessing-str", "device-gpu", "device-meta", "bounds-str"],
)
def test_torch_classifier_config_errors_hardened(kwargs: dict[str, Any], pattern: str) -> None:
    """More TorchClassifier parameters refused at construction, each named with its constraint."""
    with pytest.raises(ConfigError, match=pattern):
        TorchClassifier(linear_net(), **kwargs)


@pytest.mark.parametrize(
    ("make_net", "error", "pattern"),
    [
        (lambda: Returns(lambda z: z.argmax(1, keepdim=True).expand(-1, C)), ModelOutputError,
         r"dtype torch\.int64.*float scores"),
        (lambda: Returns(lambda z: z.detach()), CapabilityError, r"no gradient.*input x"),
    ],
    ids=["integer-logits", "no-gradient-path"],
)
def test_bad_module_in_attack(make_net: Callable[[], nn.Module], error: type[Exception],
                              pattern: str) -> None:
    """A module returning labels, or logits without a gradient path: documented errors."""
    x, y = inputs()
    with pytest.raises(error, match=pattern):
        PGD(steps=2)(TorchClassifier(make_net()), x, y, eps=0.1)

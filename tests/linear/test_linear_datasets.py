"""Loading user data: folders of class sub-folders and .npz files, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoodwink.errors import ConfigError, InputError
from hoodwink.studies.linear import load_data, parse_size
from hoodwink.studies.linear.datasets import load_image_folder, load_npz


def _folder(root: Path, classes: dict[str, list[tuple[int, int]]], mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    for name, sizes in classes.items():
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.png")
    return root


def test_folder_loads_resizes_and_splits(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"cat": [(10, 8)] * 5, "dog": [(12, 9)] * 5})
    data = load_data(root, size=(16, 16), channels=3, val_fraction=0.2, seed=0)
    assert data.class_names == ("cat", "dog")
    assert data.input_shape == (3, 16, 16)
    assert data.x_train.shape[0] == 8 and data.x_val.shape[0] == 2
    assert sorted(data.y_val.tolist()) == [0, 1]  # stratified
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) <= 1


def test_folder_grey_images_give_one_channel(tmp_path: Path) -> None:
    root = _folder(tmp_path / "g", {"a": [(6, 6)] * 2, "b": [(6, 6)] * 2}, mode="L")
    x, y, names = load_image_folder(root)
    assert tuple(x.shape) == (4, 1, 6, 6) and y.tolist() == [0, 0, 1, 1]


def test_folder_with_one_class_is_rejected(tmp_path: Path) -> None:
    root = _folder(tmp_path / "one", {"only": [(8, 8)] * 3})
    with pytest.raises(InputError, match="at least 2"):
        load_data(root)


def test_mixed_sizes_without_resize_name_the_files(tmp_path: Path) -> None:
    root = _folder(tmp_path / "m", {"a": [(8, 8), (9, 8)], "b": [(8, 8)]})
    with pytest.raises(InputError, match=r"different sizes.*--size"):
        load_image_folder(root)
    x, _, _ = load_image_folder(root, size=(5, 7))
    assert tuple(x.shape) == (3, 3, 5, 7)


def test_npz_layouts_and_label_names(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    x = np.random.default_rng(0).integers(0, 256, (12, 7, 5, 3), dtype=np.uint8)
    y = np.array(["b", "a"] * 6)
    np.savez(p, x=x, y=y)
    xt, yt, names = load_npz(p, size=(4, 4), channels=1)
    assert names == ("a", "b") and tuple(xt.shape) == (12, 1, 4, 4)
    assert yt.tolist()[:2] == [1, 0]
    np.savez(p, x=x.transpose(0, 3, 1, 2).astype(np.float32) / 255, y=np.arange(12) % 3)
    xt, yt, names = load_npz(p)
    assert tuple(xt.shape) == (12, 3, 7, 5) and names == ("0", "1", "2")


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x": np.zeros((5, 4, 4)), "y": np.arange(4)}, "one label per image"),
        ({"x": np.zeros((4, 4, 4)), "y": np.array([0, 1, 0.5, 1])}, "integers"),
        ({"x": np.zeros((4, 4, 4)), "y": np.zeros(4, dtype=int)}, "at least 2"),
        ({"x": np.full((4, 4, 4), 3.0), "y": np.arange(4)}, r"\[0, 1\]"),
        ({"images": np.zeros((4, 4, 4)), "y": np.arange(4)}, "no array named 'x'"),
    ],
)
def test_bad_npz_gives_clear_input_errors(tmp_path: Path, arrays: dict[str, np.ndarray],
                                          match: str) -> None:
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(InputError, match=match):
        load_data(p)


def test_missing_path_and_bad_size() -> None:
    with pytest.raises(InputError, match="No data"):
        load_data("/nonexistent/data.npz")
    with pytest.raises(ConfigError, match="64x64"):
        parse_size("64by64")
    assert parse_size("64x32") == (64, 32) and parse_size("8") == (8, 8)


def test_mnist_loads_with_resize() -> None:
    data = load_data("mnist", size=(14, 14), channels=3)
    assert data.input_shape == (3, 14, 14) and data.num_classes == 10
    assert data.x_train.shape[0] == 4000 and data.x_val.shape[0] == 1000
    assert torch.isfinite(data.x_train).all()

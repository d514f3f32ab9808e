"""Loading users' models and data: load_model and load_dataset, with their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file

import hoodwink
from _helpers import LINEAR_NET_SRC, uint8_samples
from hoodwink.data import Dataset, load_dataset
from hoodwink.errors import ConfigError, InputError
from hoodwink.models import TorchClassifier, load_model

# The shared linear model (factory, Net), and the extra objects the errors need.
NET_SRC = LINEAR_NET_SRC + '''

import hoodwink


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 3)


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)


def classifier():
    return hoodwink.TorchClassifier(Net(), bounds=(0, 1), levels=256,
                                    class_names=("a", "b", "c"))


def broken():
    raise RuntimeError("boom in the factory")


def not_a_model():
    return 42


NUMBER = 7
'''


@pytest.fixture()
def net_file(tmp_path: Path) -> Path:
    p = tmp_path / "usernet.py"
    p.write_text(NET_SRC)
    return p


# ---------------------------------------------------------------------- load_model
def test_factory_module_is_wrapped_with_domain(net_file: Path) -> None:
    clf = load_model(f"{net_file}:factory", bounds=(0.0, 1.0), mean=[0.5], std=[0.25],
                     levels=256)
    assert isinstance(clf, TorchClassifier) and clf.levels == 256
    assert not clf.module.training
    x = torch.from_numpy(uint8_samples()).float() / 255
    # Normalisation is applied inside: (x - 0.5) / 0.25 keeps the argmax of the first row.
    assert clf.predict(x).tolist() == x[:, 0].argmax(1).tolist()
    logits = clf.logits(x[:1])
    assert torch.allclose(logits, 4 * (x[:1, 0] - 0.5) / 0.25, atol=1e-5)


def test_factory_classifier_returned_as_is(net_file: Path) -> None:
    clf = load_model(f"{net_file}:classifier")
    assert isinstance(clf, TorchClassifier) and clf.class_names == ("a", "b", "c")
    with pytest.raises(ConfigError, match=r"carries its own input domain.*bounds"):
        load_model(f"{net_file}:classifier", bounds=(0.0, 2.0))


def test_module_colon_factory_from_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(NET_SRC)
    monkeypatch.chdir(tmp_path)  # package.module specs import from the current folder
    clf = load_model("mypkg.nets:factory")
    assert clf.predict(torch.eye(3, 6).reshape(3, 2, 3)).tolist() == [0, 1, 2]


def test_safetensors_with_arch(net_file: Path, tmp_path: Path) -> None:
    w = tmp_path / "w.safetensors"
    net = load_model(f"{net_file}:factory")
    assert isinstance(net, TorchClassifier)
    state = {k: v * 0.5 for k, v in net.module.state_dict().items()}
    save_file(state, str(w))
    clf = load_model(str(w), arch=f"{net_file}:Net")
    assert isinstance(clf, TorchClassifier)
    assert torch.equal(clf.module.state_dict()["fc.weight"], state["fc.weight"])  # file's weights
    with pytest.raises(ConfigError, match="--arch"):
        load_model(str(w))


def test_safetensors_key_mismatch_lists_keys(net_file: Path, tmp_path: Path) -> None:
    w = tmp_path / "w.safetensors"
    save_file({"fc.weight": torch.zeros(3, 6), "fc.bias": torch.zeros(3)}, str(w))
    with pytest.raises(ConfigError, match=r"2 missing \(e\.g\. head\.bias, head\.weight\).*"
                                          r"2 unexpected \(e\.g\. fc\.bias, fc\.weight\)"):
        load_model(str(w), arch=f"{net_file}:Other")
    with pytest.raises(ConfigError, match=r"another shape.*fc\.(bias|weight)"):
        load_model(str(w), arch=f"{net_file}:Wide")


def test_pickle_needs_trust(net_file: Path, tmp_path: Path) -> None:
    p = tmp_path / "w.pt"
    torch.save({"fc.weight": torch.eye(3, 6), "fc.bias": torch.zeros(3)}, p)
    with pytest.raises(ConfigError, match=r"executes code.*--trust-pickle.*safetensors"):
        load_model(str(p), arch=f"{net_file}:Net")
    clf = load_model(str(p), arch=f"{net_file}:Net", trust_pickle=True)
    assert isinstance(clf, TorchClassifier)
    assert torch.equal(clf.module.state_dict()["fc.weight"], torch.eye(3, 6))
    with pytest.raises(ConfigError, match="state dict"):
        load_model(str(p), trust_pickle=True)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("resnet", r"Unknown model 'resnet'.*mnist-cnn"),
        ("no_such_module_xyz:factory", r"Cannot import 'no_such_module_xyz'"),
        ("{net}:missing", r"has no attribute 'missing'.*factory"),
        ("{net}:NUMBER", r"is a int, not a factory"),
        ("{net}:broken", r"raised RuntimeError: boom in the factory"),
        ("{net}:not_a_model", r"returned a int; it must return a torch.nn.Module"),
        ("{dir}/nope.py:factory", r"No Python file"),
        ("{net}:", r"does not have that form"),
    ],
)
def test_bad_specs_are_config_errors(net_file: Path, spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_model(spec.format(net=net_file, dir=net_file.parent))


def test_domain_checks(net_file: Path) -> None:
    with pytest.raises(ConfigError, match="give both or neither"):
        load_model(f"{net_file}:factory", mean=[0.5])
    with pytest.raises(ConfigError, match="carries its own input domain"):
        load_model("mnist-linear", bounds=(0.0, 1.0))
    with pytest.raises(ConfigError, match="Leave --arch out"):
        load_model("mnist-linear", arch=f"{net_file}:Net")
    assert load_model("mnist-linear").levels == 256


# ---------------------------------------------------------------------- load_dataset
def test_npz_uint8_scaled_and_class_names(tmp_path: Path) -> None:
    x = uint8_samples()
    y = x[:, 0].argmax(1)
    p = tmp_path / "d.npz"
    np.savez(p, x=x, y=y, class_names=np.array(["a", "b", "c"]))
    ds = load_dataset(p)
    assert isinstance(ds, Dataset) and len(ds) == 12 and ds.class_names == ("a", "b", "c")
    assert ds.x.dtype == torch.float32 and tuple(ds.x.shape) == (12, 2, 3)
    assert torch.equal(ds.x * 255, torch.from_numpy(x).float())
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == y.tolist()


def test_float_kept_and_safetensors_metadata(tmp_path: Path) -> None:
    x = np.linspace(-3, 3, 24, dtype=np.float64).reshape(4, 6)
    p = tmp_path / "d.safetensors"
    save_numpy({"x": x, "y": np.array([0, 2, 1, 2])}, str(p),
               metadata={"class_names": json.dumps(["u", "v", "w"])})
    ds = load_dataset(p)
    assert ds.x.dtype == torch.float32 and torch.allclose(ds.x, torch.from_numpy(x).float())
    assert ds.y.tolist() == [0, 2, 1, 2] and ds.class_names == ("u", "v", "w")


def test_folder_labels_and_relabel(tmp_path: Path) -> None:
    x = uint8_samples(6)
    for i, arr in enumerate(x):
        sub = tmp_path / "imgs" / ("b" if i % 2 else "c")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(sub / f"{i}.png")
    ds = load_dataset(tmp_path / "imgs")
    assert ds.class_names == ("b", "c") and tuple(ds.x.shape) == (6, 1, 2, 3)
    assert sorted(ds.y.tolist()) == [0, 0, 0, 1, 1, 1]
    mapped = ds.relabel(("a", "b", "c"))
    assert sorted(mapped.y.tolist()) == [1, 1, 1, 2, 2, 2]
    with pytest.raises(InputError, match="'c' is not"):
        ds.relabel(("a", "b"))


def test_mnist_and_head() -> None:
    ds = load_dataset("mnist")
    assert len(ds) == 1000 and tuple(ds.x.shape[1:]) == (1, 28, 28)
    assert len(ds.head(10)) == 10
    with pytest.raises(ConfigError, match=r"n=1001.*holds 1000"):
        ds.head(1001)


def test_pickle_refused_then_accepted(tmp_path: Path) -> None:
    p = tmp_path / "d.pt"
    torch.save({"x": torch.rand(3, 2, 3), "y": torch.tensor([0, 1, 2])}, p)
    with pytest.raises(ConfigError, match=r"pickle.*executes code.*--trust-pickle"):
        load_dataset(p)
    ds = load_dataset(p, trust_pickle=True)
    assert ds.y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"images": np.zeros((4, 6)), "labels": np.arange(4)},
         r"no 'x' or 'y'; it holds \['images', 'labels'\]"),
        ({"x": np.zeros((5, 6)), "y": np.arange(4)}, "one label per input"),
        ({"x": np.zeros((4, 6)), "y": np.array([0, 1, 0.5, 1])}, "integer class indices"),
        ({"x": np.zeros((0, 6)), "y": np.zeros(0, dtype=int)}, "N >= 1"),
        ({"x": np.zeros((2, 6)), "y": np.array([0, -1])}, ">= 0"),
        ({"x": np.zeros((2, 6), dtype=np.int32), "y": np.array([0, 1])}, "uint8"),
    ],
)
def test_bad_arrays(tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(InputError, match=match):
        load_dataset(p)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No data at"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match="unknown file type '.csv'"):
        load_dataset(tmp_path / "d.csv")


def test_exported() -> None:
    assert hoodwink.models.load_model is load_model

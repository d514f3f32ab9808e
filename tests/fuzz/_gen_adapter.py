"""Generators for the model adapter: TorchClassifier, Normalize and load_model."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from hoodwink import FGSM, Normalize, TorchClassifier, load_model

from ._gen_attacks import check_attack_result
from ._oracle import Case
from ._values import TinyNet, either, module_state, module_unchanged, remove, scratch

_X = torch.rand(2, 2, 3, generator=torch.Generator().manual_seed(0))

_VALID = {
    "bounds": st.sampled_from([(0, 1), (0.0, 1.0), [-1, 1], (np.zeros((2, 3)), np.ones((2, 3)))]),
    "preprocessing": st.sampled_from([None, "normalize", "lambda"]),
    "levels": st.sampled_from([None, 256, 2]),
    "batch_size": st.integers(1, 4),
    "device": st.sampled_from([None, "cpu", "cpu:0", "cuda", "meta", "mps", "nonsense"]),
    "class_names": st.sampled_from([None, ["a", "b", "c"], ["a", "b"], ("x", "y", "z", "w"),
                                    ["a", 1, None], "abc"]),
    "num_classes": st.sampled_from([None, 3, 3, 2, 4, "3", 3.0, True]),
    "input_shape": st.sampled_from([None, (2, 3), [2, 3], (3, 2), (6,), (-1,), "23", (2.5, 3)]),
}


def _pre(v: Any) -> Any:
    if isinstance(v, str) and v == "normalize":
        return Normalize(0.5, 0.25)
    if isinstance(v, str) and v == "lambda":
        return lambda x: x * 2 - 1
    return v


@st.composite
def classifier_constructions(draw: Any) -> Case:
    module_kind = draw(st.sampled_from(["net"] * 6 + ["class", "function", "none", "identity",
                                                      "string"]))
    net = TinyNet(6, 3, seed=draw(st.integers(0, 2)), quirk=draw(st.sampled_from(
        ["plain"] * 4 + ["dropout_train", "frozen_param"])))
    module: Any = {"net": net, "class": TorchClassifier, "function": lambda x: x,
                   "none": None, "identity": torch.nn.Identity(), "string": "net"}[module_kind]
    keys = draw(st.lists(st.sampled_from(list(_VALID)), unique=True, max_size=4))
    kwargs = {k: _pre(draw(either(_VALID[k], 3))) for k in keys}
    before = module_state(net)

    def call() -> Any:
        clf = TorchClassifier(module, **kwargs)
        logits = clf.logits(_X)
        r = FGSM()(clf, _X, eps=0.1)
        return clf, logits, r

    def check(out: Any) -> list[str]:
        clf, logits, r = out
        p = []
        if not isinstance(logits, torch.Tensor) or logits.shape != (2, 3):
            p.append(f"logits: shape {getattr(logits, 'shape', None)}")
        elif not bool(torch.isfinite(logits.float()).all()):
            p.append("NaN: logits not finite")
        nc = clf.num_classes
        if type(nc) is not int or nc != 3:
            p.append(f"num_classes: {nc!r} for a 3-class output")
        if clf.class_names is not None and (len(clf.class_names) != 3 or not all(
                isinstance(s, str) for s in clf.class_names)):
            p.append(f"class_names: {clf.class_names!r} accepted for 3 classes")
        if clf.levels is not None and (type(clf.levels) is not int or clf.levels < 2):
            p.append(f"levels: {clf.levels!r} accepted")
        shp = getattr(clf, "input_shape", None)
        if shp is not None and (tuple(shp) != (2, 3)):
            p.append(f"input_shape: {shp!r} accepted for inputs (2, 3)")
        return p + check_attack_result(r, clf=clf, x=_X, eps=0.1, norm="linf", targeted=False)

    return Case("classifier", call, check,
                repro=f"TorchClassifier({module_kind}, **{kwargs!r}).logits(rand(2, 2, 3))",
                after=[lambda: module_unchanged(net, before)])


@st.composite
def normalize_constructions(draw: Any) -> Case:
    mean = draw(either(st.sampled_from([0.5, [0.5, 0.5], (0.1, 0.2), np.array([0.5, 0.4]),
                                        torch.tensor([0.5, 0.5]), [[0.5, 0.5]], [0.5, [0.5]],
                                        "0.5", None]), 2))
    std = draw(either(st.sampled_from([0.25, [0.25, 0.5], np.array([0.2, 0.3]), 1e-30,
                                       [0.1, 0.0], [1, "a"], None]), 2))
    dim = draw(either(st.integers(1, 3), 2))
    x = torch.rand(3, 2, 2)

    def call() -> Any:
        return Normalize(mean, std, dim)(x)

    def check(z: Any) -> list[str]:
        if not isinstance(z, torch.Tensor) or z.shape != x.shape:
            return ["Normalize: changed the shape"]
        if not bool(torch.isfinite(z).all()):
            return ["NaN: Normalize gave non-finite values"]
        return []

    return Case("normalize", call, check,
                repro=f"Normalize({mean!r}, {std!r}, {dim!r})(rand(3, 2, 2))")


# ---------------------------------------------------------------------- load_model
_FILES = {
    "good": "import torch\nfrom torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = nn.Linear(6, 3)\n"
            "    def forward(self, x):\n        return self.fc(x.flatten(1))\n"
            "def factory():\n    return Net()\n",
    "returns_clf": "import hoodwink, torch\ndef factory():\n"
                   "    return hoodwink.TorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), "
                   "torch.nn.Linear(6, 3)))\n",
    "returns_int": "def factory():\n    return 3\n",
    "returns_class": "import torch\nclass Net(torch.nn.Module):\n    pass\nfactory = Net\n",
    "syntax_error": "def factory(:\n",
    "import_error": "import not_a_module_xyz\ndef factory():\n    return None\n",
    "needs_args": "def factory(n):\n    return n\n",
    "not_callable": "factory = 3\n",
    "missing": "x = 1\n",
}


@st.composite
def model_loads(draw: Any) -> Case:
    kind = draw(st.sampled_from(["zoo", "file", "file", "weights", "text", "module"]))
    content = draw(st.sampled_from(list(_FILES)))
    attr = draw(st.sampled_from(["factory", "factory", "Net", "", "nope"]))
    zoo = draw(st.sampled_from(["mnist-cnn", "MNIST-CNN", " mnist-linear ", "mnist_cnn",
                                "efficientnet-lite9", "mnist-cnn:factory"]))
    text = draw(st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="._-"),
                        max_size=12))
    module_spec = draw(st.sampled_from(["math:pi", "os.path:sep", "json:dumps",
                                        "collections:Counter", "not_a_pkg_xyz:f", "hoodwink:zoo",
                                        ":", "a:b:c"]))
    weights = draw(st.sampled_from(["valid", "random_bytes", "empty", "wrong_keys", "pt",
                                    "pt_bytes"]))
    trust = draw(st.booleans())
    kw: dict[str, Any] = {}
    for k, valid in (("bounds", st.sampled_from([(0, 1), (-1, 1)])),
                     ("mean", st.sampled_from([[0.5], [0.5, 0.5, 0.5]])),
                     ("std", st.sampled_from([[0.5], [0.25, 0.25, 0.25]])),
                     ("levels", st.sampled_from([None, 256])),
                     ("device", st.sampled_from([None, "cpu", "cuda", "meta"])),
                     ("arch", st.sampled_from([None, "FILE:Net", "FILE:factory", "nope:Net"]))):
        if draw(st.sampled_from([False, False, False, True])):
            kw[k] = draw(either(valid, 2))
    tmp = scratch()
    stem = f"m_{uuid.uuid4().hex[:10]}"

    def call() -> Any:
        f = tmp / f"{stem}.py"
        f.write_text(_FILES[content])
        arch = kw.get("arch")
        kws = dict(kw)
        if isinstance(arch, str):
            kws["arch"] = arch.replace("FILE", str(f))
        if kind == "zoo":
            spec = zoo
        elif kind == "file":
            spec = f"{f}:{attr}" if attr else str(f)
        elif kind == "module":
            spec = module_spec
        elif kind == "text":
            spec = str(tmp / text) if text else text
        else:
            spec = _weights(tmp, weights, f)
            kws.setdefault("arch", f"{(tmp / 'arch.py')}:Net")
            (tmp / "arch.py").write_text(_FILES["good"])
            kws["trust_pickle"] = trust
        return load_model(spec, **kws)

    def check(clf: Any) -> list[str]:
        for a in ("predict", "bounds", "num_classes", "capabilities"):
            if not hasattr(clf, a):
                return [f"load_model: returned {type(clf).__name__} without {a}"]
        return []

    return Case("load_model", call, check, timeout=30, after=[lambda: remove(tmp)],
                repro=f"load_model(<{kind}: zoo={zoo!r} content={content} attr={attr!r} "
                      f"text={text!r} module={module_spec!r} weights={weights}>, **{kw!r})")


def _weights(tmp: Any, kind: str, f: Any) -> str:
    if kind in ("valid", "wrong_keys"):
        from safetensors.torch import save_file

        sd = {"fc.weight": torch.zeros(3, 6), "fc.bias": torch.zeros(3)}
        if kind == "wrong_keys":
            sd = {"w": torch.zeros(2)}
        save_file(sd, tmp / "w.safetensors")
        return str(tmp / "w.safetensors")
    if kind == "random_bytes":
        (tmp / "w.safetensors").write_bytes(np.random.default_rng(0).bytes(64))
        return str(tmp / "w.safetensors")
    if kind == "empty":
        (tmp / "w.safetensors").write_bytes(b"")
        return str(tmp / "w.safetensors")
    if kind == "pt":
        torch.save({"fc.weight": torch.zeros(3, 6), "fc.bias": torch.zeros(3)}, tmp / "w.pt")
        return str(tmp / "w.pt")
    (tmp / "w.pt").write_bytes(b"\x80\x04garbage")
    return str(tmp / "w.pt")

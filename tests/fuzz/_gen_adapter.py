"""Generators for the model adapters: TorchClassifier, Normalize, load_model, and the
NumPy-backed SklearnClassifier, CallableClassifier and OnnxClassifier."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from hoodwink import (
    FGSM,
    CallableClassifier,
    Normalize,
    OnnxClassifier,
    SklearnClassifier,
    TorchClassifier,
    load_model,
)
from hoodwink.errors import ConfigError

from ._gen_attacks import check_attack_result
from ._oracle import Case
from ._values import TinyNet, either, module_state, module_unchanged, odd, remove, scratch

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


# ---------------------------------------------------------------------- NumPy-backed adapters
#: Bad (and a few good) values of the parameters every NumPy-backed adapter shares.
_D = 3  # features of the models below
_C = 3  # their classes


def _bounds_values() -> st.SearchStrategy[Any]:
    d = _D
    good = st.sampled_from([(0, 1), (0.0, 1.0), [-1, 1], (np.zeros(d), np.ones(d)),
                            (torch.zeros(d), torch.ones(d)), (np.zeros(d), 1), (0, 255),
                            (-0.43312692642211914, 0.6486794352531433)])
    return st.one_of(good, good, good, _bad_bounds())


def _bad_bounds() -> st.SearchStrategy[Any]:
    d = _D
    return st.sampled_from([
        (np.zeros(d + 1), np.ones(d + 1)), (np.zeros((2, d)), np.ones((2, d))),
        (float("nan"), 1), (0, float("inf")), (0, 0), (1, 0), (np.zeros(d), np.zeros(d)),
        ("0", "1"), None, 1.0, (0, 1, 2), (0, 1e39), (np.array([]), 1), (0, np.nan * np.ones(d)),
        (np.zeros(2), np.ones(3)), ([0, "a", 0], 1), (True, 2)])


_NUMPY_KW: dict[str, st.SearchStrategy[Any]] = {
    "levels": st.one_of(st.sampled_from([None, 256, 2, 17, 2**24, np.int64(17)]),
                        st.sampled_from([1, 0, -1, 2**24 + 1, 2.5, "256", True, float("nan"),
                                         2**64])),
    "input_shape": st.one_of(st.sampled_from([None, (_D,), (1, _D), [_D], np.array([_D]),
                                              (1, 1, _D)]),
                             st.sampled_from([(_D + 1,), (), (0,), (-1,), "ab", (3.0,),
                                              (True, 3), (2**63,)])),
    "batch_size": st.one_of(st.sampled_from([1, 2, 1024, np.int32(2)]),
                            st.sampled_from([0, -1, 1.5, "4", 2**64, True, None])),
}
#: Words a message about each parameter should use (besides the parameter's name).
_WORDS = {"bounds": ["bound"], "output": ["output", "predict_proba", "decision_function"],
          "num_classes": ["class"], "class_names": ["class"], "input_shape": ["shape"],
          "fn": ["function", "fn"], "estimator": ["fit", "classifier", "estimator", "module"],
          "source": ["onnx", "model", "file"], "providers": ["provider"],
          "preprocessing": ["preprocessing"], "output_name": ["output"]}


def _relevant(msg: str, suspects: list[str]) -> bool:
    low = msg.lower()
    return any(w.lower() in low for s in suspects for w in [s, *_WORDS.get(s, [])])


def _fitted(kind: str) -> Any:
    """A tiny estimator (fitted unless its kind says otherwise), 3 features, 3 classes."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (30, _D))
    y = np.arange(30) % _C
    if kind == "logreg":
        return LogisticRegression().fit(x, y)
    if kind == "logreg_str":
        return LogisticRegression().fit(x, np.array(["b", "a", "c"])[y])
    if kind == "logreg_2":
        return LogisticRegression().fit(x, y % 2)
    if kind == "tree":
        return DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    if kind == "svc_ovo":
        return SVC(decision_function_shape="ovo").fit(x, y)
    if kind == "svc_2":
        return SVC().fit(x, y % 2)
    if kind == "unfitted":
        return LogisticRegression()
    if kind == "regressor":
        return LinearRegression().fit(x, y.astype(float))
    if kind == "kmeans":
        return KMeans(n_clusters=2, n_init=1, random_state=0).fit(x)
    if kind == "one_class":
        return DecisionTreeClassifier().fit(x, np.zeros(30, dtype=int))
    if kind == "multi_output":
        return DecisionTreeClassifier().fit(x, np.stack([y, y % 2], axis=1))
    if kind == "class":
        return LogisticRegression
    if kind == "module":
        return torch.nn.Linear(_D, _C)
    if kind == "function":
        return lambda a: a
    return {"none": None, "string": "logreg"}[kind]


_FIT_CACHE: dict[str, Any] = {}


def _estimator(kind: str) -> Any:
    if kind not in _FIT_CACHE:
        _FIT_CACHE[kind] = _fitted(kind)
    return _FIT_CACHE[kind]


_GOOD_ESTIMATORS = ("logreg", "logreg_str", "logreg_2", "tree", "svc_ovo", "svc_2")


@st.composite
def sklearn_adapters(draw: Any) -> Case:
    """SklearnClassifier with generated estimators and arguments, then predict and scores."""
    kind = draw(st.sampled_from(list(_GOOD_ESTIMATORS) * 4 + [
        "unfitted", "regressor", "kmeans", "one_class", "multi_output", "class", "module",
        "function", "none", "string"]))
    kw: dict[str, Any] = {"bounds": draw(either(_bounds_values(), 8))}
    for k, v in {**_NUMPY_KW, "output": st.sampled_from(
            [None, None, "probabilities", "logits", "labels", "proba", 3, "LOGITS"])}.items():
        if draw(st.integers(0, 2)) == 0:
            kw[k] = draw(either(v, 8))
    n = draw(st.integers(0, 3))
    suspects = list(kw) + (["estimator"] if kind not in _GOOD_ESTIMATORS[:4] else [])
    probe = draw(st.sampled_from(["classes", "classes_list", "indices", "nope", 1.5, True, None,
                                  float("nan"), "tensor", "nested", -1, 3, 2**64, "uint64",
                                  "float_idx", "empty"]))

    def call() -> Any:
        est = _estimator(kind)
        try:
            clf = SklearnClassifier(est, **kw)
        except ConfigError as exc:
            if not _relevant(str(exc), suspects):
                return f"message: ConfigError names none of {suspects}: {exc}"
            raise
        used = _use(clf, n)
        return clf, used, _labels_roundtrip(clf, est, probe)

    def check(out: Any) -> list[str]:
        if isinstance(out, str):
            return [out]
        clf, (x, pred, scores), labels_problems = out
        est = _estimator(kind)
        if labels_problems:
            return labels_problems
        p = _check_numpy_outputs(clf, x, pred, scores)
        if n == 0:
            return p
        want = est.predict(x.double().reshape(x.shape[0], -1).numpy())
        if not np.array_equal(clf.decode_labels(pred), want):
            p.append("predict: differs from the estimator's own predict")
        if scores is not None and clf.output == "probabilities":
            ref = est.predict_proba(x.double().reshape(x.shape[0], -1).numpy())
            if not np.allclose(scores.numpy(), ref, atol=1e-5):
                p.append("scores: differ from predict_proba")
        if clf.num_classes != len(est.classes_):
            p.append(f"num_classes: {clf.num_classes} for {len(est.classes_)} classes_")
        return p

    return Case("adapter_numpy", call, check,
                repro=f"SklearnClassifier(<{kind}>, **{kw!r}) then predict/scores on {n} rows")


def _labels_roundtrip(clf: Any, est: Any, probe: Any) -> list[str]:
    """encode_labels / decode_labels with a generated value: exact, or an InputError."""
    from hoodwink.errors import InputError

    classes = np.asarray(est.classes_)
    value: Any = {"classes": classes, "classes_list": classes.tolist(),
                  "indices": np.arange(len(classes)), "tensor": torch.arange(len(classes)),
                  "nested": [classes.tolist()], "uint64": np.array([2**64 - 1], np.uint64),
                  "float_idx": np.array([0.0, 1.0]), "empty": np.array([], dtype=np.int64)}.get(
        probe, probe) if isinstance(probe, str) else probe
    p = []
    try:
        idx = clf.encode_labels(value)
        if probe in ("classes", "classes_list") and not np.array_equal(
                idx, np.arange(len(classes))):
            p.append(f"labels: encode_labels(classes_) gave {idx.tolist()}")
        back = clf.decode_labels(idx)
        if not np.array_equal(np.asarray(back, dtype=object),
                              np.asarray(value if not isinstance(value, torch.Tensor)
                                         else value.numpy(), dtype=object)):
            p.append(f"labels: decode(encode({probe!r})) is not the labels")
    except InputError:
        pass
    try:
        dec = clf.decode_labels(value)
        if np.asarray(dec).shape != np.shape(value if not isinstance(value, torch.Tensor)
                                             else value.numpy()):
            p.append(f"labels: decode_labels({probe!r}) changed the shape")
    except InputError:
        pass
    return p


def _use(clf: Any, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Predict (and score, where the adapter has scores) ``n`` inputs inside its bounds."""
    lo, hi = clf.bounds
    shape = clf.input_shape or (tuple(lo.shape) if lo.ndim else (_D,))
    u = torch.rand((n, *shape), generator=torch.Generator().manual_seed(n))
    x = (lo + u * (hi - lo)).float()
    pred = clf.predict(x)
    scores = clf.scores(x) if clf.output != "labels" else None
    repr(clf)
    return x, pred, scores


def _check_numpy_outputs(clf: Any, x: torch.Tensor, pred: Any, scores: Any) -> list[str]:
    """What every NumPy-backed adapter promises for predict and scores."""
    n = x.shape[0]
    c = clf.num_classes
    p = []
    if type(c) is not int or c < 2:
        p.append(f"num_classes: {c!r}")
    if clf.levels is not None and (type(clf.levels) is not int or not 2 <= clf.levels <= 2**24):
        p.append(f"levels: {clf.levels!r} accepted")
    if type(clf.batch_size) is not int or clf.batch_size < 1:
        p.append(f"batch_size: {clf.batch_size!r} accepted")
    lo, hi = clf.bounds
    if not (bool(torch.isfinite(lo).all()) and bool(torch.isfinite(hi).all())
            and bool((hi > lo).all())):
        p.append("bounds: non-finite or empty bounds accepted")
    if clf.class_names is not None and len(clf.class_names) != c:
        p.append(f"class_names: {len(clf.class_names)} names for {c} classes")
    if not isinstance(pred, torch.Tensor) or pred.dtype != torch.int64 or pred.shape != (n,):
        return p + [f"predict: {getattr(pred, 'dtype', type(pred))} "
                    f"{tuple(getattr(pred, 'shape', ()))}, not int64 ({n},)"]
    if bool(((pred < 0) | (pred >= c)).any()):
        p.append(f"predict: indices {pred.tolist()} outside 0..{c - 1}")
    if scores is not None:
        if scores.shape != (n, c) or scores.dtype != torch.float32:
            return p + [f"scores: {scores.dtype} {tuple(scores.shape)}, not float32 ({n}, {c})"]
        if not bool(torch.isfinite(scores).all()):
            p.append("NaN: scores not finite")
        if clf.output == "probabilities" and n and not torch.allclose(
                scores.double().sum(1), torch.ones(n, dtype=torch.float64), atol=1e-3):
            p.append("scores: probabilities do not sum to 1")
    return p


class _Fn:
    """A function model of a generated kind (good or broken), 3 features, 3 classes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.w = np.random.default_rng(1).normal(size=(_D, _C))
        self.__qualname__ = f"fn_{kind}"

    def logits(self, a: np.ndarray) -> np.ndarray:
        out: np.ndarray = a.reshape(a.shape[0], -1).astype(np.float64) @ self.w
        return out

    def __call__(self, a: np.ndarray) -> Any:
        z = self.logits(a)
        n = z.shape[0]
        k = self.kind
        if k == "logits":
            return z
        if k == "probabilities":
            e = np.exp(z - z.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)
        if k == "labels":
            return z.argmax(1)
        if k == "writes_input":
            a[...] = 0.0
            return z
        bad = {
            "shape_n": lambda: z[:, 0], "shape_n1": lambda: z[:, :1],
            "extra_col": lambda: np.concatenate([z, z[:, :1]], axis=1),
            "nan": lambda: np.where(z > 0, np.nan, z), "inf": lambda: z * np.inf,
            "strings": lambda: np.array([["a"] * _C] * n), "ragged": lambda: [[1.0]] + [
                [1.0, 2.0]] * (n - 1), "none": lambda: None, "tensor": lambda: torch.from_numpy(z),
            "list": lambda: z.tolist(), "unnormalised": lambda: np.abs(z) + 1,
            "float_labels": lambda: z.argmax(1).astype(np.float64),
            "frac_labels": lambda: z.argmax(1) + 0.5, "label_oob": lambda: z.argmax(1) + _C,
            "str_labels": lambda: np.array(["x"] * n), "big": lambda: z * 1e300,
            "bool": lambda: z > 0, "batch_mismatch": lambda: z[:-1],
            "object": lambda: np.array([object()] * n),
        }
        if k == "raises":
            raise ValueError("the server said no")
        return bad[k]()


#: Function kinds whose output must be refused (ModelOutputError) whatever ``output`` says.
_BROKEN_FNS = {"nan", "inf", "strings", "ragged", "none", "label_oob", "str_labels", "big",
               "batch_mismatch", "object", "raises", "frac_labels", "extra_col"}


@st.composite
def callable_adapters(draw: Any) -> Case:
    """CallableClassifier with generated functions and arguments, then predict and scores."""
    fkind = draw(st.sampled_from(["logits", "probabilities", "labels"] * 4 + sorted(
        _BROKEN_FNS | {"shape_n", "shape_n1", "tensor", "list", "unnormalised", "float_labels",
                       "bool", "writes_input"}) + ["not_callable", "class"]))
    out_kind = draw(st.sampled_from(["logits", "probabilities", "labels"]))
    if fkind in ("logits", "probabilities", "labels") and draw(st.integers(0, 2)):
        out_kind = fkind
    kw: dict[str, Any] = {"output": out_kind, "num_classes": _C, "bounds": (0, 1)}
    defaults = dict(kw)
    if draw(st.integers(0, 3)) == 0:
        kw["output"] = draw(odd)
    if draw(st.integers(0, 3)) == 0:
        kw["num_classes"] = draw(st.sampled_from([_C + 1, 2, 1, 0, "3", 3.0, True, 2**64, None,
                                                  float("nan"), np.int64(_C)]))
    if draw(st.integers(0, 3)) == 0:
        kw["bounds"] = draw(either(_bounds_values(), 4))
    if draw(st.integers(0, 3)) == 0:
        kw["class_names"] = draw(st.sampled_from([None, ["a", "b", "c"], ["a", "b"],
                                                  ["a", "a", "b"], [1, 2, 3], "abc",
                                                  ("x", "y", "z", "w")]))
    for k, v in _NUMPY_KW.items():
        if draw(st.integers(0, 3)) == 0:
            kw[k] = draw(either(v, 5))
    n = draw(st.integers(0, 3))
    given = [k for k in kw if k not in defaults or kw[k] is not defaults[k]]
    suspects = given + (["fn"] if fkind in ("not_callable", "class") else [])

    def call() -> Any:
        fn: Any = {"not_callable": 3, "class": _Fn}.get(fkind) or _Fn(fkind)
        try:
            clf = CallableClassifier(fn, **kw)
        except ConfigError as exc:
            if not _relevant(str(exc), suspects):
                return f"message: ConfigError names none of {suspects}: {exc}"
            raise
        return clf, fn, _use(clf, n)

    def check(out: Any) -> list[str]:
        if isinstance(out, str):
            return [out]
        clf, fn, (x, pred, scores) = out
        if fkind in _BROKEN_FNS and n > 0:
            if not (fkind == "extra_col" and kw.get("num_classes") == _C + 1):
                return [f"accepted bad output: fn_{fkind} with output={clf.output!r} passed"]
        p = _check_numpy_outputs(clf, x, pred, scores)
        z = fn.logits(x.numpy()) if n else None
        if z is not None and fkind in ("logits", "probabilities", "labels", "writes_input",
                                       "tensor", "list") and clf.num_classes == _C:
            if not np.array_equal(pred.numpy(), z.argmax(1)):
                p.append("predict: differs from the function's argmax")
            if scores is not None and fkind in ("logits", "tensor", "list", "writes_input") \
                    and not np.allclose(scores.numpy(), z.astype(np.float32), rtol=1e-5):
                p.append("scores: differ from what the function returned")
        return p

    return Case("adapter_numpy", call, check,
                repro=f"CallableClassifier(fn_{fkind}, **{kw!r}) then predict/scores on {n} rows")


_ONNX: dict[str, bytes] = {}


def onnx_model(kind: str) -> bytes:
    """A tiny ONNX model, 3 features: logits (+ probabilities, labels) of a linear map."""
    if kind not in _ONNX:
        from onnx import TensorProto, helper, numpy_helper

        w = np.random.default_rng(1).normal(size=(_D, _C)).astype(np.float32)
        batch: Any = 2 if kind == "fixed_batch" else "N"
        in_type = TensorProto.INT64 if kind == "int_input" else TensorProto.FLOAT
        inputs = [helper.make_tensor_value_info("x", in_type, [batch, _D])]
        nodes = [helper.make_node("MatMul", ["x", "W"], ["logits"])]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, _C])]
        if kind in ("three_outputs", "fixed_batch"):
            nodes += [helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
                      helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0)]
            outputs += [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                      [batch, _C]),
                        helper.make_tensor_value_info("label", TensorProto.INT64, [batch])]
        if kind == "two_inputs":
            inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, _D]))
            nodes = [helper.make_node("Add", ["x", "z"], ["s"]),
                     helper.make_node("MatMul", ["s", "W"], ["logits"])]
        if kind == "int_input":
            nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
                     helper.make_node("MatMul", ["xf", "W"], ["logits"])]
        graph = helper.make_graph(nodes, "tiny", inputs, outputs,
                                  initializer=[numpy_helper.from_array(w, "W")])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        _ONNX[kind] = m.SerializeToString()
        _ONNX["_w"] = w.tobytes()
    return _ONNX[kind]


@st.composite
def onnx_adapters(draw: Any) -> Case:
    """OnnxClassifier with generated sources and arguments, then predict and scores."""
    model_kind = draw(st.sampled_from(["plain", "three_outputs", "three_outputs", "fixed_batch",
                                       "two_inputs", "int_input"]))
    source = draw(st.sampled_from(["bytes"] * 4 + ["path", "pathlib", "session", "missing",
                                                    "garbage", "empty", "folder", "int", "none"]))
    unit = (0, 1)
    kw: dict[str, Any] = {"bounds": unit}
    for k, v in {
        "output": st.sampled_from([None, "logits", "probabilities", "labels", "x", 3]),
        "output_name": st.sampled_from([None, "logits", "probabilities", "label", "nope", 3]),
        "num_classes": st.sampled_from([None, _C, _C + 1, 1, "3", 2**64]),
        "class_names": st.sampled_from([None, ["a", "b", "c"], ["a", "b"]]),
        "providers": st.sampled_from([None, ["CPUExecutionProvider"], "CPUExecutionProvider",
                                      [3], ("CPUExecutionProvider",)]),
        "preprocessing": st.sampled_from([None, "scale", "raises", "wrong_shape", "pair",
                                          "bad_pair", 3]),
        **_NUMPY_KW, "bounds": _bounds_values(),
    }.items():
        if draw(st.integers(0, 3)) == 0:
            kw[k] = draw(either(v, 5))
    n = draw(st.integers(0, 3))
    suspects = [k for k in kw if kw[k] is not unit] + (
        ["source"] if source not in ("bytes", "path", "pathlib", "session")
        or model_kind in ("two_inputs", "int_input") else [])
    tmp = scratch()

    def pre(v: Any) -> Any:
        return {"scale": lambda a: a * 1.0, "raises": _raise,
                "wrong_shape": lambda a: a[:, :1], "pair": ([0.0], [1.0]),
                "bad_pair": ([0.0, 1.0], [0.0])}.get(v, v) if isinstance(v, str) else v

    def call() -> Any:
        import onnxruntime as ort

        data = onnx_model(model_kind)
        (tmp / "m.onnx").write_bytes(data)
        src: Any = {"bytes": data, "path": str(tmp / "m.onnx"), "pathlib": tmp / "m.onnx",
                    "missing": str(tmp / "nope.onnx"), "garbage": b"\x08\x01garbage",
                    "empty": b"", "folder": str(tmp), "int": 3, "none": None}.get(source)
        if source == "session":
            src = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        kws = {k: pre(v) if k == "preprocessing" else v for k, v in kw.items()}
        try:
            clf = OnnxClassifier(src, **kws)
        except ConfigError as exc:
            if not _relevant(str(exc), suspects):
                return f"message: ConfigError names none of {suspects}: {exc}"
            raise
        return clf, _use(clf, n)

    def check(out: Any) -> list[str]:
        if isinstance(out, str):
            return [out]
        clf, (x, pred, scores) = out
        p = _check_numpy_outputs(clf, x, pred, scores)
        w = np.frombuffer(_ONNX["_w"], dtype=np.float32).reshape(_D, _C)
        if n and kw.get("preprocessing") in (None, "scale", "pair") and clf.num_classes == _C:
            z = x.numpy().reshape(n, -1) @ w
            if not np.array_equal(pred.numpy(), z.argmax(1)):
                p.append("predict: differs from the model's argmax")
        return p

    return Case("adapter_numpy", call, check, after=[lambda: remove(tmp)],
                repro=f"OnnxClassifier(<{model_kind} as {source}>, **{kw!r}) then "
                      f"predict/scores on {n} rows")


def _raise(a: Any) -> Any:
    raise RuntimeError("preprocessing failed")


def numpy_adapters() -> st.SearchStrategy[Case]:
    """The adapters over NumPy models: scikit-learn, plain functions and ONNX."""
    return st.one_of(sklearn_adapters(), callable_adapters(), onnx_adapters())

"""Generators for the studies' public entry points, on tiny settings."""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from hypothesis import strategies as st

from ._oracle import Case
from ._values import TinyNet, either, remove, scratch


def _json_clean(rec: Any) -> list[str]:
    try:
        json.dumps(rec, allow_nan=False, default=str)
    except ValueError:
        return ["NaN: the record holds NaN or inf"]
    return []


@st.composite
def toy_calls(draw: Any) -> Case:
    alpha = draw(either(st.floats(-10, 10), 3))
    b = draw(either(st.floats(-5, 5), 3))
    w = draw(st.sampled_from([None, (1.0, -1.0), (), (1e308, 1e308)]))

    def call() -> Any:
        from hoodwink.studies.linear import toy_example

        kw: dict[str, Any] = {"alpha": alpha, "b": b}
        if w is not None:
            kw.update(x=(0.5,) * len(w), w=w)
        return toy_example(**kw)

    def check(r: Any) -> list[str]:
        vals = [r.score, r.probability, r.score_adv, r.probability_adv, r.gain]
        if not all(isinstance(v, float) and math.isfinite(v) for v in vals):
            return [f"NaN: toy_example gave {vals}"]
        if not (0 <= r.probability <= 1 and 0 <= r.probability_adv <= 1):
            return ["toy: probability outside [0, 1]"]
        return []

    return Case("study_toy", call, check, repro=f"toy_example(alpha={alpha!r}, b={b!r}, w={w!r})")


@st.composite
def synthetic_calls(draw: Any) -> Case:
    kw = {k: draw(either(v, 4)) for k, v in {
        "classes": st.integers(1, 3), "per_class": st.integers(1, 3),
        "val_per_class": st.integers(1, 3), "size": st.integers(1, 6),
        "signal": st.floats(0, 1), "noise": st.floats(0, 1), "smoothness": st.floats(0.1, 3),
        "seed": st.integers(0, 2**64 - 1)}.items() if draw(st.booleans())}

    def call() -> Any:
        from hoodwink.studies.linear import synthetic_images

        return synthetic_images(**kw)

    def check(d: Any) -> list[str]:
        for t in (d.x_train, d.x_val):
            if not bool(torch.isfinite(t).all()):
                return ["NaN: synthetic_images gave NaN"]
            if bool(((t < 0) | (t > 1)).any()):
                return ["synthetic: pixels outside [0, 1]"]
        return []

    return Case("study_synthetic", call, check, repro=f"synthetic_images(**{kw!r})")


@st.composite
def train_calls(draw: Any) -> Case:
    kw = {k: draw(either(v, 4)) for k, v in {
        "kind": st.sampled_from(["softmax", "svm"]), "init_std": st.floats(1e-4, 1),
        "lr": st.floats(1e-4, 100), "weight_decay": st.floats(0, 1), "epochs": st.integers(1, 2),
        "batch_size": st.integers(1, 8), "momentum": st.floats(0, 0.99),
        "seed": st.integers(0, 2**64 - 1), "num_classes": st.integers(1, 4)}.items()
        if draw(st.booleans())}
    ykind = draw(st.sampled_from(["ok", "ok", "ok", "negative", "big", "float", "val_bad"]))

    def call() -> Any:
        from hoodwink.studies.linear import train_linear

        g = torch.Generator().manual_seed(0)
        x = torch.rand(12, 1, 2, 2, generator=g)
        y = torch.arange(12) % 3
        xv, yv = x[:4], y[:4].clone()
        if ykind == "negative":
            y = y - 1
        elif ykind == "big":
            y = y + 2**40
        elif ykind == "float":
            y = y.float()
        elif ykind == "val_bad":
            yv = yv + 7
        return train_linear(x, y, x_val=xv, y_val=yv, warn=False, **kw)

    def check(out: Any) -> list[str]:
        model, _log = out
        if not bool(torch.isfinite(model.weight).all() and torch.isfinite(model.bias).all()):
            return ["NaN: trained weights are not finite (no SanityWarning/error)"]
        return []

    return Case("study_train", call, check, timeout=20,
                repro=f"train_linear(rand(12,1,2,2), y<{ykind}>, **{kw!r})")


@st.composite
def linear_model_loads(draw: Any) -> Case:
    what = draw(st.sampled_from(["meta_field", "meta_field", "truncate", "bytes", "ok", "ctor"]))
    key = draw(st.sampled_from(["input_shape", "kind", "class_names", "schema", "format", "x"]))
    value = draw(st.sampled_from(["", "[1, 2]", "softmax", "null", "[]", "hinge", "{", "3"]))
    cut = draw(st.integers(0, 300))
    ctor = draw(st.sampled_from([((3, 4), (3,), (2, 2), "softmax"), ((3, 4), (2,), (2, 2), "svm"),
                                 ((3, 4), (3,), (5,), "softmax"), ((3, 4), (3,), (2, 2), "hinge"),
                                 ((3, 4), (3,), (2, -2), "softmax"), ((0, 4), (0,), (4,), "svm")]))
    tmp = scratch()

    def call() -> Any:
        from safetensors import safe_open
        from safetensors.torch import save_file

        from hoodwink.studies.linear import LinearModel

        if what == "ctor":
            ws, bs, shape, kind = ctor
            m = LinearModel(weight=torch.zeros(ws), bias=torch.zeros(bs), input_shape=shape,
                            kind=kind)  # type: ignore[arg-type]
            m.logits(torch.zeros(1, *[abs(d) for d in shape]))
            return m
        m = LinearModel(weight=torch.zeros(3, 4), bias=torch.zeros(3), input_shape=(1, 2, 2))
        p = m.save(tmp / "m.safetensors")
        if what == "meta_field":
            with safe_open(str(p), "pt") as f:
                meta = dict(f.metadata() or {})
                tens = {k: f.get_tensor(k) for k in f.keys()}
            meta[key] = value
            save_file(tens, str(p), metadata=meta)
        elif what == "truncate":
            p.write_bytes(p.read_bytes()[:cut])
        elif what == "bytes":
            p.write_bytes(bytes(range(256))[: cut % 256])
        back = LinearModel.load(p)
        back.logits(torch.zeros(1, *back.input_shape))
        return back

    def check(m: Any) -> list[str]:
        if m.kind not in ("softmax", "svm"):
            return [f"LinearModel: kind {m.kind!r} accepted"]
        if any(type(d) is not int or d < 1 for d in m.input_shape):
            return [f"LinearModel: input_shape {m.input_shape!r} accepted"]
        return []

    return Case("study_linear_model", call, check, after=[lambda: remove(tmp)],
                repro=f"LinearModel <{what}: key={key!r} value={value!r} cut={cut} ctor={ctor}>")


@st.composite
def dream_calls(draw: Any) -> Case:
    kw = {k: draw(either(v, 4)) for k, v in {
        "confidence": st.floats(0.01, 0.99), "steps": st.integers(1, 4),
        "stepsize": st.floats(1e-3, 1), "norm": st.sampled_from(["linf", "l2"]),
        "smoothness": st.floats(0, 2), "blur": st.floats(0, 2), "blur_every": st.integers(1, 3),
        "seed": st.integers(0, 2**64 - 1)}.items() if draw(st.booleans())}
    target = draw(either(st.sampled_from([0, 1, [0, 2], "2", [1, 1]]), 4))
    levels = draw(st.sampled_from([None, 256]))

    def call() -> Any:
        from hoodwink import TorchClassifier
        from hoodwink.studies import dream

        clf = TorchClassifier(TinyNet(16, 3, seed=0, scale=3.0), levels=levels,
                              class_names=["a", "b", "c"])
        return dream.run(clf, target, shape=(1, 4, 4), **kw)

    def check(rec: Any) -> list[str]:
        return _json_clean(rec)

    return Case("study_dream", call, check, timeout=20,
                repro=f"dream.run(TorchClassifier(TinyNet(16, 3), levels={levels}), {target!r}, "
                      f"shape=(1, 4, 4), **{kw!r})")


@st.composite
def transfer_calls(draw: Any) -> Case:
    kw = {k: draw(either(v, 4)) for k, v in {
        "n": st.integers(1, 4), "eps": st.sampled_from([[0.1], [0.0, 0.2], [8 / 255]]),
        "attacks": st.sampled_from([["fgsm"], ["pgd"], ["fgsm", "pgd"], ["cw"]]),
        "targeted": st.sampled_from([None, True, False]),
        "target": st.sampled_from(["random", 3, "3", 10]), "steps": st.integers(1, 2),
        "seed": st.integers(0, 2**64 - 1)}.items() if draw(st.booleans())}
    kw.setdefault("n", 2)
    kw.setdefault("steps", 1)

    def call() -> Any:
        from hoodwink.studies import transfer

        if isinstance(kw.get("n"), int) and kw["n"] > 8:
            kw["n"] = 8
        if isinstance(kw.get("steps"), int) and kw["steps"] > 3:
            kw["steps"] = 3
        return transfer.run("mnist-cnn", ["mnist-linear"], **kw)

    return Case("study_transfer", call, _json_clean, timeout=30,
                repro=f"transfer.run('mnist-cnn', ['mnist-linear'], **{kw!r})")


def studies() -> st.SearchStrategy[Case]:
    return st.one_of(toy_calls(), synthetic_calls(), train_calls(), linear_model_loads(),
                     dream_calls(), transfer_calls())

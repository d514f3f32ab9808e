"""Generators for files: load_dataset, AttackResult/Curve save and load, and imaging."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ._oracle import Case
from ._values import either, is_real, remove, scratch

# ---------------------------------------------------------------------- load_dataset
_X_DTYPES = ["uint8", "float32", "float64", "float16", "int64", "bool", "object", "complex64"]
_Y_KINDS = ["int", "int", "negative", "float", "huge", "bool", "strings", "2d", "short"]


def _y(kind: str, n: int) -> np.ndarray:
    y = np.arange(n) % 3
    return {"int": y, "negative": y - 2, "float": y + 0.5, "huge": y + 2**62,
            "bool": y.astype(bool), "strings": y.astype(str), "2d": y[:, None],
            "short": y[:-1]}[kind]


@st.composite
def dataset_loads(draw: Any) -> Case:
    fmt = draw(st.sampled_from(["npz", "npz", "safetensors", "pkl", "pt", "folder", "corrupt",
                                "name", "fifo"]))
    n = draw(st.integers(0, 4))
    xd = draw(st.sampled_from(_X_DTYPES))
    yk = draw(st.sampled_from(_Y_KINDS))
    keys = draw(st.sampled_from([("x", "y"), ("x", "y"), ("X", "y"), ("x",), ("x", "labels")]))
    names = draw(st.sampled_from([None, None, ["a", "b", "c"], ["a"], [1, 2, 3], "abc"]))
    values = draw(st.sampled_from(["unit", "nan", "big"]))
    trust = draw(st.booleans())
    folder_opts = fmt == "folder" or draw(st.sampled_from([False] * 4 + [True]))
    spec_name = draw(st.sampled_from(["mnist", " MNIST", "Mnist", "nope", "data.npy", ""]))
    size = draw(st.sampled_from([None, None, (4, 4), (0, 3), "4x4", (2**40, 2), (2.5, 3)])
                ) if folder_opts else None
    channels = draw(st.sampled_from([None, None, 1, 3, 2, "3", 3.0])) if folder_opts else None
    tmp = scratch()

    def call() -> Any:
        from hoodwink import load_dataset

        x = np.random.default_rng(0).uniform(0, 1, (n, 1, 2, 2))
        if values == "nan" and n:
            x.flat[0] = np.nan
        elif values == "big":
            x = x * 1e6
        with np.errstate(all="ignore"):
            xa = (x * 255).astype(xd) if xd == "uint8" else x.astype(xd)
        arrays: dict[str, Any] = {keys[0]: xa}
        if len(keys) > 1:
            arrays[keys[1]] = _y(yk, n) if n else np.zeros(0, dtype=np.int64)
        if names is not None:
            arrays["class_names"] = np.asarray(names)
        spec: Any = tmp / f"d.{fmt}"
        if fmt == "npz":
            np.savez(spec, **arrays)
        elif fmt == "safetensors":
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()
                       if v.dtype != object and v.dtype.kind != "U"}, str(spec))
        elif fmt in ("pkl", "pt"):
            with open(spec, "wb") as fh:
                pickle.dump(arrays, fh)
        elif fmt == "folder":
            from PIL import Image

            for c in range(max(n, 1)):
                d = tmp / "imgs" / f"class{c % 2}"
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((3 + c, 4, 3), 40 * c, np.uint8)).save(d / f"{c}.png")
            (tmp / "imgs" / "class0" / "notes.txt").write_text("not an image")
            spec = tmp / "imgs"
        elif fmt == "corrupt":
            spec = tmp / "d.npz"
            spec.write_bytes(b"PK\x03\x04" + bytes(20))
        elif fmt == "fifo":
            spec = tmp / "d.npz"
            os.mkfifo(spec)
        else:
            spec = spec_name if spec_name.lower().strip() == "mnist" else tmp / spec_name
        return load_dataset(spec, trust_pickle=trust, size=size, channels=channels)

    def check(d: Any) -> list[str]:
        p = []
        if not isinstance(d.x, torch.Tensor) or d.x.dtype != torch.float32:
            p.append(f"dataset: x is {type(d.x).__name__} {getattr(d.x, 'dtype', '')}")
        if not isinstance(d.y, torch.Tensor) or d.y.dtype != torch.int64 or d.y.ndim != 1:
            p.append("dataset: y is not an int64 vector")
        elif len(d.x) != len(d.y) or len(d.y) == 0:
            p.append("dataset: x and y lengths differ or no samples")
        elif bool((d.y < 0).any()):
            p.append("dataset: negative labels accepted")
        elif d.class_names is not None and int(d.y.max()) >= len(d.class_names):
            p.append("dataset: labels beyond class_names accepted")
        if isinstance(d.x, torch.Tensor) and not bool(torch.isfinite(d.x).all()):
            p.append("NaN: dataset x holds NaN or inf")
        return p

    return Case("load_dataset", call, check, timeout=10, after=[lambda: remove(tmp)],
                repro=f"load_dataset(<{fmt}: n={n} x={xd} y={yk} keys={keys} names={names!r} "
                      f"values={values} spec={spec_name!r}>, trust_pickle={trust}, size={size!r}, "
                      f"channels={channels!r})")


# ---------------------------------------------------------------------- results
_RESULTS: dict[str, Any] = {}


def _real_results() -> dict[str, Any]:
    if not _RESULTS:
        from hoodwink import FGSM, PGD, TorchClassifier

        from ._values import TinyNet

        clf = TorchClassifier(TinyNet(6, 3, seed=1, scale=3.0))
        x = torch.rand(3, 2, 3, generator=torch.Generator().manual_seed(0))
        _RESULTS["labelled"] = FGSM()(clf, x, torch.tensor([0, 1, 2]), eps=0.1)
        _RESULTS["unlabelled"] = FGSM()(clf, x, eps=0.1)
        _RESULTS["targeted"] = PGD(steps=2)(clf, x, target=1, eps=0.2)
        _RESULTS["curve"] = PGD(steps=2).sweep(clf, x, torch.tensor([0, 1, 2]), eps=[0.0, 0.1])
        _RESULTS["curve_unlabelled"] = FGSM().sweep(clf, x, eps=[0.1, 0.2])
    return _RESULTS


_JSON_VALUES = [None, "x", -1, 0, 1e308, [], {}, True, float("nan"), "linf", [1, 2], 2**70]


def _mutate_json(rec: Any, path: list[Any], action: str, value: Any) -> None:
    node = rec
    for k in path[:-1]:
        node = node[k]
    k = path[-1]
    if action == "delete":
        del node[k]
    else:
        node[k] = value


def _paths(rec: Any, prefix: list[Any] | None = None, depth: int = 0) -> list[list[Any]]:
    prefix = prefix or []
    out = []
    if isinstance(rec, dict) and depth < 3:
        for k, v in rec.items():
            out.append(prefix + [k])
            out += _paths(v, prefix + [k], depth + 1)
    elif isinstance(rec, list) and rec and depth < 3:
        out.append(prefix + [0])
        out += _paths(rec[0], prefix + [0], depth + 1)
    return out


@st.composite
def result_loads(draw: Any) -> Case:
    which = draw(st.sampled_from(["labelled", "unlabelled", "targeted", "curve",
                                  "curve_unlabelled"]))
    target = draw(st.sampled_from(["json_field"] * 4 + ["json_truncate", "json_bytes", "json_list",
                                                        "tensor_truncate", "tensor_flip",
                                                        "tensor_missing", "none", "path_variant"]))
    pick = draw(st.integers(0, 10**6))
    action = draw(st.sampled_from(["delete", "set"]))
    value = draw(st.sampled_from(_JSON_VALUES))
    cut = draw(st.integers(0, 400))
    variant = draw(st.sampled_from(["stem", "safetensors", "folder", "missing"]))
    tmp = scratch()
    info: dict[str, Any] = {}

    def call() -> Any:
        from hoodwink import AttackResult, Curve

        orig = _real_results()[which]
        cls = Curve if which.startswith("curve") else AttackResult
        path = orig.save(tmp / "r.json")
        tens = path.with_suffix(".safetensors")
        if target == "json_field":
            rec = json.loads(path.read_text())
            paths = _paths(rec)
            jp = paths[pick % len(paths)]
            info["path"] = jp
            _mutate_json(rec, jp, action, value)
            path.write_text(json.dumps(rec))
        elif target == "json_truncate":
            path.write_text(path.read_text()[:cut])
        elif target == "json_bytes":
            path.write_bytes(b"\xff\xfe" + bytes(range(256))[:cut % 256])
        elif target == "json_list":
            path.write_text("[1, 2, 3]")
        elif target == "tensor_truncate":
            tens.write_bytes(tens.read_bytes()[:cut])
        elif target == "tensor_flip":
            b = bytearray(tens.read_bytes())
            b[cut % len(b)] ^= 0xFF
            tens.write_bytes(bytes(b))
        elif target == "tensor_missing":
            tens.unlink()
        arg: Any = path
        if target == "path_variant":
            arg = {"stem": tmp / "r", "safetensors": tens, "folder": tmp,
                   "missing": tmp / "nope.json"}[variant]
        back = cls.load(arg)
        back.table()
        back.to_dict()
        repr(back)
        if cls is Curve:
            len(back)
            _ = back.success_rate
            if back.has_labels:
                _ = back.robust_accuracy
        else:
            back.summary()
            back.success_rate()
            if back.y is not None:
                back.robust_accuracy()
        return back

    def check(back: Any) -> list[str]:
        from hoodwink import Curve

        rs = list(back) if isinstance(back, Curve) else [back]
        p = []
        for r in rs:
            n = r.x_adv.shape[0]
            if r.norm not in ("linf", "l2", "l1"):
                p.append(f"loaded: norm {r.norm!r}")
            if r.eps is not None and not (is_real(r.eps) and r.eps >= 0):
                p.append(f"loaded: eps {r.eps!r}")
            if not isinstance(r.attack, str):
                p.append(f"loaded: attack {r.attack!r}")
            if r.seed is not None and type(r.seed) is not int:
                p.append(f"loaded: seed {r.seed!r}")
            if r.success.dtype != torch.bool or r.success.shape != (n,):
                p.append("loaded: success is not a bool vector of length N")
        return p

    return Case("result_load", call, check, timeout=10, after=[lambda: remove(tmp)],
                repro=f"{which}.save(p); corrupt {target} (pick={pick}, action={action}, "
                      f"value={value!r}, cut={cut}, variant={variant}); load(p)")


# ---------------------------------------------------------------------- imaging
_MODES = ["L", "RGB", "RGBA", "P", "LA", "I;16", "I", "F", "1", "CMYK"]


@st.composite
def image_loads(draw: Any) -> Case:
    kind = draw(st.sampled_from(["image"] * 5 + ["random_bytes", "empty", "folder", "missing",
                                                "fifo", "float01"]))
    src_mode = draw(st.sampled_from(_MODES))
    fmt = draw(st.sampled_from(["PNG", "PNG", "TIFF", "BMP", "GIF", "JPEG"]))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    mode = draw(either(st.sampled_from(["RGB", "L"]), 4))
    max_pixels = draw(either(st.sampled_from([40_000_000, 100, 1]), 6))
    seed = draw(st.integers(0, 3))
    tmp = scratch()
    info: dict[str, Any] = {}

    def call() -> Any:
        from PIL import Image

        from hoodwink.imaging import load_image

        p = tmp / f"img.{fmt.lower()}"
        rng = np.random.default_rng(seed)
        if kind == "image":
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            im = Image.fromarray(arr).convert(src_mode)
            try:
                im.save(p, format=fmt)
            except (OSError, ValueError, KeyError):
                im.convert("RGB").save(p, format="PNG")
            info["exact"] = fmt == "PNG" and src_mode in ("L", "RGB") and src_mode == mode
            info["src"] = np.asarray(Image.open(p).convert(mode)) if info["exact"] else None
        elif kind == "float01":
            arr = rng.uniform(0.2, 1, (h, w)).astype(np.float32)
            Image.fromarray(arr, mode="F").save(tmp / "img.tiff")
            p = tmp / "img.tiff"
            info["float01"] = arr
        elif kind == "random_bytes":
            p.write_bytes(rng.bytes(64))
        elif kind == "empty":
            p.write_bytes(b"")
        elif kind == "folder":
            p = tmp
        elif kind == "fifo":
            os.mkfifo(p)
        else:
            p = tmp / "missing.png"
        return load_image(p, mode=mode, max_pixels=max_pixels)

    def check(t: Any) -> list[str]:
        p = []
        c = {"RGB": 3, "L": 1}.get(mode)
        if mode is None and isinstance(t, torch.Tensor) and t.ndim == 4 and t.shape[1] in (1, 3):
            c = int(t.shape[1])  # mode=None keeps the file's own mode: grey or colour
        if c is None:
            return [f"accepted bad mode: mode={mode!r} gave {tuple(t.shape)}"]
        if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] != c:
            return [f"image: shape {tuple(t.shape)} for mode {mode}"]
        if t.dtype != torch.float32 or not bool(((t >= 0) & (t <= 1)).all()):
            p.append("image: values outside [0, 1] or not float32")
        k = t * 255
        if bool(((k - k.round()).abs() > 1e-3).any()):
            p.append("image: values off the 8-bit grid")
        if info.get("src") is not None:
            src = torch.from_numpy(np.asarray(info["src"]).reshape(t.shape[2], t.shape[3], c))
            if not torch.equal((k.round()[0].permute(1, 2, 0)).to(torch.uint8), src):
                p.append("image: pixels differ from the file")
        if info.get("float01") is not None and float(t.max()) == 0.0:
            p.append("image: a float image in [0, 1] loads black")
        return p

    return Case("load_image", call, check, timeout=5, after=[lambda: remove(tmp)],
                repro=f"load_image(<{kind} {src_mode} as {fmt} {h}x{w} seed={seed}>, "
                      f"mode={mode!r}, max_pixels={max_pixels!r})")


@st.composite
def png_roundtrips(draw: Any) -> Case:
    c = draw(st.sampled_from([1, 3, 3, 4, 2]))
    shape = draw(st.sampled_from([(1, c, 3, 2), (1, c, 3, 2), (c, 3, 2), (2, c, 3, 2),
                                  (1, c, 0, 2)]))
    values = draw(st.sampled_from(["unit"] * 4 + ["255", "nan", "inf", "negative", "grid"]))
    dtype = draw(st.sampled_from(["float32"] * 3 + ["float64", "float16", "uint8", "bool"]))
    op = draw(st.sampled_from(["encode", "encode", "save"]))
    where = draw(st.sampled_from(["ok", "ok", "folder", "under_file", "proc", "missing_parent"]))
    u = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    tmp = scratch()
    x = {"unit": u, "grid": np.round(u * 255) / 255, "255": np.round(u * 255), "negative": u - 1,
         "nan": np.where(u > 0.5, np.nan, u), "inf": np.where(u > 0.5, np.inf, u)}[values]
    with np.errstate(all="ignore"):
        xt = torch.from_numpy(x.astype(np.float32 if dtype == "bfloat16" else dtype))

    def call() -> Any:
        from hoodwink.imaging import decode_png, encode_png, save_png

        if op == "encode":
            data = encode_png(xt)
        else:
            (tmp / "afile").write_text("x")
            path = {"ok": tmp / "o.png", "folder": tmp, "under_file": tmp / "afile" / "o.png",
                    "proc": Path("/proc/hoodwink-fuzz/o.png"),
                    "missing_parent": tmp / "a" / "b" / "o.png"}[where]
            save_png(xt, path)
            data = path.read_bytes()
        return decode_png(data, "L" if shape[-3] == 1 else "RGB")

    def check(back: Any) -> list[str]:
        xf = xt.double()
        if not bool(torch.isfinite(xf).all()):
            return ["accepted NaN/inf: encoded a non-finite image without a word"]
        if float(xf.max()) > 1.5 or float(xf.min()) < -0.5:
            return [f"accepted out-of-range: encoded values in [{float(xf.min()):g}, "
                    f"{float(xf.max()):g}] as an image in [0, 1]"]
        want = (xf.clamp(0, 1) * 255).round() / 255
        if tuple(back.shape) != tuple(xt.shape) or not torch.allclose(back.double(), want,
                                                                      atol=1e-6):
            return ["png: decode(encode(x)) is not x on the 8-bit grid"]
        return []

    return Case("png", call, check, timeout=5, after=[lambda: remove(tmp)],
                repro=f"{op}_png(<{dtype} {shape} {values}>"
                      f"{', path=' + where if op == 'save' else ''})")

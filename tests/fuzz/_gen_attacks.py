"""Generators for attack construction and attack calls, and the attack guarantees."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hoodwink import FGSM, PGD, Normalize, TorchClassifier

from ._oracle import Case
from ._values import (
    TinyNet,
    either,
    is_real,
    module_state,
    module_unchanged,
    odd,
    snapshot,
    unchanged,
)

_NORMS = {"FGSM": ("linf", "l2"), "PGD": ("linf", "l2", "l1")}
_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                 "bfloat16": torch.bfloat16}


# ---------------------------------------------------------------------- guarantees
def _lp(d: torch.Tensor, norm: str) -> torch.Tensor:
    d = d.flatten(1)
    if norm == "linf":
        return d.abs().amax(dim=1)
    if norm == "l2":
        return d.norm(dim=1)
    return d.abs().sum(dim=1)


def check_attack_result(r: Any, *, clf: Any, x: Any, eps: Any, norm: str, targeted: bool,
                        sweep_eps: Any = None) -> list[str]:
    """Every documented guarantee of an :class:`AttackResult` against the call that made it."""
    from hoodwink import AttackResult

    p: list[str] = []
    if not isinstance(r, AttackResult):
        return [f"wrong type: {type(r).__name__} returned, not AttackResult"]
    xt = torch.from_numpy(np.ascontiguousarray(x).astype(x.dtype.newbyteorder("="))) if isinstance(
        x, np.ndarray) else x.detach()
    n = xt.shape[0]
    xa = r.x_adv
    if not isinstance(xa, torch.Tensor):
        return [f"wrong type: x_adv is {type(xa).__name__}"]
    if tuple(xa.shape) != tuple(xt.shape):
        p.append(f"shape: x_adv has shape {tuple(xa.shape)} for x of shape {tuple(xt.shape)}")
        return p
    if xa.dtype != xt.dtype:
        p.append(f"dtype: x_adv is {xa.dtype}, x was {xt.dtype}")
    for name in ("success", "pred_adv", "pred_clean", "perturbation_norm", "queries"):
        v = getattr(r, name)
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != (n,):
            p.append(f"shape: {name} is not a tensor of shape ({n},)")
            return p
    if not is_real(eps):
        p.append(f"accepted bad eps: eps={eps!r} ({type(eps).__name__}) was accepted")
    elif r.eps is None or not math.isclose(float(r.eps), float(eps), rel_tol=1e-12, abs_tol=0):
        p.append(f"eps: result records eps={r.eps!r} for eps={eps!r}")
    x64, a64 = xt.double().cpu(), xa.double().cpu()
    if not bool(torch.isfinite(a64).all()):
        return p + ["NaN: x_adv holds NaN or inf"]
    lo, hi = (b.double().cpu() for b in clf.bounds)
    if bool(((a64 < lo) | (a64 > hi)).any()):
        by = float(max((lo - a64).max(), (a64 - hi).max()))
        p.append(f"bounds: x_adv leaves the bounds by {by:.3g}")
    e = float(eps) if is_real(eps) else float(r.eps or 0)
    dist = _lp(a64 - x64, norm)
    tol = 1e-5 * max(1.0, e) + 1e-6
    if bool((dist > e + tol).any()):
        p.append(f"eps-ball: {norm} distance {float(dist.max()):.6g} > eps {e:.6g}")
    if e == 0 and not torch.equal(a64, x64):
        p.append("eps=0: x_adv differs from x")
    pn = r.perturbation_norm.double().cpu()
    if not bool(torch.isfinite(pn).all()):
        p.append("NaN: perturbation_norm is not finite")
    elif bool(((pn - dist).abs() > 1e-4 * (1 + dist)).any()):
        p.append(f"perturbation_norm: says {pn.tolist()} but x_adv - x has {dist.tolist()}")
    levels = clf.levels
    if levels is not None:
        t = (a64 - lo) / (hi - lo) * (levels - 1)
        fin = torch.finfo(xa.dtype) if xa.is_floating_point() else None
        slack = 1e-3 + (fin.eps * (levels - 1) * 4 * float(torch.maximum(lo.abs(), hi.abs()).max()
                                                            / (hi - lo).min()) if fin else 0)
        if bool(((t - t.round()).abs() > slack).any()):
            p.append(f"grid: x_adv is off the {levels}-level grid")
    # success is a fresh prediction on the returned x_adv.
    fresh = clf.predict(xa.to(clf.device) if hasattr(clf, "device") else xa).cpu()
    if not torch.equal(fresh, r.pred_adv.cpu()):
        p.append("success: pred_adv differs from a fresh prediction on x_adv")
    if targeted:
        want = fresh == r.target.cpu()
    else:
        lab = r.y if r.y is not None else r.pred_clean
        want = fresh != lab.cpu()
    if not torch.equal(want, r.success.cpu().bool()):
        p.append("success: success disagrees with a fresh prediction on x_adv")
    # The record's accessors work on every result.
    r.summary()
    r.to_dict()
    r.table()
    repr(r)
    r.success_rate()
    if r.y is not None:
        r.robust_accuracy()
        r.clean_accuracy()
    return p


def check_fields(attack: Any) -> list[str]:
    """A constructed attack holds normalised values of the documented types."""
    p = []
    f = attack
    if type(f.norm) is not str or f.norm not in _NORMS[type(f).__name__]:
        p.append(f"accepted bad norm: {f.norm!r}")
    if f.seed is not None and (type(f.seed) is not int or not 0 <= f.seed < 2**64):
        p.append(f"accepted bad seed: {f.seed!r} ({type(f.seed).__name__})")
    if type(f.loss) is not str or f.loss not in ("ce", "margin"):
        p.append(f"accepted bad loss: {f.loss!r}")
    if isinstance(f, PGD):
        for k in ("steps", "restarts"):
            v = getattr(f, k)
            if type(v) is not int or v < 1:
                p.append(f"accepted bad {k}: {v!r}")
        for k in ("random_start", "early_stop"):
            if type(getattr(f, k)) is not bool:
                p.append(f"accepted bad {k}: {getattr(f, k)!r}")
        # Any finite float > 0: a step beyond float32 is capped when the attack runs.
        if f.stepsize is not None and (not is_real(f.stepsize) or not float(f.stepsize) > 0):
            p.append(f"accepted bad stepsize: {f.stepsize!r}")
        for k in ("l1_sparsity", "confidence"):
            v = getattr(f, k)
            if not is_real(v) or not 0 <= float(v) < 1:
                p.append(f"accepted bad {k}: {v!r}")
    return p


# ---------------------------------------------------------------------- construction
_VALID = {
    "norm": st.sampled_from(["linf", "l2", "l1"]),
    "seed": st.one_of(st.integers(0, 2**64 - 1), st.none()),
    "loss": st.sampled_from(["ce", "margin"]),
    "steps": st.integers(1, 4),
    "restarts": st.integers(1, 2),
    "stepsize": st.one_of(st.none(), st.floats(1e-4, 1.0)),
    "random_start": st.booleans(),
    "early_stop": st.booleans(),
    "l1_sparsity": st.floats(0, 0.99),
    "confidence": st.floats(0, 0.99),
}
_FIELDS = {"FGSM": ("norm", "seed", "loss"), "PGD": tuple(_VALID)}


def _fixed_problem() -> tuple[TorchClassifier, torch.Tensor, torch.Tensor, TinyNet]:
    net = TinyNet(6, 3, seed=1, scale=3.0)
    clf = TorchClassifier(net, bounds=(0, 1))
    x = torch.rand(3, 2, 3, generator=torch.Generator().manual_seed(0))
    return clf, x, torch.tensor([0, 1, 2]), net


@st.composite
def attack_constructions(draw: Any) -> Case:
    name = draw(st.sampled_from(["FGSM", "PGD"]))
    cls = FGSM if name == "FGSM" else PGD
    keys = draw(st.lists(st.sampled_from(_FIELDS[name]), unique=True, max_size=4))
    kwargs = {k: draw(either(_VALID[k], 2)) for k in keys}

    def call() -> Any:
        a = cls(**kwargs)
        out = {"attack": a, "problems": check_fields(a)}
        budget = getattr(a, "steps", 1) * getattr(a, "restarts", 1)
        if not out["problems"] and isinstance(budget, int) and budget <= 50:
            clf, x, y, _ = _fixed_problem()
            r = a(clf, x, y, eps=0.1)
            out["problems"] = check_attack_result(r, clf=clf, x=x, eps=0.1, norm=a.norm,
                                                  targeted=False)
            a.replace()  # validated again: must not fail on its own values
        return out

    return Case("attack_construction", call, lambda out: out["problems"],
                repro=f"hoodwink.{name}(**{kwargs!r})  # then attack(model, x, y, eps=0.1)")


# ---------------------------------------------------------------------- calls
@st.composite
def tiny_models(draw: Any) -> dict[str, Any]:
    shape = draw(st.sampled_from([(3,), (2, 3), (1, 3, 2), (2, 2, 3)]))
    d = int(np.prod(shape))
    c = draw(st.sampled_from([2, 3, 5]))
    dtype = draw(st.sampled_from(["float32"] * 4 + ["float64", "float16", "bfloat16"]))
    quirk = draw(st.sampled_from(["plain"] * 8 + ["dropout_train", "batchnorm_train", "inplace",
                                                  "ignores_x", "int_logits", "bool_logits",
                                                  "frozen_param"]))
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 1e4]))
    seed = draw(st.integers(0, 3))
    bounds_kind = draw(st.sampled_from(["01"] * 5 + ["pm1", "0_255", "per_feature",
                                                     "batch_leading", "tiny_span", "huge"]))
    levels = draw(st.sampled_from([None] * 4 + [256, 2, 17]))
    pre = draw(st.sampled_from([None] * 4 + ["normalize", "sqrt", "scale"]))
    return {"shape": shape, "d": d, "c": c, "dtype": dtype, "quirk": quirk, "scale": scale,
            "seed": seed, "bounds": bounds_kind, "levels": levels, "pre": pre}


def _bounds(kind: str, shape: tuple[int, ...]) -> tuple[Any, Any]:
    g = np.random.default_rng(len(shape))
    if kind == "01":
        return 0.0, 1.0
    if kind == "pm1":
        return -1.0, 1.0
    if kind == "0_255":
        return 0, 255
    if kind == "per_feature":
        return -g.uniform(0, 1, shape), g.uniform(0.1, 1, shape)
    if kind == "batch_leading":
        return np.zeros((2, *shape)), np.ones((2, *shape))
    if kind == "tiny_span":
        return 0.5, 0.5 + 1e-6
    return 0.0, 1e30  # huge


def _preprocessing(pre: str | None, shape: tuple[int, ...]) -> Any:
    if pre == "normalize":
        return Normalize(0.5, 0.25)
    if pre == "sqrt":
        return _Sqrt()
    if pre == "scale":
        return _Scale()
    return None


class _Sqrt(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs() ** 0.5  # an infinite gradient at 0


class _Scale(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1e3


def _as_container(a: np.ndarray, dtype: str, layout: str) -> Any:
    """``a`` (float64) in the dtype and container/layout under test."""
    if dtype == "object":
        return a.astype(object)
    if dtype in ("int64", "uint8", "bool", "complex64", "float32", "float64", "float16"):
        with np.errstate(all="ignore"):
            arr = a.astype(dtype)
    else:  # bfloat16: torch only
        arr = a.astype(np.float32)
    if layout.startswith("numpy") and dtype != "bfloat16":
        if layout == "numpy_flip":
            return arr[..., ::-1]
        if layout == "numpy_bigendian":
            return arr.astype(arr.dtype.newbyteorder(">"))
        if layout == "numpy_fortran":
            return np.asfortranarray(arr)
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype == "bfloat16":
        t = t.to(torch.bfloat16)
    if layout == "torch_noncontig" and t.ndim >= 2:
        t = t.transpose(0, -1).contiguous().transpose(0, -1)
    elif layout == "torch_requires_grad" and t.is_floating_point():
        t = t.requires_grad_(True)
    elif layout == "meta":
        t = t.to("meta")
    return t


def _labels(draw: Any, n: int, c: int, base: np.ndarray) -> Any:
    kind = draw(st.sampled_from(["tensor"] * 4 + ["int", "numpy", "list", "odd", "bad_value",
                                                  "int32", "wrong_len", "float"]))
    if kind == "tensor":
        return torch.from_numpy(base)
    if kind == "int":
        return int(base[0])
    if kind == "numpy":
        return base
    if kind == "list":
        return base.tolist()
    if kind == "int32":
        return torch.from_numpy(base.astype(np.int32))
    if kind == "wrong_len":
        return torch.from_numpy(np.concatenate([base, base]))
    if kind == "float":
        return torch.from_numpy(base.astype(np.float32))
    if kind == "bad_value":
        v = draw(st.sampled_from([-1, c, 2**63, 2**64, -(2**63) - 1, 10**30]))
        if draw(st.booleans()):
            return v
        return [v] + base.tolist()[1:]
    return draw(odd)


@st.composite
def attack_calls(draw: Any) -> Case:
    m = draw(tiny_models())
    shape, c = m["shape"], m["c"]
    net = TinyNet(m["d"], c, quirk=m["quirk"], dtype=_TORCH_DTYPES[m["dtype"]], seed=m["seed"],
                  scale=m["scale"])
    lo, hi = _bounds(m["bounds"], shape)
    n = draw(st.integers(1, 4))
    u = draw(hnp.arrays(np.float64, (n, *shape), elements=st.floats(0, 1)))
    lo1 = np.asarray(lo, dtype=np.float64)
    hi1 = np.asarray(hi, dtype=np.float64)
    if m["bounds"] == "batch_leading":
        lo1, hi1 = lo1[0], hi1[0]
    if m["levels"]:
        u = np.round(u * (m["levels"] - 1)) / (m["levels"] - 1)
    xv = lo1 + u * (hi1 - lo1)
    spoil = draw(st.sampled_from(["none"] * 10 + ["offgrid_tiny", "out_of_bounds", "nan", "inf",
                                                  "above_by_ulp", "empty", "unbatched"]))
    if spoil == "offgrid_tiny":
        xv = xv + 1e-7
    elif spoil == "out_of_bounds":
        xv = xv + 2 * (hi1 - lo1)
    elif spoil == "nan":
        xv.flat[0] = np.nan
    elif spoil == "inf":
        xv.flat[0] = np.inf
    elif spoil == "above_by_ulp":
        xv = np.nextafter(np.broadcast_to(hi1, xv.shape), np.inf).copy()
    elif spoil == "empty":
        xv = xv[:0]
    elif spoil == "unbatched":
        xv = xv[0]
    dtype = draw(st.sampled_from(["float32"] * 6 + ["float64", "float64", "float16", "bfloat16",
                                                    "int64", "uint8", "bool", "object",
                                                    "complex64"]))
    layout = draw(st.sampled_from(["torch"] * 4 + ["numpy"] * 2 + [
        "numpy_flip", "numpy_bigendian", "numpy_fortran", "torch_noncontig",
        "torch_requires_grad", "meta", "list"]))
    x = _as_container(xv, dtype, layout) if layout != "list" else xv.tolist()
    nn_ = xv.shape[0] if xv.ndim > len(shape) else 1
    base = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=max(nn_, 1),
                                    max_size=max(nn_, 1))), dtype=np.int64)
    mode = draw(st.sampled_from(["y"] * 4 + ["none", "target", "both"]))
    y = _labels(draw, nn_, c, base) if mode in ("y", "both") else None
    target = _labels(draw, nn_, c, (base + draw(st.integers(0, c - 1))) % c) if mode in (
        "target", "both") else None
    eps = draw(st.one_of(st.floats(0, 1), st.floats(0, 1), st.sampled_from(
        [0.0, 8 / 255, 0.3, 1.0, 2.0, 1e-12, 1e39, 10**400, np.float32(0.1), np.float64(0.05),
         np.int64(0)]), odd))
    name = draw(st.sampled_from(["FGSM", "PGD", "PGD"]))
    norm = draw(st.sampled_from(_NORMS[name]))
    if name == "FGSM":
        attack: Any = FGSM(norm=norm, loss=draw(st.sampled_from(["ce", "margin"])))
    else:
        attack = PGD(norm=norm, steps=draw(st.integers(1, 4)),
                     stepsize=draw(st.sampled_from([None, None, 0.01, 0.5, 1e30, 1e39])),
                     random_start=draw(st.booleans()), restarts=draw(st.integers(1, 2)),
                     loss=draw(st.sampled_from(["ce", "margin"])), early_stop=draw(st.booleans()),
                     confidence=draw(st.sampled_from([0.0, 0.0, 0.5])),
                     l1_sparsity=draw(st.sampled_from([0.0, 0.9])),
                     seed=draw(st.sampled_from([0, 1, None])))
    sweep = draw(st.integers(0, 7)) == 0
    pre = _preprocessing(m["pre"], shape)
    levels, bounds_kind = m["levels"], m["bounds"]
    before = module_state(net)
    x_before = snapshot(x)
    state: dict[str, Any] = {}

    def call() -> Any:
        clf = TorchClassifier(net, bounds=(lo, hi), preprocessing=pre, levels=levels)
        state["clf"] = clf
        if sweep:
            return attack.sweep(clf, x, y, target=target, eps=[eps, 0.05])
        return attack(clf, x, y, target=target, eps=eps)

    def check(r: Any) -> list[str]:
        from hoodwink import Curve

        if sweep:
            if not isinstance(r, Curve) or len(r) != 2:
                return ["wrong type: sweep did not return a Curve of 2 results"]
            r.table()
            r.to_dict()
            if r.has_labels:
                r.robust_accuracy()
            return (check_attack_result(r[0], clf=state["clf"], x=x, eps=eps, norm=norm,
                                        targeted=target is not None)
                    + check_attack_result(r[1], clf=state["clf"], x=x, eps=0.05, norm=norm,
                                          targeted=target is not None))
        return check_attack_result(r, clf=state["clf"], x=x, eps=eps, norm=norm,
                                   targeted=target is not None)

    desc = (f"net=TinyNet({m['d']}, {c}, quirk={m['quirk']!r}, dtype=torch.{m['dtype']}, "
            f"seed={m['seed']}, scale={m['scale']}); clf=TorchClassifier(net, bounds={bounds_kind}"
            f", preprocessing={m['pre']}, levels={levels}); x: {dtype} {layout} shape "
            f"{tuple(np.shape(xv))} spoil={spoil}; {attack!r}"
            f"{'.sweep' if sweep else ''}(clf, x, y={_short(y)}, target={_short(target)}, "
            f"eps={_short(eps)})")
    return Case("attack_call", call, check, repro=desc, timeout=30,
                after=[lambda: module_unchanged(net, before), lambda: unchanged(x, x_before)])


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) < 60 else s[:57] + "..."

"""Shared value generators and helpers: odd parameter values, scratch folders, tiny nets."""

from __future__ import annotations

import numbers
import shutil
import tempfile
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

#: Values of every type a parameter may be handed by mistake.
ODD_CONSTANTS: list[Any] = [
    2**31, 2**63, 2**64 - 1, 2**64, 2**70, 10**400, -(2**63) - 1,
    np.int64(3), np.int32(-1), np.uint64(2**64 - 1), np.float32(0.1), np.float16(0.5),
    np.float64(1e300), np.bool_(True), np.int8(0), np.float32(1e39 if False else 3e38),
    np.array(["ce"]), np.array(0.1), np.array([1, 2]), np.array([]), torch.tensor(0.5),
    torch.tensor(3), torch.tensor([1.0, 2.0]), bytearray(b"a"), b"\x00", [0.1], (1, 2), {},
    1 + 2j, Fraction(1, 3), Decimal("0.1"), Decimal("NaN"), object(), "linf", "l2", "l1", "ce",
    "margin", "LINF", " linf", "8/255", "0.1", "", "nan", "inf", float("nan"), float("inf"),
    -float("inf"), -0.0, 5e-324, 1.7976931348623157e308,
]

odd = st.one_of(
    st.integers(-5, 50),
    st.sampled_from(ODD_CONSTANTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.none(),
    st.booleans(),
)


def either(valid: st.SearchStrategy[Any], p_valid: int = 3) -> st.SearchStrategy[Any]:
    """Mostly ``valid`` values, sometimes :data:`odd` ones."""
    return st.sampled_from([True] * p_valid + [False]).flatmap(lambda ok: valid if ok else odd)


def scratch() -> Path:
    """A fresh temporary folder (removed by :func:`remove`)."""
    return Path(tempfile.mkdtemp(prefix="hoodwink-fuzz-"))


def remove(path: Path) -> list[str]:
    shutil.rmtree(path, ignore_errors=True)
    return []


def is_real(v: Any) -> bool:
    """A real number as the docs promise it (bool excluded; Fractions are real), finite as a
    float."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real | np.integer
                                                            | np.floating):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:
        return False


class TinyNet(nn.Module):
    """A linear classifier on flattened inputs, with optional quirks.

    quirk: "plain", "dropout_train" (in training mode, with dropout),
    "batchnorm_train", "inplace" (writes into its input), "ignores_x" (output
    does not depend on x), "int_logits", "bool_logits", "frozen_param" (one
    parameter already has requires_grad False).
    """

    def __init__(self, d: int, c: int, *, quirk: str = "plain", dtype: torch.dtype = torch.float32,
                 seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.quirk = quirk
        self.fc = nn.Linear(d, c)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(c, d, generator=gen) * scale)
            self.fc.bias.copy_(torch.randn(c, generator=gen) * 0.1)
        self.drop = nn.Dropout(0.5) if quirk == "dropout_train" else None
        self.bn = nn.BatchNorm1d(d) if quirk == "batchnorm_train" else None
        if quirk == "frozen_param":
            self.fc.bias.requires_grad_(False)
        self.to(dtype)
        if quirk in ("dropout_train", "batchnorm_train"):
            self.train()
        else:
            self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quirk == "inplace":
            x.clamp_(0.25, 0.75)
        h = x.flatten(1)
        if self.bn is not None:
            h = self.bn(h)
        if self.drop is not None:
            h = self.drop(h)
        if self.quirk == "ignores_x":
            return self.fc.bias.unsqueeze(0).expand(x.shape[0], -1) * 1.0
        out = self.fc(h)
        if self.quirk == "int_logits":
            return out.round().long()
        if self.quirk == "bool_logits":
            return out > 0
        return out


def module_state(m: nn.Module) -> tuple[list[tuple[str, torch.Tensor]], list[bool], list[bool]]:
    return ([(k, v.detach().clone()) for k, v in m.state_dict().items()],
            [s.training for s in m.modules()],
            [p.requires_grad for p in m.parameters()])


def module_unchanged(m: nn.Module, before: Any) -> list[str]:
    params, training, grads = module_state(m)
    out = []
    for (k, a), (_, b) in zip(before[0], params, strict=True):
        if k.endswith("num_batches_tracked"):
            continue
        if a.shape != b.shape or not torch.equal(a, b):
            out.append(f"module changed: {k} was modified by the call")
            break
    if training != before[1]:
        out.append("module changed: training flags not restored")
    if grads != before[2]:
        out.append("module changed: requires_grad flags not restored")
    return out


def snapshot(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().clone() if x.device.type != "meta" else None
    if isinstance(x, np.ndarray):
        return x.copy()
    return None


def _np(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach()
        return (v.float() if v.dtype == torch.bfloat16 else v).numpy()
    return np.asarray(v)


def unchanged(x: Any, before: Any, name: str = "x") -> list[str]:
    if before is None:
        return []
    a, b = _np(x), _np(before)
    if a.dtype == object:
        try:
            a, b = a.astype(np.float64), b.astype(np.float64)
        except (TypeError, ValueError):
            pass
    try:
        same = bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    except TypeError:
        same = bool(np.array_equal(a, b))
    return [] if same else [f"input mutated: the caller's {name} was changed"]

"""Robustness curves: one attack run at several budgets, :class:`Curve`.

``attack.sweep(model, x, y, eps=[...])`` returns a :class:`Curve`: the
results in budget order (it is a sequence of :class:`AttackResult`), robust
accuracy and success rate against eps as lists, a table, a PNG plot, a JSON
record, and :meth:`Curve.save` / :meth:`Curve.load` for an exact round trip.

>>> import torch
>>> def result(eps, pred_adv):
...     y = torch.tensor([0, 1, 2, 0])
...     pa = torch.tensor(pred_adv)
...     return AttackResult(
...         x_adv=torch.zeros(4, 2), success=pa != y, clean_correct=torch.ones(4, dtype=bool),
...         pred_clean=y, pred_adv=pa, perturbation_norm=torch.full((4,), eps),
...         queries=torch.full((4,), 3), y=y, target=None, eps=eps, norm="linf",
...         attack="FGSM(norm='linf', seed=0)", seed=0, time_s=0.01)
>>> curve = Curve(eps=(1 / 255, 8 / 255), norm="linf", attack="FGSM(norm='linf', seed=0)",
...               results=(result(1 / 255, [0, 1, 2, 1]), result(8 / 255, [1, 0, 2, 1])))
>>> curve.robust_accuracy()
[0.75, 0.25]
>>> print(curve.table())
      eps  robust_accuracy  success_rate  n  median_norm_successful  queries_mean  time_s
 0.003922             0.75          0.25  4                0.003922             3    0.01
  0.03137             0.25          0.75  4                 0.03137             3    0.01
>>> len(curve), curve[1].eps == 8 / 255
(2, True)
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from hoodwink._validation import check_real, reject
from hoodwink.attacks._store import read_pair, write_pair
from hoodwink.attacks.result import (
    AttackResult,
    ResultTable,
    _exact_fields,
    _finite_or_none,
    _from_parts,
    _tensors_of,
    environment,
)
from hoodwink.errors import ConfigError, InputError, MissingDependencyError, MissingLabelsError

__all__ = ["CURVE_SCHEMA_VERSION", "Curve"]

#: Version of the JSON layout written by :meth:`Curve.to_dict` and :meth:`Curve.save`.
CURVE_SCHEMA_VERSION = "hoodwink.curve/1"

_NORM_LABEL = {"linf": "L∞", "l2": "L2", "l1": "L1"}


@dataclass(frozen=True, eq=False, repr=False)
class Curve(Sequence[AttackResult]):
    """One attack at several budgets: robust accuracy (or success rate) against eps.

    A sequence of :class:`AttackResult`, one per budget in the order given
    to :meth:`hoodwink.Attack.sweep`: ``len(curve)``, ``for r in curve``
    and ``curve[i]`` work as on a list (a slice gives a shorter Curve).

    Attributes
    ----------
    eps : tuple of float, length K
        The budgets, in the attack's norm and raw input units.
    results : tuple of AttackResult, length K
        ``results[k]`` is the attack at ``eps[k]``.
    norm : str
        "linf", "l2" or "l1".
    attack : str
        The attack's repr.
    """

    eps: tuple[float, ...]
    results: tuple[AttackResult, ...]
    norm: str
    attack: str

    def __post_init__(self) -> None:
        for name in ("eps", "results"):
            value = getattr(self, name)
            if (not isinstance(value, Sequence | np.ndarray)
                    or isinstance(value, str | bytes | bytearray | memoryview)):
                reject("Curve", name, value, "a sequence (one entry per budget)")
        eps = tuple(check_real("Curve", "eps", e, low=0) for e in self.eps)
        for r in self.results:
            if not isinstance(r, AttackResult):
                reject("Curve", "results", r, "a sequence of AttackResult",
                       hint="Build a curve with attack.sweep(...).")
        object.__setattr__(self, "eps", eps)
        if len(self.eps) != len(self.results):
            raise ConfigError(
                f"A Curve needs one result per budget: got {len(self.eps)} budgets in 'eps' "
                f"and {len(self.results)} results. Build it with attack.sweep(...)."
            )
        # Tuples, whatever sequence was given, so the frozen curve really is immutable.
        object.__setattr__(self, "results", tuple(self.results))

    # ------------------------------------------------------------------ sequence
    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AttackResult]:
        return iter(self.results)

    @overload
    def __getitem__(self, index: int) -> AttackResult: ...

    @overload
    def __getitem__(self, index: slice) -> Curve: ...

    def __getitem__(self, index: int | slice) -> AttackResult | Curve:
        if isinstance(index, slice):
            return Curve(eps=self.eps[index], results=self.results[index], norm=self.norm,
                         attack=self.attack)
        return self.results[index]

    def __repr__(self) -> str:
        eps = ", ".join(f"{e:.4g}" for e in self.eps)
        name, values = self._main_metric()
        shown = ", ".join("None" if math.isnan(v) else f"{v:.3g}" for v in values)
        return (f"Curve(attack={self.attack.split('(', 1)[0][:40]!r}, norm={self.norm!r}, "
                f"eps=({eps}), {name}=({shown}))")

    # ------------------------------------------------------------------ metrics
    @property
    def has_labels(self) -> bool:
        """Whether every result has true labels (so robust accuracy is defined)."""
        return bool(self.results) and all(r.y is not None for r in self.results)

    @property
    def targeted(self) -> bool:
        """Whether the attack aimed at given target classes."""
        return any(r.targeted for r in self.results)

    def robust_accuracy(self) -> list[float]:
        """:meth:`AttackResult.robust_accuracy` at each budget, in order.

        Raises
        ------
        hoodwink.errors.MissingLabelsError
            When the sweep was run without true labels (a ``ValueError`` too).
        """
        if not self.has_labels:
            raise MissingLabelsError(
                "robust_accuracy() needs true labels; this sweep was run without y. Pass y "
                "to sweep(), or use success_rate()."
            )
        return [r.robust_accuracy() for r in self.results]

    def success_rate(self) -> list[float]:
        """:meth:`AttackResult.success_rate` at each budget, in order (nan where undefined)."""
        return [r.success_rate() for r in self.results]

    def _main_metric(self) -> tuple[str, list[float]]:
        """What the curve is about: robust accuracy when labels exist and it is untargeted."""
        if self.has_labels and not self.targeted:
            return "robust_accuracy", self.robust_accuracy()
        return "success_rate", self.success_rate()

    # ------------------------------------------------------------------ views
    def table(self) -> ResultTable:
        """One row per budget.

        Columns: ``eps``, ``robust_accuracy`` (None without labels),
        ``success_rate``, ``n``, ``median_norm_successful`` (None when no
        sample was fooled), ``queries_mean`` and ``time_s``.

        Returns
        -------
        ResultTable
            K rows, in budget order.
        """
        rows = []
        for e, s in zip(self.eps, self._summaries(), strict=True):
            rows.append((e, s.get("robust_accuracy"), s["success_rate"], s["n"],
                         s.get("median_norm_successful"), s["queries_mean"], s["time_s"]))
        return ResultTable(
            columns=("eps", "robust_accuracy", "success_rate", "n", "median_norm_successful",
                     "queries_mean", "time_s"),
            rows=tuple(rows),
        )

    def _summaries(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the curve, per-budget summaries and the environment.

        ``robust_accuracy`` is None when the sweep had no labels; NaN success
        rates are None.
        """
        return {
            "schema": CURVE_SCHEMA_VERSION,
            "attack": self.attack,
            "norm": self.norm,
            "targeted": self.targeted,
            "eps": list(self.eps),
            "robust_accuracy": (
                [_finite_or_none(v) for v in self.robust_accuracy()] if self.has_labels else None
            ),
            "success_rate": [_finite_or_none(v) for v in self.success_rate()],
            "results": self._summaries(),
            "environment": environment(),
        }

    def plot(self) -> bytes:
        """A PNG figure of the curve.

        Robust accuracy against eps, or the success rate when the sweep had no
        labels or was targeted. The x axis is in the norm's units; for L∞
        budgets all below 1 the top axis also shows them as k/255.

        Returns
        -------
        bytes
            The PNG file's contents (starts with ``b"\\x89PNG"``).

        Raises
        ------
        hoodwink.errors.MissingDependencyError
            When matplotlib is not installed.
        """
        try:
            # The Agg canvas directly, not pyplot: no global backend or figure state changes.
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise MissingDependencyError(
                "Curve.plot() needs matplotlib. Install it with: pip install 'hoodwink[images]' "
                "(or pip install matplotlib)."
            ) from exc
        name, values = self._main_metric()
        fig = Figure(figsize=(5.5, 3.6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot(self.eps, values, "o-")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(name.replace("_", " "))
        unit = _NORM_LABEL.get(self.norm, self.norm)
        ax.set_xlabel(f"eps ({unit} distance, input units)")
        ax.grid(True, alpha=0.3)
        title = self.attack if len(self.attack) <= 60 else self.attack[:57] + "..."
        if self.norm == "linf" and self.eps and all(0 <= e < 1 for e in self.eps):
            top = ax.secondary_xaxis("top")
            top.set_xticks(list(self.eps))
            top.set_xticklabels([f"{e * 255:.3g}/255" for e in self.eps], fontsize=8)
            top.set_xlabel("eps × 255", fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the curve to ``path`` (JSON) and every result's tensors to one safetensors file.

        The JSON record is :meth:`to_dict` plus each result's exact scalar
        fields and the name and sha256 of the tensor file (same stem,
        ".safetensors"), whose tensors are named ``"<k>/<field>"``.

        Parameters
        ----------
        path : str or Path
            The JSON file; ".json" is appended when it has no suffix.

        Returns
        -------
        Path
            The JSON file written.

        Raises
        ------
        hoodwink.errors.InputError
            When ``path`` ends in ".safetensors".
        hoodwink.errors.MissingDependencyError
            When the safetensors package is not installed.
        """
        rec = self.to_dict()
        rec["fields"] = [_exact_fields(r) for r in self.results]
        tensors = {}
        for k, r in enumerate(self.results):
            tensors.update(_tensors_of(r, prefix=f"{k}/"))
        return write_pair(path, rec, tensors, what="Curve")

    @classmethod
    def load(cls, path: str | Path) -> Curve:
        """Read a curve written by :meth:`save`; tensors are loaded on the CPU.

        Raises
        ------
        hoodwink.errors.InputError
            When a file is missing, the JSON is not a hoodwink curve of this
            schema version, or the tensor file's sha256 does not match.
        hoodwink.errors.MissingDependencyError
            When the safetensors package is not installed.
        """
        rec, tensors, json_path = read_pair(path, CURVE_SCHEMA_VERSION, what="Curve")
        fields, eps = rec.get("fields"), rec.get("eps")
        if (not isinstance(fields, list) or not isinstance(eps, list)
                or len(fields) != len(eps) or not isinstance(rec.get("norm"), str)
                or not isinstance(rec.get("attack"), str)):
            raise InputError(
                f"{json_path} is not a complete saved Curve: it needs 'eps', 'fields' (one "
                "per budget), 'norm' and 'attack'. Write it with Curve.save()."
            )
        results = tuple(_from_parts(f, tensors, prefix=f"{k}/", source=json_path)
                        for k, f in enumerate(fields))
        return cls(eps=tuple(eps), results=results, norm=rec["norm"], attack=rec["attack"])


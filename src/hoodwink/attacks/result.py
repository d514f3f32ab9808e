"""The one result record every attack returns: :class:`AttackResult`.

A result keeps: :meth:`AttackResult.save` writes a versioned JSON record and
the tensors beside it in a safetensors file, and :meth:`AttackResult.load`
reads them back exactly (same values, dtypes and shapes). ``print(result)``
shows one line; :meth:`AttackResult.table` shows one row per sample.

>>> import torch
>>> r = AttackResult(
...     x_adv=torch.zeros(2, 3), success=torch.tensor([True, False]),
...     clean_correct=torch.tensor([True, True]), pred_clean=torch.tensor([0, 1]),
...     pred_adv=torch.tensor([2, 1]), perturbation_norm=torch.tensor([0.978, 0.5]),
...     queries=torch.tensor([3, 3]), y=torch.tensor([0, 1]), target=None, eps=1.0,
...     norm="linf", attack="FGSM(norm='linf', seed=0)", seed=0, time_s=0.012)
>>> r
AttackResult(attack='FGSM', n=2, norm='linf', eps=1, targeted=False, success_rate=0.5, robust_accuracy=0.5, time_s=0.012)
>>> print(r.table())
index  y  target  pred_clean  pred_adv  success   norm  queries
    0  0       –           0         2      yes  0.978        3
    1  1       –           1         1       no    0.5        3
"""  # noqa: E501

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoodwink.attacks._store import read_pair, write_pair
from hoodwink.errors import InputError, MissingLabelsError
from hoodwink.reports import to_jsonable

__all__ = ["SCHEMA_VERSION", "AttackResult", "ResultTable", "environment"]

#: Version of the JSON layout written by :meth:`AttackResult.to_dict` and
#: :meth:`AttackResult.save`.
SCHEMA_VERSION = "hoodwink.attack_result/2"

#: The tensor fields of :class:`AttackResult`, in the order they are saved.
_TENSORS = ("x_adv", "success", "clean_correct", "pred_clean", "pred_adv",
            "perturbation_norm", "queries", "y", "target")
_OPTIONAL_TENSORS = ("y", "target")


# ---------------------------------------------------------------------- table
@dataclass(frozen=True, repr=False)
class ResultTable:
    """A small table of results: one row per sample, or one per budget of a curve.

    ``str(table)`` is aligned text for a terminal, :meth:`to_markdown` a
    Markdown table, :meth:`to_dicts` one dict per row. Missing values are
    None and show as "–".

    Attributes
    ----------
    columns : tuple of str, length C
        Column names.
    rows : tuple of tuples, each of length C
        Cell values: int, float, bool, str or None.

    >>> t = ResultTable(columns=("eps", "robust_accuracy"), rows=((0.1, 0.5), (0.2, None)))
    >>> print(t)
    eps  robust_accuracy
    0.1              0.5
    0.2                –
    >>> print(t.to_markdown())
    | eps | robust_accuracy |
    |---:|---:|
    | 0.1 | 0.5 |
    | 0.2 | – |
    >>> t.to_dicts()[1]
    {'eps': 0.2, 'robust_accuracy': None}
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise InputError(
                    f"Row {i} of the table has {len(row)} cells but there are "
                    f"{len(self.columns)} columns {self.columns}. Give one cell per column."
                )

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"ResultTable(columns={self.columns!r}, rows=<{len(self.rows)} rows>)"

    def __str__(self) -> str:
        cells = [list(self.columns)] + [[_cell(c) for c in row] for row in self.rows]
        widths = [max(len(r[j]) for r in cells) for j in range(len(self.columns))]
        return "\n".join(
            "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in cells
        )

    def to_markdown(self) -> str:
        """The table in Markdown (numbers right-aligned)."""
        lines = ["| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---:" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One ``{column: value}`` dict per row, values as stored (None for missing)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _cell(c: Any) -> str:
    if c is None:
        return "–"
    if isinstance(c, bool):
        return "yes" if c else "no"
    if isinstance(c, float):
        if math.isnan(c):
            return "–"
        return f"{c:.4g}"
    return str(c)


# ---------------------------------------------------------------------- result
@dataclass(frozen=True, repr=False)
class AttackResult:
    """What an attack produced, per sample, with the facts needed to judge it.

    ``success`` and ``pred_adv`` come from a fresh forward pass on ``x_adv``
    made by the attack base class after all projections, so they cannot
    disagree with the model.

    Attributes
    ----------
    x_adv : torch.Tensor, shape (N, ...)
        Adversarial inputs: same shape, dtype and device as the inputs, within
        the model bounds and the eps-ball (and on the model's grid if it has
        ``levels``).
    success : torch.Tensor of bool, shape (N,)
        Untargeted: ``pred_adv != y``. Targeted: ``pred_adv == target``.
        An untargeted sample the model already got wrong counts as a success
        with ``x_adv == x``.
    clean_correct : torch.Tensor of bool, shape (N,)
        ``pred_clean == y``; all False when no true labels were given.
    pred_clean, pred_adv : torch.Tensor of int64, shape (N,)
        Predictions on ``x`` and on ``x_adv``.
    perturbation_norm : torch.Tensor, shape (N,)
        ``‖x_adv − x‖`` in the attack's norm.
    queries : torch.Tensor of int64, shape (N,)
        Model evaluations (forward passes, with or without backward) spent on
        each sample.
    y : torch.Tensor or None
        True labels, when given.
    target : torch.Tensor or None
        Target labels for a targeted attack, else None.
    eps : float or None
        The budget; None for minimum-norm attacks.
    norm : str
        "linf", "l2" or "l1".
    attack : str
        The attack's repr: every parameter that shaped the result.
    seed : int or None
        The seed of the attack's local random generator.
    time_s : float
        Wall time of the attack call, in seconds.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    clean_correct: torch.Tensor
    pred_clean: torch.Tensor
    pred_adv: torch.Tensor
    perturbation_norm: torch.Tensor
    queries: torch.Tensor
    y: torch.Tensor | None
    target: torch.Tensor | None
    eps: float | None
    norm: str
    attack: str
    seed: int | None
    time_s: float

    @property
    def targeted(self) -> bool:
        """Whether the attack aimed at given target classes."""
        return self.target is not None

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    def __repr__(self) -> str:
        """One line: the attack's name, n, budget, rates and time (no tensors)."""
        parts = [f"attack={self.attack.split('(', 1)[0][:40]!r}", f"n={len(self)}",
                 f"norm={self.norm!r}", f"eps={_num(self.eps)}", f"targeted={self.targeted}",
                 f"success_rate={_num(self.success_rate())}"]
        if self.y is not None:
            parts.append(f"robust_accuracy={_num(self.robust_accuracy())}")
        parts.append(f"time_s={_num(self.time_s)}")
        return f"AttackResult({', '.join(parts)})"

    def robust_accuracy(self) -> float:
        """Fraction of *all* samples still classified correctly after the attack.

        ``mean(pred_adv == y)`` over every sample, so samples the model got
        wrong before the attack count as errors. This is the number to quote as
        "accuracy under attack at eps". Needs true labels.

        Raises
        ------
        hoodwink.errors.MissingLabelsError
            When the attack was run without true labels (a ``ValueError`` too).
        """
        if self.y is None:
            raise MissingLabelsError(
                "robust_accuracy() needs true labels; this attack was run without y. Pass "
                "y to the attack, or use success_rate()."
            )
        return _fraction(self.pred_adv == self.y)

    def success_rate(self) -> float:
        """Fraction of the samples the attack could act on where it succeeded.

        Untargeted: among samples classified correctly before the attack, the
        fraction whose prediction changed (``mean(success[clean_correct])``);
        samples already wrong are excluded, since there is nothing to attack.
        Targeted: among all samples, the fraction classified as their target.
        Returns ``nan`` when no sample qualifies.
        """
        if self.target is not None or self.y is None:
            return _fraction(self.success)
        return _fraction(self.success[self.clean_correct])

    def clean_accuracy(self) -> float:
        """Fraction of samples classified correctly before the attack.

        Raises
        ------
        hoodwink.errors.MissingLabelsError
            When the attack was run without true labels (a ``ValueError`` too).
        """
        if self.y is None:
            raise MissingLabelsError(
                "clean_accuracy() needs true labels; this attack was run without y. Pass y "
                "to the attack."
            )
        return _fraction(self.clean_correct)

    def median_norm_successful(self) -> float | None:
        """Median perturbation norm over the samples the attack fooled; None if none.

        Untargeted with labels, only samples classified correctly before the
        attack count (those already wrong are successes with a zero
        perturbation and would drag the median down); otherwise every
        successful sample counts. The value is in the dtype of
        ``perturbation_norm`` (usually float32), returned as the shortest
        decimal that reads back to it.
        """
        succ = self.success
        if self.target is None and self.y is not None:
            succ = succ & self.clean_correct
        if not bool(succ.any()):
            return None
        value: float | None = to_jsonable(self.perturbation_norm[succ].median())
        return value

    def summary(self) -> dict[str, Any]:
        """Aggregate figures (no per-sample arrays), as plain JSON numbers."""
        out: dict[str, Any] = {
            "attack": self.attack,
            "norm": self.norm,
            "eps": self.eps,
            "targeted": self.targeted,
            "n": len(self),
            "success_rate": _finite_or_none(self.success_rate()),
            "seed": self.seed,
            "time_s": round(self.time_s, 4),
            "queries_mean": float(self.queries.double().mean().item()) if len(self) else 0.0,
        }
        if self.y is not None:
            out["clean_accuracy"] = _finite_or_none(self.clean_accuracy())
            out["robust_accuracy"] = _finite_or_none(self.robust_accuracy())
        median = self.median_norm_successful()
        if median is not None:
            out["median_norm_successful"] = median
        return out

    def to_dict(self, *, per_sample: bool = True) -> dict[str, Any]:
        """A JSON-ready record: summary, environment and per-sample results.

        Numbers are plain: float32 values (norms) are written as the shortest
        decimal that reads back to the same float32, NaN as None.

        Parameters
        ----------
        per_sample : bool, default True
            Include per-sample arrays (labels, predictions, success, norms).
        """
        rec: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "summary": self.summary(),
            "environment": environment(),
        }
        if per_sample:
            rec["samples"] = {
                name: to_jsonable(getattr(self, name)) for name in (
                    "y", "target", "pred_clean", "pred_adv", "success", "perturbation_norm",
                    "queries")
            }
        return rec

    def table(self) -> ResultTable:
        """One row per sample: what the attack did to it.

        Columns: ``index``, ``y``, ``target`` (None when absent), ``pred_clean``,
        ``pred_adv``, ``success``, ``norm`` (the perturbation norm) and
        ``queries``.

        Returns
        -------
        ResultTable
            N rows; ``print(result.table())`` shows them aligned.
        """
        n = len(self)
        y = self.y.tolist() if self.y is not None else [None] * n
        tg = self.target.tolist() if self.target is not None else [None] * n
        cols = zip(range(n), y, tg, self.pred_clean.tolist(), self.pred_adv.tolist(),
                   self.success.tolist(), to_jsonable(self.perturbation_norm),
                   self.queries.tolist(), strict=True)
        return ResultTable(
            columns=("index", "y", "target", "pred_clean", "pred_adv", "success", "norm",
                     "queries"),
            rows=tuple(tuple(r) for r in cols),
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the result to ``path`` (JSON) and its tensors beside it (safetensors).

        The JSON record is :meth:`to_dict` plus the exact scalar fields and the
        name and sha256 of the tensor file, which has the same stem and the
        suffix ".safetensors". Tensors are saved from the CPU, in their own
        dtype, so :meth:`load` gives back an equal result. A missing parent
        folder is created; existing files are replaced.

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
            When ``path`` ends in ".safetensors" (that name is the tensor file's).
        hoodwink.errors.MissingDependencyError
            When the safetensors package is not installed.
        """
        rec = self.to_dict()
        rec["result"] = _exact_fields(self)
        return write_pair(path, rec, _tensors_of(self, prefix=""), what="AttackResult")

    @classmethod
    def load(cls, path: str | Path) -> AttackResult:
        """Read a result written by :meth:`save`; tensors are loaded on the CPU.

        Parameters
        ----------
        path : str or Path
            The JSON file; ".json" is appended when it has no suffix.

        Returns
        -------
        AttackResult
            Equal to the saved one: every tensor with the same values, dtype
            and shape, every scalar field the same.

        Raises
        ------
        hoodwink.errors.InputError
            When a file is missing, the JSON is not a hoodwink attack result
            of this schema version, or the tensor file's sha256 does not match
            the record.
        hoodwink.errors.MissingDependencyError
            When the safetensors package is not installed.
        """
        rec, tensors, json_path = read_pair(path, SCHEMA_VERSION, what="AttackResult")
        return _from_parts(rec.get("result"), tensors, prefix="", source=json_path)


# ---------------------------------------------------------------------- helpers
def _fraction(mask: torch.Tensor) -> float:
    """``mean(mask)`` as an exact float64 ratio of counts; nan for an empty mask."""
    n = int(mask.numel())
    return int(mask.sum().item()) / n if n else float("nan")


def _num(v: float | None) -> str:
    return "None" if v is None else f"{v:.4g}"


def _finite_or_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def environment() -> dict[str, str]:
    """Library and platform versions, recorded in every report."""
    from hoodwink import __version__

    return {
        "hoodwink": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _exact_fields(r: AttackResult) -> dict[str, Any]:
    """The scalar fields, unrounded: JSON writes a Python float exactly."""
    return {
        "eps": None if r.eps is None else float(r.eps),
        "norm": r.norm,
        "attack": r.attack,
        "seed": None if r.seed is None else int(r.seed),
        "time_s": float(r.time_s),
    }


def _tensors_of(r: AttackResult, prefix: str) -> dict[str, torch.Tensor]:
    """The tensor fields, contiguous, on the CPU and not sharing memory (as safetensors needs)."""
    out: dict[str, torch.Tensor] = {}
    for name in _TENSORS:
        t = getattr(r, name)
        if t is not None:
            out[prefix + name] = t.detach().to("cpu", copy=True).contiguous()
    return out


def _from_parts(fields: Any, tensors: dict[str, torch.Tensor], prefix: str,
                source: Path) -> AttackResult:
    """Rebuild a result from its exact fields and tensors; InputError if anything is missing."""
    keys = ("eps", "norm", "attack", "seed", "time_s")
    if not isinstance(fields, dict) or any(k not in fields for k in keys):
        raise InputError(
            f"{source} is not a complete saved result: its record lacks the fields "
            f"{', '.join(keys)}. Write it with AttackResult.save() or Curve.save()."
        )
    missing = [n for n in _TENSORS if n not in _OPTIONAL_TENSORS and prefix + n not in tensors]
    if missing:
        raise InputError(
            f"The tensor file of {source} lacks {', '.join(prefix + m for m in missing)}. "
            "Write it with AttackResult.save() or Curve.save()."
        )
    t = {n: tensors[prefix + n] for n in _TENSORS if n not in _OPTIONAL_TENSORS}
    _check_loaded(fields, t, tensors.get(prefix + "y"), tensors.get(prefix + "target"),
                  source)
    return AttackResult(
        x_adv=t["x_adv"], success=t["success"], clean_correct=t["clean_correct"],
        pred_clean=t["pred_clean"], pred_adv=t["pred_adv"],
        perturbation_norm=t["perturbation_norm"], queries=t["queries"],
        y=tensors.get(prefix + "y"), target=tensors.get(prefix + "target"),
        eps=fields["eps"], norm=fields["norm"], attack=fields["attack"], seed=fields["seed"],
        time_s=fields["time_s"],
    )


def _check_loaded(fields: dict[str, Any], t: dict[str, torch.Tensor], y: torch.Tensor | None,
                  target: torch.Tensor | None, source: Path) -> None:
    """Refuse a record whose fields or tensors have the wrong types or shapes.

    The sha256 only proves the tensor file is the one the JSON names; a record
    edited by hand (or written by something else) must still fail here, with
    InputError, rather than deep inside summary() or table().
    """
    def bad(what: str) -> InputError:
        return InputError(
            f"{source} is not a valid saved result: {what}. Write it with "
            "AttackResult.save() or Curve.save(), and do not edit the files by hand."
        )

    def real(v: Any, *, none_ok: bool = False) -> bool:
        if v is None:
            return none_ok
        return (isinstance(v, int | float) and not isinstance(v, bool)
                and math.isfinite(float(v)) and v >= 0)

    if not real(fields["eps"], none_ok=True):
        raise bad(f"'eps' is {fields['eps']!r}, not a number >= 0 or null")
    if fields["norm"] not in ("linf", "l2", "l1"):
        raise bad(f"'norm' is {fields['norm']!r}, not 'linf', 'l2' or 'l1'")
    if not isinstance(fields["attack"], str):
        raise bad(f"'attack' is {fields['attack']!r}, not a string")
    seed = fields["seed"]
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise bad(f"'seed' is {seed!r}, not an int >= 0 or null")
    if not real(fields["time_s"]):
        raise bad(f"'time_s' is {fields['time_s']!r}, not a number >= 0")
    x_adv = t["x_adv"]
    if x_adv.ndim < 2 or not x_adv.is_floating_point():
        raise bad(f"x_adv has shape {tuple(x_adv.shape)} and dtype {x_adv.dtype}, not a float "
                  "batch (N, ...)")
    n = x_adv.shape[0]
    kinds = {"success": "bool", "clean_correct": "bool", "pred_clean": "int",
             "pred_adv": "int", "queries": "int", "perturbation_norm": "float"}
    per_sample = {k: t[k] for k in kinds} | {"y": y, "target": target}
    for name, v in per_sample.items():
        if v is None:
            continue
        kind = kinds.get(name, "int")
        ok = (v.dtype == torch.bool if kind == "bool" else
              v.is_floating_point() if kind == "float" else
              not v.is_floating_point() and not v.is_complex() and v.dtype != torch.bool)
        if tuple(v.shape) != (n,) or not ok:
            raise bad(f"{name} has shape {tuple(v.shape)} and dtype {v.dtype}; expected a "
                      f"{kind} tensor of shape ({n},)")

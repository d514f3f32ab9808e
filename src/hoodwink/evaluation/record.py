"""The record of one robustness evaluation: :class:`Evaluation`.

:func:`hoodwink.evaluate` returns an :class:`Evaluation`; :meth:`Evaluation.save`
writes it as ``report.json`` (the layout below, schema
``"hoodwink.evaluation/1"``) plus ``report.safetensors`` beside it (the example
inputs and their adversarials), and :meth:`Evaluation.load` reads the pair back.
Renderers (``hoodwink.evaluation.render``, ``hoodwink report``) draw only from
this record, so the CLI, a notebook and CI show the same numbers.

Top-level keys of :meth:`Evaluation.to_dict` (see ``docs/evaluate.md``)::

    schema, created, hoodwink_version, environment, model, data, config,
    summary, curve, attacks, flags, samples, examples, timings

Robust accuracy at ``eps`` is the fraction of *all* n samples that are
classified correctly and for which no attack found an adversarial within
``eps``: ``#(clean_correct and min_norm > eps) / n``.

>>> ev = Evaluation.from_dict(example_record())
>>> ev.robust_accuracy
0.5
>>> Evaluation.from_dict(ev.to_dict()).to_dict() == ev.to_dict()
True
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hoodwink.attacks._store import (
    check_schema,
    companion_path,
    read_json,
    read_pair,
    read_tensors,
    write_pair,
)
from hoodwink.errors import InputError

__all__ = ["SCHEMA", "Evaluation", "example_record"]

#: The schema string of :meth:`Evaluation.to_dict` and ``report.json``.
SCHEMA = "hoodwink.evaluation/1"
_FAMILY = SCHEMA.split("/", 1)[0]
_VERSION = int(SCHEMA.split("/", 1)[1])

_log = logging.getLogger(__name__)

#: Top-level keys of the record and the JSON type each must have.
_KEYS: dict[str, type | tuple[type, ...]] = {
    "created": str,
    "hoodwink_version": str,
    "environment": dict,
    "model": dict,
    "data": dict,
    "config": dict,
    "summary": dict,
    "curve": list,
    "attacks": list,
    "flags": list,
    "samples": list,
    "examples": list,
    "timings": dict,
}


@dataclass(frozen=True, repr=False, eq=False)
class Evaluation:
    """The record of one robustness evaluation: JSON-ready parts plus example tensors.

    Every attribute but the two example tensors is plain JSON data, laid out
    as in ``docs/evaluate.md``; :meth:`to_dict` writes them under the keys of
    the same name, except :attr:`totals`, which is written as ``"summary"``
    (``summary()`` is the method that prints it).

    Attributes
    ----------
    created : str
        UTC time the evaluation finished, ISO 8601 (``"2026-11-30T20:01:02Z"``).
    hoodwink_version : str
        The library version that produced the record.
    environment : dict
        Library and platform versions (``hoodwink.attacks.result.environment()``).
    model : dict
        ``name, num_classes, input_shape, bounds, levels, output, class_names``.
    data : dict
        ``name, n, fingerprint`` (sha256 of the bytes of x and y).
    config : dict
        ``norm, eps`` (ascending grid), ``attacks`` (run order: name, repr,
        threat, minimum_norm), ``seed, batch_size, max_queries, checks``.
    totals : dict
        ``n, clean_correct, clean_accuracy, robust`` (one row per grid eps:
        ``eps, robust, robust_accuracy, ci95``), ``median_min_norm, time_s``.
    curve : list of dict
        ``{"eps", "robust_accuracy"}`` at eps 0, every distinct finite minimal
        norm and every grid eps, ascending.
    attacks : list of dict
        One row per (attack, eps) stage in run order: ``name, eps, attacked,
        broke, robust_after, time_s, queries, threat``.
    flags : list of dict
        Sanity flags raised: ``code, severity, title, message, evidence, doc``.
    samples : list of dict
        One per sample: ``index, label, pred_clean, clean_correct, min_norm,
        broken_by, pred_adv, robust`` (one bool per grid eps), ``queries``.
    examples : list of int
        Indices of the samples whose x and best x_adv are in the tensors.
    timings : dict
        ``total_s, checks_s, attacks_s``.
    x_examples, x_adv_examples : torch.Tensor or None, shape (k, ...)
        The example inputs and their best adversarial (x itself when none was
        found), in the order of :attr:`examples`; None when the record was
        loaded without its companion file.
    """

    created: str
    hoodwink_version: str
    environment: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    totals: dict[str, Any]
    curve: list[dict[str, Any]]
    attacks: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    examples: list[int]
    timings: dict[str, Any]
    x_examples: torch.Tensor | None = field(default=None)
    x_adv_examples: torch.Tensor | None = field(default=None)

    # ------------------------------------------------------------------ figures
    @property
    def eps(self) -> list[float]:
        """The eps grid, ascending."""
        return [float(e) for e in self.config["eps"]]

    @property
    def norm(self) -> str:
        """The threat model's norm: ``"linf"``, ``"l2"`` or ``"l1"``."""
        return str(self.config["norm"])

    @property
    def robust_accuracy(self) -> float:
        """Robust accuracy at the first (or only) grid eps.

        The fraction of all n samples that are classified correctly and that no
        attack broke within eps. :attr:`totals` ``["robust"]`` has it for every
        grid eps.
        """
        return float(self.totals["robust"][0]["robust_accuracy"])

    @property
    def clean_accuracy(self) -> float:
        """The fraction of samples the model classifies correctly without attack."""
        return float(self.totals["clean_accuracy"])

    @property
    def min_norms(self) -> list[float]:
        """Per-sample minimal adversarial norm found: inf where none was found, 0 where
        the sample is misclassified to begin with."""
        out = []
        for s in self.samples:
            if not s["clean_correct"]:
                out.append(0.0)
            else:
                out.append(math.inf if s["min_norm"] is None else float(s["min_norm"]))
        return out

    @property
    def flag_codes(self) -> list[str]:
        """The codes of the sanity flags raised, in record order."""
        return [str(f["code"]) for f in self.flags]

    def tensors(self) -> dict[str, torch.Tensor] | None:
        """The example tensors as the companion file holds them, or None when absent.

        Returns
        -------
        dict or None
            ``x`` and ``x_adv`` (shape (k, ...)) and ``index`` (int64, shape (k,)),
            the sample indices of :attr:`examples`.
        """
        if self.x_examples is None:
            return None
        adv = self.x_examples if self.x_adv_examples is None else self.x_adv_examples
        return {"x": self.x_examples, "x_adv": adv,
                "index": torch.tensor([int(i) for i in self.examples], dtype=torch.int64)}

    def robust_accuracy_at(self, eps: float) -> float:
        """Robust accuracy at any ``eps``, read from the per-sample minimal norms.

        Parameters
        ----------
        eps : float
            A perturbation budget (not necessarily on the grid).

        Returns
        -------
        float
            ``#(clean_correct and min_norm > eps) / n``; an upper bound on the
            true robust accuracy, like every attack-based figure.
        """
        n = len(self.samples)
        if n == 0:
            return 0.0
        return sum(1 for m in self.min_norms if m > eps) / n

    def __repr__(self) -> str:
        grid = ", ".join(f"{r['eps']:.4g}: {r['robust_accuracy']:.4g}"
                         for r in self.totals["robust"])
        return (f"Evaluation(model={self.model.get('name')!r}, n={self.totals['n']}, "
                f"norm={self.norm!r}, clean_accuracy={self.clean_accuracy:.4g}, "
                f"robust_accuracy={{{grid}}}, flags={self.flag_codes!r})")

    def summary(self) -> str:
        """A text summary for people: robust accuracy per eps, each stage, the flags.

        Returns
        -------
        str
            Aligned text, several lines.
        """
        from hoodwink.attacks.result import ResultTable

        t = self.totals
        lines = [
            f"model {self.model.get('name')}  data {self.data.get('name')}  n={t['n']}  "
            f"norm={self.norm}  clean accuracy {t['clean_accuracy']:.4f} "
            f"({t['clean_correct']}/{t['n']})",
        ]
        rows = tuple((r["eps"], r["robust"], r["robust_accuracy"],
                      f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]") for r in t["robust"])
        lines.append(str(ResultTable(columns=("eps", "robust", "robust_accuracy", "ci95"),
                                     rows=rows)))
        if t.get("median_min_norm") is not None:
            lines.append(f"median minimal {self.norm} norm: {t['median_min_norm']:.4g}")
        if self.attacks:
            lines.append("")
            stage_rows = tuple(
                (a["name"], "all" if a["eps"] is None else a["eps"], a["attacked"], a["broke"],
                 a["robust_after"], a["queries"], round(float(a["time_s"]), 2))
                for a in self.attacks)
            lines.append(str(ResultTable(
                columns=("attack", "eps", "attacked", "broke", "robust_after", "queries",
                         "time_s"), rows=stage_rows)))
        lines.append("")
        if self.flags:
            for f in self.flags:
                lines.append(f"[{f['severity']}] {f['code']}: {f['message']} (see {f['doc']})")
        elif self.config.get("checks", True):
            lines.append("sanity checks: no flags raised")
        else:
            lines.append("sanity checks: not run (checks=False)")
        lines.append(f"time {float(self.timings.get('total_s', 0.0)):.1f} s")
        return "\n".join(lines)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (schema ``"hoodwink.evaluation/1"``), a deep copy.

        Returns
        -------
        dict
            Plain JSON types only; ``json.dumps(..., allow_nan=False)`` accepts it.
        """
        rec: dict[str, Any] = {"schema": SCHEMA}
        for key in _KEYS:
            value = self.totals if key == "summary" else getattr(self, key)
            rec[key] = copy.deepcopy(value)
        return rec

    @classmethod
    def from_dict(cls, rec: Any, *, x_examples: torch.Tensor | None = None,
                  x_adv_examples: torch.Tensor | None = None) -> Evaluation:
        """Build an :class:`Evaluation` from a record written by :meth:`to_dict`.

        Parameters
        ----------
        rec : dict
            The record (e.g. ``json.load`` of ``report.json``); a ``"tensors"``
            entry written by :meth:`save` is ignored.
        x_examples, x_adv_examples : torch.Tensor, optional
            The example tensors, shape (k, ...) with k = ``len(rec["examples"])``.

        Returns
        -------
        Evaluation

        Raises
        ------
        hoodwink.errors.InputError
            When ``rec`` is not an evaluation record, has another (e.g. newer)
            schema version, or lacks a key or has one of the wrong type.
        """
        if not isinstance(rec, dict):
            raise InputError(
                f"An evaluation record must be a dict (the JSON object of report.json); got "
                f"{type(rec).__name__}. Pass json.load() of the file, or use Evaluation.load(path)."
            )
        got = rec.get("schema")
        if not isinstance(got, str) or not got.startswith(_FAMILY + "/"):
            raise InputError(
                f"This is not a hoodwink evaluation record: its schema is {got!r}, expected "
                f"{SCHEMA!r}. Pass the report.json written by hoodwink evaluate or "
                "Evaluation.save()."
            )
        if got != SCHEMA:
            version = got.split("/", 1)[1]
            newer = version.isdigit() and int(version) > _VERSION
            fix = ("It was written by a newer hoodwink; upgrade hoodwink "
                   "(pip install -U hoodwink) to read it." if newer else
                   "Run the evaluation again with this version of hoodwink.")
            raise InputError(
                f"The evaluation record has schema {got!r}, but this version of hoodwink "
                f"({_version()}) reads {SCHEMA!r}. {fix}"
            )
        for key, kind in _KEYS.items():
            if key not in rec:
                raise InputError(
                    f"The evaluation record has no {key!r} entry: it is incomplete or was "
                    "edited. Write it again with Evaluation.save() or hoodwink evaluate."
                )
            if not isinstance(rec[key], kind):
                want = kind.__name__ if isinstance(kind, type) else "/".join(
                    k.__name__ for k in kind)
                raise InputError(
                    f"The {key!r} entry of the evaluation record must be a JSON "
                    f"{'object' if want == 'dict' else 'array' if want == 'list' else want}; "
                    f"got {type(rec[key]).__name__}. Write it again with Evaluation.save()."
                )
        for key in ("n", "clean_correct", "clean_accuracy", "robust"):
            if key not in rec["summary"]:
                raise InputError(
                    f"The 'summary' entry of the evaluation record has no {key!r}. Write it "
                    "again with Evaluation.save()."
                )
        for key in ("norm", "eps", "attacks"):
            if key not in rec["config"]:
                raise InputError(
                    f"The 'config' entry of the evaluation record has no {key!r}. Write it "
                    "again with Evaluation.save()."
                )
        k = len(rec["examples"])
        for name, t in (("x_examples", x_examples), ("x_adv_examples", x_adv_examples)):
            if t is not None and (not isinstance(t, torch.Tensor) or t.ndim < 1
                                  or t.shape[0] != k):
                raise InputError(
                    f"{name} must be a tensor of shape (k, ...) with k = {k} (one per entry "
                    f"of 'examples'); got {getattr(t, 'shape', type(t).__name__)}."
                )
        parts = {key: copy.deepcopy(rec[key]) for key in _KEYS}
        totals = parts.pop("summary")
        return cls(totals=totals, x_examples=x_examples, x_adv_examples=x_adv_examples,
                   **parts)

    def save(self, path: str | Path) -> Path:
        """Write the record to ``path`` (JSON) and the example tensors beside it.

        The companion ``<stem>.safetensors`` holds ``x`` and ``x_adv`` (shape
        (k, ...)) and ``index`` (int64, the sample indices of :attr:`examples`);
        the JSON names it with its sha256. A missing parent folder is created;
        existing files are replaced.

        Parameters
        ----------
        path : str or Path
            The JSON file (e.g. ``out/report.json``); ".json" is appended when it
            has no suffix.

        Returns
        -------
        Path
            The JSON file written.

        Raises
        ------
        hoodwink.errors.ConfigError
            When the path cannot be written.
        hoodwink.errors.MissingDependencyError
            When the safetensors package is not installed.
        """
        held = self.tensors()
        tensors = {"index": torch.tensor([int(i) for i in self.examples], dtype=torch.int64)}
        if held is not None:
            tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in held.items()}
        return write_pair(path, self.to_dict(), tensors, what="Evaluation")

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        """Read a record written by :meth:`save` (or ``hoodwink evaluate``).

        When the companion ``.safetensors`` file is absent the JSON alone is
        read, and the example tensors are None (renderers then skip the
        example images).

        Parameters
        ----------
        path : str or Path
            The JSON file; ".json" is appended when it has no suffix.

        Returns
        -------
        Evaluation

        Raises
        ------
        hoodwink.errors.InputError
            When the file is missing, is not JSON, is not an evaluation record
            of this schema version, or its companion file does not match it.
        """
        p = Path(path)
        if p.suffix == "":
            p = p.with_name(p.name + ".json")
        if not p.is_file():  # read_pair says so, in the words every load uses
            read_pair(p, SCHEMA, what="Evaluation")
        raw = read_json(p, "Pass the report.json that Evaluation.save() or hoodwink evaluate "
                           "wrote.")
        companion = companion_path(p, raw)
        if companion is None or not companion.is_file():
            if companion is not None:
                _log.info("%s: the companion file %s is missing; loading the record "
                          "without example tensors", p, companion)
            return cls.from_dict(raw)
        check_schema(p, raw, SCHEMA, "Evaluation")
        tensors = read_tensors(p, raw, "Evaluation")
        x = tensors.get("x")
        return cls.from_dict(raw, x_examples=x,
                             x_adv_examples=tensors.get("x_adv") if x is not None else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Evaluation):
            return NotImplemented
        return self.to_dict() == other.to_dict() and all(
            (a is None and b is None) or (a is not None and b is not None and a.shape == b.shape
                                          and bool(torch.equal(a, b)))
            for a, b in ((self.x_examples, other.x_examples),
                         (self.x_adv_examples, other.x_adv_examples)))

    __hash__ = None  # type: ignore[assignment]


def _version() -> str:
    from hoodwink import __version__

    return __version__


def example_record() -> dict[str, Any]:
    """A small, valid evaluation record (two samples, one eps), for docs and tests.

    Returns
    -------
    dict
        A record of schema ``"hoodwink.evaluation/1"``.
    """
    return {
        "schema": SCHEMA,
        "created": "2026-11-30T20:01:02Z",
        "hoodwink_version": "0.1.0",
        "environment": {"hoodwink": "0.1.0"},
        "model": {"name": "toy", "num_classes": 2, "input_shape": [3], "bounds": [0.0, 1.0],
                  "levels": None, "output": "logits", "class_names": None},
        "data": {"name": "toy", "n": 2, "fingerprint": "0" * 64},
        "config": {"norm": "linf", "eps": [0.1],
                   "attacks": [{"name": "pgd", "repr": "PGD(norm='linf', seed=0)",
                                "threat": "white-box", "minimum_norm": False}],
                   "seed": 0, "batch_size": 2, "max_queries": 5000, "checks": True},
        "summary": {"n": 2, "clean_correct": 2, "clean_accuracy": 1.0,
                    "robust": [{"eps": 0.1, "robust": 1, "robust_accuracy": 0.5,
                                "ci95": [0.0945, 0.9055]}],
                    "median_min_norm": 0.05, "time_s": 0.01},
        "curve": [{"eps": 0.0, "robust_accuracy": 1.0}, {"eps": 0.05, "robust_accuracy": 0.5},
                  {"eps": 0.1, "robust_accuracy": 0.5}],
        "attacks": [{"name": "pgd", "eps": 0.1, "attacked": 2, "broke": 1, "robust_after": 1,
                     "time_s": 0.01, "queries": 40, "threat": "white-box"}],
        "flags": [],
        "samples": [
            {"index": 0, "label": 0, "pred_clean": 0, "clean_correct": True, "min_norm": 0.05,
             "broken_by": "pgd", "pred_adv": 1, "robust": [False], "queries": 20},
            {"index": 1, "label": 1, "pred_clean": 1, "clean_correct": True, "min_norm": None,
             "broken_by": None, "pred_adv": None, "robust": [True], "queries": 20},
        ],
        "examples": [0],
        "timings": {"total_s": 0.01, "checks_s": 0.0, "attacks_s": 0.01},
    }

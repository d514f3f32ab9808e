"""The transfer study's records: one cell per mode, budget, row and column.

:class:`TransferStudy` is what :func:`~hoodwink.studies.transfer.transfer_study`
returns; :meth:`TransferStudy.to_dict` is its JSON record and
:meth:`TransferStudy.from_dict` rebuilds it from that record, which is how the
report is drawn from the record alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from hoodwink.errors import ConfigError

__all__ = [
    "ATTACK_NAMES",
    "DEFINITIONS",
    "NOISE",
    "SCHEMA",
    "TransferCell",
    "TransferMode",
    "TransferStudy",
    "format_eps",
]

SCHEMA = "hoodwink.transfer/1"

TransferMode = Literal["untargeted", "targeted"]
CellKind = Literal["white-box", "transfer", "noise"]

#: Row name of the random-sign noise baseline in every matrix.
NOISE = "noise"

#: Attack names :func:`transfer_study` builds itself.
ATTACK_NAMES: tuple[str, ...] = ("fgsm", "pgd")

#: What each rate means, stored in every record and printed in every report.
DEFINITIONS: dict[str, str] = {
    "label": (
        "Each sample's reference label per model is the true label y when labels are given, "
        "otherwise that model's own clean prediction; a model is clean-correct on a sample "
        "when its clean prediction equals that label."
    ),
    "untargeted": (
        "Untargeted transfer rate S->T: among samples that S and T both classify correctly "
        "and on which the attack succeeded against S, the fraction that T also misclassifies."
    ),
    "targeted": (
        "Targeted transfer rate S->T: among samples that S and T both classify correctly, "
        "that T does not already assign to the target class, and on which the attack made S "
        "predict the target, the fraction that T also classifies as the target."
    ),
    "white-box": (
        "Diagonal (T = S): among samples S classifies correctly, the fraction on which the "
        "attack succeeded against S (untargeted: any other class; targeted: the target)."
    ),
    "noise": (
        "Noise baseline: x + eps * s with independent random signs s (clipped to the bounds, "
        "snapped to the model's grid), one draw shared by all models; on the pair's pool "
        "(diagonal: S-correct samples) without the condition on the source attack, the "
        "fraction T misclassifies (untargeted) or assigns to the target (targeted)."
    ),
    "unconditional": (
        "Unconditional rate: among samples S and T both classify correctly (targeted: and T "
        "does not already predict the target), the fraction T gets wrong (hits the target) on "
        "the source's adversarial examples, whether or not they fooled S."
    ),
}





# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class TransferCell:
    """One cell of a transfer matrix.

    Attributes
    ----------
    mode : {"untargeted", "targeted"}
    eps : float
        L∞ budget in raw input units.
    attack : str
        Row: an attack name (``"fgsm"``, ``"pgd"``, ...) or ``"noise"``.
    model : str
        Column: the model the examples were evaluated on.
    kind : {"white-box", "transfer", "noise"}
        White-box on the source column of an attack row, transfer on the other
        columns, noise on the noise row.
    rate : float or None
        ``n_fooled / n_eligible``; None when ``n_eligible`` is 0. See
        :data:`DEFINITIONS` for what counts as eligible and fooled.
    n_eligible : int
        Samples in the rate's denominator.
    n_fooled : int
        Samples in its numerator.
    n_pool : int
        Samples both models classify correctly (targeted: and the column model
        does not already predict the target); for the diagonal, source-correct
        samples.
    rate_unconditional : float or None
        Fooled fraction of the whole pool, ignoring whether the attack fooled
        the source; None when the pool is empty.
    """

    mode: TransferMode
    eps: float
    attack: str
    model: str
    kind: CellKind
    rate: float | None
    n_eligible: int
    n_fooled: int
    n_pool: int
    rate_unconditional: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "mode": self.mode, "eps": self.eps, "eps_255": round(self.eps * 255, 4),
            "attack": self.attack, "model": self.model, "kind": self.kind, "rate": self.rate,
            "n_eligible": self.n_eligible, "n_fooled": self.n_fooled, "n_pool": self.n_pool,
            "rate_unconditional": self.rate_unconditional,
        }


@dataclass(frozen=True)
class TransferStudy:
    """Result of :func:`transfer_study`: every cell of every transfer matrix.

    Attributes
    ----------
    source : str
        Name of the source model (the first column of every matrix).
    models : tuple of str
        Column order: the source, then the target models.
    eps : tuple of float
    attacks : tuple of str
        Attack row names, in order; the noise row comes after them.
    attack_reprs : dict of str to str
        Each attack's repr (every parameter that shaped its examples).
    modes : tuple of {"untargeted", "targeted"}
    cells : tuple of TransferCell
    clean : dict
        Per model: ``n_correct`` and ``accuracy`` (against the true labels, or
        agreement with the source's clean predictions when unlabelled).
    n : int
        Number of samples.
    labelled : bool
        Whether true labels were given.
    seed : int
    samples : dict
        Per-sample data: reference labels and clean predictions per model, the
        target classes, and for each run the source's success and every
        model's prediction on the examples.
    time_s : float
        Wall time of the study.
    data : str
        What the samples were (free text recorded in the report).
    """

    source: str
    models: tuple[str, ...]
    eps: tuple[float, ...]
    attacks: tuple[str, ...]
    attack_reprs: dict[str, str]
    modes: tuple[TransferMode, ...]
    cells: tuple[TransferCell, ...]
    clean: dict[str, dict[str, Any]]
    n: int
    labelled: bool
    seed: int
    samples: dict[str, Any] = field(repr=False)
    time_s: float = 0.0
    data: str = ""

    @property
    def rows(self) -> tuple[str, ...]:
        """Row names of every matrix: the attacks, then ``"noise"``."""
        return (*self.attacks, NOISE)

    def cell(self, mode: TransferMode, eps: float, attack: str, model: str) -> TransferCell:
        """The cell for one mode, budget, row and column.

        Raises
        ------
        ConfigError
            No such cell (the message lists what exists).
        """
        for c in self.cells:
            if (c.mode == mode and math.isclose(c.eps, eps, rel_tol=1e-9, abs_tol=1e-12)
                    and c.attack == attack and c.model == model):
                return c
        raise ConfigError(
            f"No transfer cell for mode={mode!r}, eps={eps:g}, attack={attack!r}, "
            f"model={model!r}. Modes: {list(self.modes)}; eps: {list(self.eps)}; rows: "
            f"{list(self.rows)}; models: {list(self.models)}."
        )

    def rate(self, mode: TransferMode, eps: float, attack: str, model: str) -> float | None:
        """Shortcut for ``cell(...).rate``."""
        return self.cell(mode, eps, attack, model).rate

    def matrix(self, mode: TransferMode, eps: float) -> np.ndarray:
        """The matrix for one mode and budget.

        Returns
        -------
        numpy.ndarray, shape (len(rows), len(models)), float
            ``rate`` of each cell, NaN where undefined. Rows are :attr:`rows`
            (attacks, then noise), columns :attr:`models` (source first).
        """
        out = np.full((len(self.rows), len(self.models)), np.nan)
        for i, r in enumerate(self.rows):
            for j, m in enumerate(self.models):
                v = self.cell(mode, eps, r, m).rate
                if v is not None:
                    out[i, j] = v
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TransferStudy:
        """Rebuild a study from its record (:meth:`to_dict`, or the JSON file read back).

        Everything a report needs is in the record, so a study rendered from
        its saved JSON reads exactly like the one that ran.

        Raises
        ------
        ConfigError
            The record is not a transfer record (wrong or missing ``schema``).
        """
        if record.get("schema") != SCHEMA:
            raise ConfigError(
                f"Not a transfer record: schema {record.get('schema')!r}, expected {SCHEMA!r}."
            )
        cfg = record["config"]
        cells = tuple(
            TransferCell(c["mode"], float(c["eps"]), c["attack"], c["model"], c["kind"],
                         c["rate"], c["n_eligible"], c["n_fooled"], c["n_pool"],
                         c["rate_unconditional"])
            for c in record["cells"]
        )
        return cls(
            source=cfg["source"], models=(cfg["source"], *cfg["targets"]),
            eps=tuple(float(e) for e in cfg["eps"]), attacks=tuple(cfg["attacks"]),
            attack_reprs=dict(cfg["attacks"]), modes=tuple(cfg["modes"]), cells=cells,
            clean={k: dict(v) for k, v in record["clean"].items()}, n=cfg["n"],
            labelled=cfg["labelled"], seed=cfg["seed"], samples=record.get("samples") or {},
            time_s=record["time_s"], data=cfg["data"],
        )

    def to_dict(self, *, per_sample: bool = True) -> dict[str, Any]:
        """The versioned JSON record (without environment; :class:`Report` adds it)."""
        matrices = {
            mode: {
                _eps_key(e): {
                    "rows": list(self.rows),
                    "columns": list(self.models),
                    "rate": [[_nan_none(v) for v in row] for row in self.matrix(mode, e)],
                    "n_eligible": [[self.cell(mode, e, r, m).n_eligible for m in self.models]
                                   for r in self.rows],
                }
                for e in self.eps
            }
            for mode in self.modes
        }
        rec: dict[str, Any] = {
            "schema": SCHEMA,
            "definitions": dict(DEFINITIONS),
            "config": {
                "source": self.source,
                "targets": list(self.models[1:]),
                "eps": list(self.eps),
                "eps_255": [round(e * 255, 4) for e in self.eps],
                "attacks": dict(self.attack_reprs),
                "modes": list(self.modes),
                "seed": self.seed,
                "n": self.n,
                "labelled": self.labelled,
                "data": self.data,
            },
            "clean": self.clean,
            "matrices": matrices,
            "cells": [c.to_dict() for c in self.cells],
            "time_s": round(self.time_s, 3),
        }
        if per_sample:
            rec["samples"] = self.samples
        return rec


# ---------------------------------------------------------------------- formatting
def format_eps(e: float) -> str:
    """A budget as people write it: ``0.1`` stays ``0.1``; ``8/255`` is shown as ``8/255``."""
    short = f"{e:g}"
    k = e * 255
    if len(short) > 5 and round(k) > 0 and abs(k - round(k)) < 1e-6:
        return f"{round(k):d}/255"
    return f"{e:.4g}"


def _eps_key(e: float) -> str:
    return f"{e:.6g}"


def _nan_none(v: float) -> float | None:
    return None if v != v else float(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"

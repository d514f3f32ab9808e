"""A resumable run store for :func:`hoodwink.evaluate`: one SQLite file in WAL mode.

An evaluation is a sequence of *units* (one attack, at one eps, on one batch of
samples). With ``store=path`` each unit's per-sample results are written in
one transaction as soon as it finishes, so a run killed at any point (even by
SIGKILL or a power cut after a commit) loses at most the unit in progress.
Running the same evaluation again with the same store reads the finished units
back instead of computing them, and gives the same numbers: every unit's seed
is derived from the evaluation's seed and the unit's key.

Tables
------
``meta(key, value)``
    JSON values: ``store`` (this layout's version), ``config`` (the run's
    fingerprint: model, data, norm, eps grid, attack reprs, seed, batch_size,
    max_queries, checks), ``runs`` (how many processes opened the store),
    and cached check results.
``units(key, seq, attack, eps, batch, seed, run, time_s, indices, success, norm,
pred_adv, queries, shape, x_adv)``
    One row per finished unit: the sample indices it attacked and, per sample,
    success, perturbation norm, adversarial prediction and queries (JSON
    arrays), and ``x_adv`` as a float32 blob; ``run`` is the process (1, 2,
    ...) that computed it.

Only the standard library's :mod:`sqlite3` is used.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from hoodwink.errors import ConfigError, InternalError

__all__ = ["STORE_SCHEMA", "RunStore", "Unit", "data_fingerprint", "model_fingerprint"]

#: Version of the store's layout, kept in its ``meta`` table.
STORE_SCHEMA = "hoodwink.evaluation.store/1"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS units (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
    "attack TEXT NOT NULL, eps REAL, batch INTEGER NOT NULL, seed TEXT NOT NULL, "
    "run INTEGER NOT NULL, time_s REAL NOT NULL, indices TEXT NOT NULL, success TEXT NOT NULL, "
    "norm TEXT NOT NULL, pred_adv TEXT NOT NULL, queries TEXT NOT NULL, shape TEXT NOT NULL, "
    "x_adv BLOB NOT NULL)",
)


@dataclass(frozen=True)
class Unit:
    """The per-sample results of one finished unit (one attack, one eps, one batch).

    Attributes
    ----------
    key : str
        Identifies the unit within a run (stage, attack, eps, batch).
    seq : int
        Order in which the unit ran.
    attack : str
        The attack's name.
    eps : float or None
        The budget; None for a minimum-norm stage.
    batch : int
        Batch number within the stage.
    seed : int
        The seed the attack ran with.
    indices : list of int
        The sample indices attacked, in order.
    success, norm, pred_adv, queries : list
        Per sample: whether an adversarial was found, its perturbation norm,
        the model's prediction on it, the queries spent.
    x_adv : torch.Tensor, float32, shape (len(indices), ...)
        What the attack returned.
    time_s : float
        Seconds the unit took when it was computed.
    run : int
        Which process computed it (1 for the first to open the store).
    """

    key: str
    seq: int
    attack: str
    eps: float | None
    batch: int
    seed: int
    indices: list[int]
    success: list[bool]
    norm: list[float]
    pred_adv: list[int]
    queries: list[int]
    x_adv: torch.Tensor
    time_s: float
    run: int = 0


def _sha(h: Any, t: torch.Tensor) -> None:
    c = t.detach().to("cpu").contiguous()
    h.update(f"{c.dtype}{tuple(c.shape)}".encode())
    if c.dtype == torch.bfloat16:
        c = c.to(torch.float32)
    h.update(c.numpy().tobytes())


def model_fingerprint(model: Any) -> str:
    """A sha256 over what identifies a model cheaply.

    Class name, number of classes, bounds, levels and, for a
    :class:`~hoodwink.TorchClassifier`, its module's class and every parameter
    and buffer (and its preprocessing's). Other adapters contribute their
    ``repr``.

    Parameters
    ----------
    model : Classifier

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    h.update(str(model.num_classes).encode())
    lo, hi = model.bounds
    _sha(h, lo)
    _sha(h, hi)
    h.update(str(model.levels).encode())
    for part in (getattr(model, "module", None), getattr(model, "preprocessing", None)):
        if isinstance(part, torch.nn.Module):
            h.update(type(part).__qualname__.encode())
            for name, t in part.state_dict().items():
                h.update(name.encode())
                _sha(h, t)
        elif part is not None:
            h.update(type(part).__qualname__.encode())
    if getattr(model, "module", None) is None:
        h.update(repr(model).encode())
    return h.hexdigest()


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """The sha256 of the bytes (with dtype and shape) of ``x`` and ``y``.

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    _sha(h, x)
    _sha(h, y)
    return h.hexdigest()


def _fix(path: Path) -> str:
    return f"Pass another --store path (store=...), or delete {path} to start afresh."


class RunStore:
    """An open run store; use as a context manager.

    Parameters
    ----------
    path : str or Path
        The SQLite file; created (with its folder) when missing.
    config : dict
        The run's configuration fingerprint (JSON-ready). A new store records
        it; an existing one must hold the same, else :class:`ConfigError`.

    Raises
    ------
    ConfigError
        The file is not a run store, cannot be opened or written, or holds a
        run of another configuration (the message names the settings that
        differ and the fix).
    """

    def __init__(self, path: str | Path, config: dict[str, Any]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise ConfigError(
                    f"The run store {self.path} is a folder; give a file path such as "
                    f"{self.path / 'run.sqlite'}."
                )
            # Autocommit mode: every transaction below is explicit (BEGIN ... COMMIT).
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"Cannot open the run store {self.path}: {exc}. {_fix(self.path)}"
                              ) from exc
        try:
            self._open(config)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigError(
                f"{self.path} is not a hoodwink run store (SQLite says: {exc}). {_fix(self.path)}"
            ) from exc
        except BaseException:
            self._db.close()
            raise

    def _open(self, config: dict[str, Any]) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql in _TABLES:
                db.execute(sql)
            stored = self._meta("store")
            if stored is None:
                self._set_meta("store", STORE_SCHEMA)
                self._set_meta("config", config)
                self._set_meta("runs", 0)
            elif stored != STORE_SCHEMA:
                raise ConfigError(
                    f"The run store {self.path} has layout {stored!r}; this hoodwink writes "
                    f"{STORE_SCHEMA!r}. {_fix(self.path)}"
                )
            else:
                old = self._meta("config")
                if old != config:
                    raise ConfigError(_difference(self.path, old, config))
            self.run = int(self._meta("runs") or 0) + 1
            self._set_meta("runs", self.run)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         (key, json.dumps(value, allow_nan=False)))

    def get(self, key: str) -> Any:
        """A cached JSON value (e.g. check results), or None."""
        return self._meta("cache:" + key)

    def put(self, key: str, value: Any) -> None:
        """Cache a JSON value, in its own transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._set_meta("cache:" + key, value)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ units
    def unit(self, key: str) -> Unit | None:
        """The finished unit ``key``, or None when it has not run."""
        row = self._db.execute(
            "SELECT key, seq, attack, eps, batch, seed, run, time_s, indices, success, norm, "
            "pred_adv, queries, shape, x_adv FROM units WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        shape = tuple(json.loads(row[13]))
        x_adv = torch.from_numpy(np.frombuffer(row[14], dtype=np.float32).reshape(shape).copy())
        return Unit(key=row[0], seq=int(row[1]), attack=row[2], eps=row[3], batch=int(row[4]),
                    seed=int(row[5]), run=int(row[6]), time_s=float(row[7]),
                    indices=json.loads(row[8]), success=json.loads(row[9]),
                    norm=json.loads(row[10]), pred_adv=json.loads(row[11]),
                    queries=json.loads(row[12]), x_adv=x_adv)

    def add(self, unit: Unit) -> None:
        """Write a finished unit, in one transaction.

        Raises
        ------
        InternalError
            When the unit is already stored (it would have been computed twice).
        """
        x = unit.x_adv.detach().to("cpu", torch.float32).contiguous().numpy()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO units (key, seq, attack, eps, batch, seed, run, time_s, indices, "
                "success, norm, pred_adv, queries, shape, x_adv) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (unit.key, unit.seq, unit.attack, unit.eps, unit.batch, str(unit.seed),
                 self.run, unit.time_s, json.dumps(unit.indices), json.dumps(unit.success),
                 json.dumps(unit.norm, allow_nan=False), json.dumps(unit.pred_adv),
                 json.dumps(unit.queries), json.dumps(list(x.shape)), x.tobytes()))
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self._db.execute("ROLLBACK")
            raise InternalError(
                f"Unit {unit.key!r} is already in the run store {self.path}; a unit was "
                "computed twice. This is a hoodwink bug, please report it."
            ) from exc
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def count(self) -> int:
        """How many units are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM units").fetchone()[0])

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the connection (the file stays)."""
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _difference(path: Path, old: Any, new: dict[str, Any]) -> str:
    """The message for a store of another configuration: which settings differ."""
    if not isinstance(old, dict):
        return f"The run store {path} holds no readable configuration. {_fix(path)}"
    keys = sorted(set(old) | set(new), key=lambda k: (list(new).index(k) if k in new else 99, k))
    parts = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if k in ("model", "data"):
            parts.append(f"{k} (another {k}: its fingerprint differs)")
        else:
            parts.append(f"{k} (stored {_short(a)}, now {_short(b)})")
    return (f"The run store {path} holds an evaluation with another configuration; these "
            f"settings differ: {'; '.join(parts)}. {_fix(path)}")


def _short(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."

"""Train linear classifiers over raw pixels, with the essay's sanity checks built in.

:func:`train_linear` fits ``z = W x + b`` (one weight row, a *template*, per
class) with minibatch SGD and momentum, minimising the mean data loss plus
``0.5 * weight_decay * ||W||^2`` (Caffe's ``weight_decay`` convention; the bias
is not decayed). The data loss is the softmax cross-entropy or, with
``kind="svm"``, the multi-class hinge loss ``sum_{j != y} max(0, z_j - z_y + 1)``
(Weston and Watkins, 1999).

The result is a :class:`LinearModel`, which the library's attacks accept
through :meth:`LinearModel.as_classifier`, and a :class:`TrainingLog` with the
loss curve and every :class:`~hoodwink.studies.linear.sanity.SanityFlag` that fired.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hoodwink.errors import ConfigError, InputError, MissingDependencyError, ShapeError
from hoodwink.models.torch import TorchClassifier
from hoodwink.progress import ProgressCallback
from hoodwink.studies.linear.sanity import (
    LossKind,
    SanityFlag,
    check_exploding_loss,
    check_initial_loss,
    check_regularization_share,
    expected_initial_loss,
)

__all__ = ["LinearModel", "ProgressCallback", "TrainingLog", "train_linear"]

_log = logging.getLogger(__name__)

_FORMAT = "hoodwink.linear_model/1"


@dataclass(frozen=True)
class LinearModel:
    """A linear classifier ``z = W x + b`` over flattened raw inputs.

    Attributes
    ----------
    weight : torch.Tensor, shape (C, D)
        One row per class: the class *template*. ``D = prod(input_shape)``.
    bias : torch.Tensor, shape (C,)
    input_shape : tuple of int
        Shape of one input, e.g. (1, 28, 28) or (3, 64, 64) (channels first).
    kind : {"softmax", "svm"}
        The loss the model was trained with.
    class_names : tuple of str or None
    """

    weight: torch.Tensor
    bias: torch.Tensor
    input_shape: tuple[int, ...]
    kind: LossKind = "softmax"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(
                f"LinearModel needs weight of shape (C, D) and bias of shape (C,); got "
                f"{tuple(self.weight.shape)} and {tuple(self.bias.shape)}."
            )
        if int(np.prod(self.input_shape)) != self.weight.shape[1]:
            raise ShapeError(
                f"input_shape {self.input_shape} has {int(np.prod(self.input_shape))} values but "
                f"the weight has {self.weight.shape[1]} columns."
            )
        if self.class_names is not None and len(self.class_names) != self.weight.shape[0]:
            raise ShapeError(
                f"class_names has {len(self.class_names)} entries for {self.weight.shape[0]} "
                "classes."
            )

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.weight.shape[0])

    @property
    def input_dim(self) -> int:
        """Input dimension D."""
        return int(self.weight.shape[1])

    def name(self, c: int) -> str:
        """Human-readable name of class ``c``."""
        return self.class_names[c] if self.class_names is not None else str(c)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``W x + b`` for a batch of shape (N, *input_shape) or (N, D): (N, C)."""
        return _flat(x, self.input_dim) @ self.weight.T + self.bias

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of :meth:`logits`, shape (N, C)."""
        return torch.softmax(self.logits(x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, shape (N,), int64."""
        return self.logits(x).argmax(dim=1)

    def templates(self) -> torch.Tensor:
        """The weights reshaped to images: shape (C, *input_shape)."""
        return self.weight.reshape((self.num_classes, *self.input_shape))

    def as_module(self) -> nn.Sequential:
        """A fresh ``nn.Sequential(nn.Flatten(), nn.Linear(D, C))`` with a copy of the weights."""
        lin = nn.Linear(self.input_dim, self.num_classes)
        with torch.no_grad():
            lin.weight.copy_(self.weight)
            lin.bias.copy_(self.bias)
        return nn.Sequential(nn.Flatten(), lin).eval()

    def as_classifier(
        self, *, bounds: tuple[float, float] = (0.0, 1.0), batch_size: int = 256
    ) -> TorchClassifier:
        """Wrap as a :class:`hoodwink.TorchClassifier` so FGSM, PGD and others run on it.

        Parameters
        ----------
        bounds : (float, float), default (0, 1)
            The box of valid raw inputs (the model was trained on pixels in [0, 1]).
        batch_size : int, default 256

        Examples
        --------
        >>> import torch, hoodwink
        >>> from hoodwink.studies.linear import LinearModel
        >>> m = LinearModel(torch.eye(2, 4), torch.zeros(2), (1, 2, 2))
        >>> r = hoodwink.FGSM()(m.as_classifier(), torch.full((1, 1, 2, 2), 0.5), target=1, eps=0.1)
        >>> bool(r.success[0])
        True
        """
        return TorchClassifier(
            self.as_module(), bounds=bounds, batch_size=batch_size,
            class_names=self.class_names, num_classes=self.num_classes,
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as a ``.safetensors`` file (never pickle).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
            The file written.
        """
        st = _safetensors()
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": _FORMAT,
            "kind": self.kind,
            "input_shape": json.dumps(list(self.input_shape)),
            "class_names": json.dumps(list(self.class_names) if self.class_names else None),
        }
        st.save_file(
            {"weight": self.weight.detach().contiguous().cpu().float(),
             "bias": self.bias.detach().contiguous().cpu().float()},
            str(p), metadata=meta,
        )
        return p

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Read a model written by :meth:`save` (safetensors only).

        Raises
        ------
        InputError
            If the file is missing or is not a hoodwink linear model.
        """
        st = _safetensors()
        p = Path(path)
        if not p.is_file():
            raise InputError(f"No model file at {p}. Train one with 'hoodwink linear train'.")
        try:
            with st.safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error types
            raise InputError(f"{p} is not a readable safetensors file: {exc}") from exc
        if meta.get("format") != _FORMAT or set(tensors) != {"weight", "bias"}:
            raise InputError(
                f"{p} is not a hoodwink linear model (format {meta.get('format')!r}, tensors "
                f"{sorted(tensors)}); it must come from LinearModel.save."
            )
        names = json.loads(meta["class_names"])
        kind = meta["kind"]
        if kind not in ("softmax", "svm"):
            raise InputError(f"{p} records an unknown model kind {kind!r}.")
        return cls(
            weight=tensors["weight"], bias=tensors["bias"],
            input_shape=tuple(int(v) for v in json.loads(meta["input_shape"])),
            kind=kind, class_names=tuple(names) if names is not None else None,
        )


def _safetensors() -> Any:
    try:
        return importlib.import_module("safetensors.torch")
    except ImportError as exc:
        raise MissingDependencyError(
            "Saving and loading linear models needs the 'safetensors' package. Install it with: "
            "pip install 'hoodwink[mnist]'"
        ) from exc


def _flat(x: torch.Tensor, dim: int) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] != dim:
        raise ShapeError(
            f"Inputs have {flat.shape[1]} values each but the model expects {dim}."
        )
    return flat.to(torch.float32)


@dataclass
class TrainingLog:
    """What happened while training: hyperparameters, loss curve, sanity flags.

    Attributes
    ----------
    config : dict
        The hyperparameters of :func:`train_linear`.
    expected_initial_loss : float
        ``ln C`` (softmax) or ``C - 1`` (SVM).
    initial_loss : float
        Mean data loss over the training set before the first update.
    input_norm : float
        Root-mean-square L2 norm of the training inputs.
    epochs : list of dict
        Per epoch: ``epoch``, ``data_loss`` and ``reg_loss`` (over the whole
        training set after the epoch), ``train_accuracy``, ``val_accuracy``
        (None without validation data) and cumulative ``time_s``.
    step_losses : list of float
        Minibatch data loss after every optimisation step.
    flags : list of SanityFlag
    diverged : bool
        Whether training stopped early because the loss exploded.
    time_s : float
        Wall time of training.
    """

    config: dict[str, Any]
    expected_initial_loss: float
    initial_loss: float
    input_norm: float
    epochs: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    flags: list[SanityFlag] = field(default_factory=list)
    diverged: bool = False
    time_s: float = 0.0

    @property
    def reg_share(self) -> float:
        """Regularisation loss as a share of the total loss after the last epoch."""
        if not self.epochs:
            return 0.0
        e = self.epochs[-1]
        total = e["data_loss"] + e["reg_loss"]
        return float(e["reg_loss"] / total) if total > 0 else 0.0

    def plateau_epoch(self, tol: float = 0.01) -> int | None:
        """First epoch whose training loss is within ``tol`` (relative) of the final loss."""
        if not self.epochs:
            return None
        final = self.epochs[-1]["data_loss"] + self.epochs[-1]["reg_loss"]
        for e in self.epochs:
            if e["data_loss"] + e["reg_loss"] <= final * (1 + tol):
                return int(e["epoch"])
        return int(self.epochs[-1]["epoch"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        plateau = self.plateau_epoch()
        plateau_time = (
            self.epochs[plateau - 1]["time_s"] if plateau is not None and self.epochs else None
        )
        return {
            "config": self.config,
            "expected_initial_loss": self.expected_initial_loss,
            "initial_loss": self.initial_loss if math.isfinite(self.initial_loss) else None,
            "input_norm": self.input_norm,
            "epochs": self.epochs,
            "step_losses": [v if math.isfinite(v) else None for v in self.step_losses],
            "flags": [f.to_dict() for f in self.flags],
            "diverged": self.diverged,
            "reg_share": self.reg_share,
            "plateau_epoch": plateau,
            "plateau_time_s": plateau_time,
            "time_s": self.time_s,
        }


def _check_positive(name: str, value: Any, *, allow_zero: bool = False,
                    integer: bool = False) -> None:
    ok_type = (isinstance(value, int | np.integer) if integer else
               isinstance(value, int | float | np.floating | np.integer))
    ok = ok_type and not isinstance(value, bool) and math.isfinite(float(value)) and (
        value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "an int" if integer else "a float"
        rng = "[0, inf)" if allow_zero else ("[1, inf)" if integer else "(0, inf)")
        raise ConfigError(
            f"The '{name}' parameter of train_linear must be {kind} in {rng}. Got {value!r}."
        )


def data_loss(logits: torch.Tensor, y: torch.Tensor, kind: LossKind) -> torch.Tensor:
    """Mean data loss: softmax cross-entropy or multi-class hinge (margin 1)."""
    if kind == "softmax":
        return nn.functional.cross_entropy(logits, y)
    own = logits.gather(1, y[:, None])
    hinge = (logits - own + 1.0).clamp_min(0.0)
    hinge = hinge.scatter(1, y[:, None], 0.0)
    return hinge.sum(dim=1).mean()


def _evaluate(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
              kind: LossKind, chunk: int = 8192) -> tuple[float, float]:
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            z = x[i : i + chunk] @ w.T + b
            yy = y[i : i + chunk]
            total += float(data_loss(z, yy, kind)) * yy.shape[0]
            correct += int((z.argmax(dim=1) == yy).sum())
    n = max(1, x.shape[0])
    return total / n, correct / n


def _as_xy(x: torch.Tensor, y: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InputError(f"{name}: x and y must be torch tensors.")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ShapeError(f"{name}: x must be a non-empty batch (N, ...); got {tuple(x.shape)}.")
    if y.shape != (x.shape[0],):
        raise ShapeError(
            f"{name}: y has shape {tuple(y.shape)} but x has {x.shape[0]} samples; y must have "
            f"shape ({x.shape[0]},)."
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ShapeError(f"{name}: y has dtype {y.dtype}; labels must be integer class indices.")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name}: x contains NaN or infinite values.")
    return x.reshape(x.shape[0], -1).to(torch.float32), y.to(torch.int64)


def train_linear(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind: LossKind = "softmax",
    init_std: float = 1e-3,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    epochs: int = 30,
    batch_size: int = 128,
    momentum: float = 0.9,
    seed: int = 0,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    warn: bool = True,
    progress: ProgressCallback | None = None,
) -> tuple[LinearModel, TrainingLog]:
    """Train a softmax classifier or linear SVM over raw inputs, checking sanity.

    Parameters
    ----------
    x : torch.Tensor, shape (N, *input_shape)
        Raw training inputs (pixels in [0, 1]); flattened to (N, D).
    y : torch.Tensor of int, shape (N,)
        Labels in 0..C-1.
    kind : {"softmax", "svm"}, default "softmax"
        Cross-entropy of a softmax, or the multi-class hinge loss.
    init_std : float > 0, default 1e-3
        Std of the Gaussian initialisation of ``W`` (the bias starts at 0).
    lr : float > 0, default 1e-3
        SGD learning rate.
    weight_decay : float >= 0, default 1e-3
        Coefficient of ``0.5 * weight_decay * ||W||^2`` added to the mean data loss.
    epochs : int >= 1, default 30
    batch_size : int >= 1, default 128
    momentum : float in [0, 1), default 0.9
    seed : int >= 0, default 0
        Seeds the initialisation and the minibatch order (local generator).
    num_classes : int, optional
        Defaults to ``len(class_names)`` or ``y.max() + 1``.
    class_names : sequence of str, optional
    x_val, y_val : torch.Tensor, optional
        Validation data, evaluated after every epoch.
    warn : bool, default True
        Issue a :class:`~hoodwink.errors.SanityWarning` subclass for each flag
        (flags are recorded in the log either way).
    progress : callable, optional
        ``progress(epoch, epochs, message)`` (:mod:`hoodwink.progress`) after every
        epoch; the message gives the mean loss.

    Returns
    -------
    model : LinearModel
    log : TrainingLog

    Raises
    ------
    ConfigError
        For an invalid hyperparameter.
    InputError
        For mismatched or non-integer labels, or labels outside 0..C-1.

    Notes
    -----
    The sanity checks (see :mod:`hoodwink.studies.linear.sanity`) run before the first
    update (initial loss against ``ln C``), after every step (explosion: training
    stops and the last healthy epoch's weights are kept) and at the end
    (regularisation share).

    Examples
    --------
    >>> import torch
    >>> from hoodwink.studies.linear import train_linear
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(200, 1, 4, 4, generator=g)
    >>> y = (x[:, 0, 0, 0] > 0.5).long()
    >>> model, log = train_linear(x, y, lr=0.05, epochs=20, weight_decay=1e-2)
    >>> log.flags, round(log.initial_loss, 2)
    ([], 0.69)
    """
    if kind not in ("softmax", "svm"):
        raise ConfigError(f"The 'kind' parameter of train_linear must be 'softmax' or 'svm'. "
                          f"Got {kind!r}.")
    _check_positive("init_std", init_std)
    _check_positive("lr", lr)
    _check_positive("weight_decay", weight_decay, allow_zero=True)
    _check_positive("epochs", epochs, integer=True)
    _check_positive("batch_size", batch_size, integer=True)
    _check_positive("seed", seed, allow_zero=True, integer=True)
    _check_positive("momentum", momentum, allow_zero=True)
    if momentum >= 1:
        raise ConfigError(f"The 'momentum' parameter of train_linear must be in [0, 1). "
                          f"Got {momentum!r}.")
    input_shape = tuple(int(s) for s in x.shape[1:]) if isinstance(x, torch.Tensor) else ()
    xf, yf = _as_xy(x, y, "train_linear")
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(yf.max()) + 1
    if num_classes < 2:
        raise InputError(
            f"train_linear needs at least 2 classes; the labels give {num_classes}."
        )
    if bool(((yf < 0) | (yf >= num_classes)).any()):
        raise InputError(f"y has labels outside 0..{num_classes - 1}.")
    xv: torch.Tensor | None = None
    yv: torch.Tensor | None = None
    if x_val is not None and y_val is not None:
        xv, yv = _as_xy(x_val, y_val, "validation data")
        if xv.shape[1] != xf.shape[1]:
            raise ShapeError(f"x_val has {xv.shape[1]} values per sample; x has {xf.shape[1]}.")
    n, d = xf.shape
    gen = torch.Generator().manual_seed(int(seed))
    w = (torch.randn(num_classes, d, generator=gen) * init_std).requires_grad_(True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.SGD(
        [{"params": [w], "weight_decay": weight_decay}, {"params": [b], "weight_decay": 0.0}],
        lr=lr, momentum=momentum,
    )
    config = {
        "kind": kind, "init_std": init_std, "lr": lr, "weight_decay": weight_decay,
        "epochs": epochs, "batch_size": batch_size, "momentum": momentum, "seed": seed,
        "num_classes": num_classes, "input_shape": list(input_shape), "n_train": n,
        "n_val": None if xv is None else int(xv.shape[0]),
    }
    expected = expected_initial_loss(kind, num_classes)
    input_norm = float(xf.pow(2).sum(dim=1).mean().sqrt())
    t0 = time.perf_counter()
    initial_loss, _ = _evaluate(w.detach(), b.detach(), xf, yf, kind)
    log = TrainingLog(config=config, expected_initial_loss=expected, initial_loss=initial_loss,
                      input_norm=input_norm)

    def flag(f: SanityFlag | None) -> None:
        if f is None:
            return
        log.flags.append(f)
        _log.info("sanity flag %s: %s", f.check, f.message)
        if warn:
            warnings.warn(f.message, f.warning_class, stacklevel=3)

    flag(check_initial_loss(initial_loss, kind=kind, num_classes=num_classes,
                            init_std=init_std, input_norm=input_norm))
    state = _FitState(good_w=w.detach().clone(), good_b=b.detach().clone())
    with _few_threads(batch_size * d * num_classes):
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=gen)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                loss = data_loss(xf[idx] @ w.T + b, yf[idx], kind)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                state.step += 1
                log.step_losses.append(float(loss.detach()))
                exploded = check_exploding_loss(log.step_losses, initial_loss=initial_loss,
                                                expected=expected, lr=lr, step=state.step)
                if exploded is not None:
                    flag(exploded)
                    log.diverged = True
                    break
            if log.diverged:
                break
            with torch.no_grad():
                dl, acc = _evaluate(w.detach(), b.detach(), xf, yf, kind)
                rl = 0.5 * weight_decay * float(w.detach().pow(2).sum())
                val_acc = None if xv is None or yv is None else _evaluate(
                    w.detach(), b.detach(), xv, yv, kind)[1]
            if not (math.isfinite(dl) and math.isfinite(rl)):
                flag(check_exploding_loss([math.inf], initial_loss=initial_loss,
                                          expected=expected, lr=lr, step=state.step))
                log.diverged = True
                break
            state.good_w, state.good_b = w.detach().clone(), b.detach().clone()
            log.epochs.append({
                "epoch": epoch, "data_loss": dl, "reg_loss": rl, "train_accuracy": acc,
                "val_accuracy": val_acc, "time_s": time.perf_counter() - t0,
            })
            _log.info("epoch %d/%d: loss %.4f (reg %.3g) train acc %.4f", epoch, epochs, dl,
                      rl, acc)
            if progress is not None:
                progress(epoch, epochs, f"loss {dl + rl:.4g}")
    if log.epochs:
        last = log.epochs[-1]
        flag(check_regularization_share(last["reg_loss"], last["data_loss"],
                                        weight_decay=weight_decay, input_dim=d))
    log.time_s = time.perf_counter() - t0
    model = LinearModel(
        weight=state.good_w, bias=state.good_b, input_shape=input_shape or (d,), kind=kind,
        class_names=tuple(class_names) if class_names is not None else None,
    )
    return model, log


@dataclass
class _FitState:
    good_w: torch.Tensor
    good_b: torch.Tensor
    step: int = 0


#: Below this many multiply-adds per step, one thread is faster than several:
#: thread hand-off costs more than the tiny matrix product it splits.
_SMALL_STEP = 50_000_000


@contextlib.contextmanager
def _few_threads(work_per_step: int) -> Iterator[None]:
    """Use one intra-op thread for small problems; restore the setting afterwards."""
    before = torch.get_num_threads()
    if work_per_step >= _SMALL_STEP or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

"""Train linear classifiers over raw pixels, with the essay's sanity checks built in.

:func:`train_linear` fits ``z = W x + b`` (one weight row, a *template*, per
class) with minibatch SGD and momentum, minimising the mean data loss plus
``0.5 * weight_decay * ||W||^2`` (Caffe's ``weight_decay`` convention; the bias
is not decayed). The data loss is the softmax cross-entropy or, with
``kind="svm"``, the multi-class hinge loss ``sum_{j != y} max(0, z_j - z_y + 1)``
(Weston and Watkins, 1999).

The result is a :class:`~hoodwink.studies.linear.model.LinearModel` (defined
in :mod:`hoodwink.studies.linear.model`, re-exported here), which the
library's attacks accept through its ``as_classifier``, and a
:class:`TrainingLog` with the loss curve and every
:class:`~hoodwink.studies.linear.sanity.SanityFlag` that fired.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hoodwink._validation import check_choice, check_int, check_real
from hoodwink.errors import InputError, ShapeError
from hoodwink.progress import ProgressCallback
from hoodwink.studies.linear.model import LinearModel
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
    if x.is_complex() or x.dtype == torch.bool:
        raise ShapeError(f"{name}: x has dtype {x.dtype}; inputs must be real numbers.")
    if x[0].numel() == 0:
        raise ShapeError(f"{name}: x has no values per sample (shape {tuple(x.shape)}).")
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
    owner = "train_linear"
    kind = check_choice(owner, "kind", kind, ("softmax", "svm"))
    init_std = check_real(owner, "init_std", init_std, low=0, closed="neither")
    lr = check_real(owner, "lr", lr, low=0, closed="neither")
    weight_decay = check_real(owner, "weight_decay", weight_decay, low=0)
    epochs = check_int(owner, "epochs", epochs, low=1, high=MAX_EPOCHS)
    batch_size = check_int(owner, "batch_size", batch_size, low=1)
    # torch.Generator.manual_seed takes exactly the 64-bit unsigned range.
    seed = check_int(owner, "seed", seed, low=0, high=2**64 - 1)
    momentum = check_real(owner, "momentum", momentum, low=0, high=1, closed="left")
    input_shape = tuple(int(s) for s in x.shape[1:]) if isinstance(x, torch.Tensor) else ()
    xf, yf = _as_xy(x, y, "train_linear")
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
            raise InputError(f"class_names must be a sequence of str; got {class_names!r}.")
        class_names = tuple(class_names)
    num_classes = check_int(owner, "num_classes", num_classes, low=2, allow_none=True)
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else int(yf.max()) + 1
    if num_classes < 2:
        raise InputError(
            f"train_linear needs at least 2 classes; the labels give {num_classes}."
        )
    if class_names is not None and len(class_names) != num_classes:
        raise InputError(
            f"class_names has {len(class_names)} names for {num_classes} classes; give one "
            "name per class."
        )
    if num_classes * xf.shape[1] > MAX_WEIGHTS:
        source = f"the labels go up to {int(yf.max())}"
        raise InputError(
            f"train_linear would need a {num_classes} x {xf.shape[1]} weight matrix "
            f"({num_classes * xf.shape[1]:,} numbers, over the limit of {MAX_WEIGHTS:,}); "
            f"{source}. Check num_classes and the labels (classes are 0..C-1), or reduce the "
            "input size."
        )
    _check_labels(yf, num_classes, "y")
    xv: torch.Tensor | None = None
    yv: torch.Tensor | None = None
    if (x_val is None) != (y_val is None):
        raise InputError("x_val and y_val come together: give both validation inputs and "
                         "their labels, or neither.")
    if x_val is not None and y_val is not None:
        xv, yv = _as_xy(x_val, y_val, "validation data")
        if xv.shape[1] != xf.shape[1]:
            raise ShapeError(f"x_val has {xv.shape[1]} values per sample; x has {xf.shape[1]}.")
        _check_labels(yv, num_classes, "y_val")
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
                if progress is not None:
                    progress(epoch, epochs, f"diverged at step {state.step}")
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
                if progress is not None:
                    progress(epoch, epochs, f"diverged at step {state.step}")
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
        class_names=class_names,
    )
    return model, log


def _check_labels(y: torch.Tensor, num_classes: int, name: str) -> None:
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        wrong = sorted({int(v) for v in y[bad][:5]})
        raise InputError(
            f"{name} has labels outside 0..{num_classes - 1} (e.g. {wrong}); labels must be "
            f"class indices of the {num_classes} classes."
        )


@dataclass
class _FitState:
    good_w: torch.Tensor
    good_b: torch.Tensor
    step: int = 0


#: Below this many multiply-adds per step, one thread is faster than several:
#: thread hand-off costs more than the tiny matrix product it splits.
_SMALL_STEP = 50_000_000

#: Largest weight matrix (classes x inputs) train_linear builds: 1 GiB of float32.
MAX_WEIGHTS = 2**28
#: Largest number of epochs (a typo such as 2**31 is an error, not a run that never ends).
MAX_EPOCHS = 1_000_000


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

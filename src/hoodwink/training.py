"""Adversarial training (Madry et al., ICLR 2018): train a network on its own PGD examples.

:func:`adversarial_train` trains a *copy* of a PyTorch module on adversarial
examples that hoodwink's own :class:`~hoodwink.PGD` finds, batch by batch,
through a :class:`~hoodwink.TorchClassifier` that carries the input domain
(bounds, quantisation levels, preprocessing). It returns a
:class:`TrainingResult`: the trained copy, a per-epoch history and a
JSON-ready record; :meth:`TrainingResult.evaluate` measures clean and
PGD-robust accuracy on held-out data, and :meth:`TrainingResult.save` writes
the weights (safetensors) with the record beside them.

Robust training solves the saddle-point problem of Madry et al.,
``min_θ E[max_{‖δ‖ ≤ eps} L(θ, x + δ, y)]``: the inner maximum is
approximated by PGD with a random start, and the outer minimum by Adam on the
examples PGD returns.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hoodwink._validation import (
    check_choice,
    check_int,
    check_real,
    check_seed,
    reject,
)
from hoodwink.attacks._norms import NormName, range_diameter
from hoodwink.attacks.pgd import MAX_STEPS, PGD
from hoodwink.errors import ConfigError, InputError, InternalError, MissingDependencyError
from hoodwink.losses import LossName
from hoodwink.models.torch import BoundLike, TorchClassifier, check_device
from hoodwink.progress import ProgressCallback, as_callback

__all__ = ["RECORD_SCHEMA", "EpochStats", "TrainingResult", "adversarial_train"]

_log = logging.getLogger(__name__)

#: Schema of the JSON record written by :meth:`TrainingResult.save`.
RECORD_SCHEMA = "hoodwink.training.adversarial/1"

_OWNER = "adversarial_train"
_NORMS: tuple[NormName, ...] = get_args(NormName)
#: Largest seed handed to the inner PGD of one batch (any int64 is fine).
_BATCH_SEED_MAX = 2**62


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of :func:`adversarial_train` did.

    Attributes
    ----------
    epoch : int
        1-based.
    eps : float
        The budget at the epoch's last batch (smaller during the warm-up).
    loss : float
        Mean cross-entropy of the training steps, over the epoch's samples.
    clean_accuracy : float
        Fraction of the epoch's samples the model classified correctly just
        before its step on them (eval mode, unperturbed inputs).
    adversarial_accuracy : float or None
        Among the samples that were attacked, the fraction still classified
        correctly on the PGD example they were trained on: the training
        robust accuracy. None when no sample was attacked (``clean_fraction``
        of 1, or eps 0).
    time_s : float
        Wall-clock seconds of the epoch.
    """

    epoch: int
    eps: float
    loss: float
    clean_accuracy: float
    adversarial_accuracy: float | None
    time_s: float

    def to_dict(self) -> dict[str, Any]:
        """The stats as a JSON-ready dict."""
        return {"epoch": self.epoch, "eps": self.eps, "loss": self.loss,
                "clean_accuracy": self.clean_accuracy,
                "adversarial_accuracy": self.adversarial_accuracy, "time_s": self.time_s}


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of :func:`adversarial_train`.

    Attributes
    ----------
    module : torch.nn.Module
        The trained copy, in eval mode (the caller's module is untouched).
    history : tuple of EpochStats
        One entry per epoch.
    config : dict
        The call's settings, JSON-ready (budget, norm, steps, optimiser,
        seed, number of training samples, the module's class).
    time_s : float
        Wall-clock seconds of the whole run.
    preprocessing : callable or None
        The preprocessing the module was trained behind (applied inside the
        adapter), or None.
    """

    module: nn.Module
    history: tuple[EpochStats, ...]
    config: dict[str, Any]
    time_s: float
    preprocessing: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None

    def __repr__(self) -> str:
        c = self.config
        last = self.history[-1] if self.history else None
        tail = ""
        if last is not None:
            adv = last.adversarial_accuracy
            tail = (f", clean_accuracy={last.clean_accuracy:.4g}, adversarial_accuracy="
                    f"{'None' if adv is None else f'{adv:.4g}'}")
        return (f"TrainingResult({type(self.module).__name__}, eps={c['eps']:g}, "
                f"norm={c['norm']!r}, steps={c['steps']}, epochs={len(self.history)}"
                f"{tail}, time_s={self.time_s:.4g})")

    def classifier(self, *, device: str | torch.device | None = None,
                   batch_size: int = 256) -> TorchClassifier:
        """The trained module as a :class:`~hoodwink.TorchClassifier` with its training domain.

        Parameters
        ----------
        device : str or torch.device, optional
            Where to run (default: where the module is).
        batch_size : int, default 256
            Largest batch sent to the module at once.

        Returns
        -------
        TorchClassifier
            With the bounds, levels and preprocessing used in training.
        """
        lo, hi = self.config["bounds"]
        return TorchClassifier(self.module, bounds=(lo, hi), levels=self.config["levels"],
                               preprocessing=self.preprocessing, device=device,
                               batch_size=batch_size)

    def evaluate(
        self,
        x: torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray,
        *,
        eps: float | Sequence[float] | None = None,
        steps: int = 40,
        loss: LossName = "ce",
        restarts: int = 1,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Clean and PGD-robust accuracy of the trained module, e.g. on held-out data.

        Robust accuracy is the fraction of *all* samples still classified
        correctly after the attack (samples already wrong count as errors),
        as in :meth:`hoodwink.AttackResult.robust_accuracy`.

        Parameters
        ----------
        x : tensor (N, ...)
            Raw inputs within the training bounds (on the grid when the
            training had ``levels``).
        y : int tensor (N,)
            True labels.
        eps : float or sequence of float, optional
            Budget(s) in the training norm; default the training ``eps``.
        steps : int, default 40
            PGD steps (Madry et al. evaluate MNIST with 40 and 100).
        loss : {"ce", "margin", "dlr"}, default "ce"
            The attacker's loss; "margin" (Carlini and Wagner) sees through
            saturated softmax outputs.
        restarts : int, default 1
        seed : int, default 0
            Seed of PGD's random starts.
        progress : callable, optional
            ``progress(done, total, message)`` over the whole sweep.

        Returns
        -------
        dict
            ``{"n", "clean_accuracy", "attack", "eps": [...],
            "robust_accuracy": [...]}``, JSON-ready, one robust accuracy per
            budget.

        Raises
        ------
        ConfigError
            An invalid budget, ``steps``, ``loss``, ``restarts`` or ``seed``.
        InputError
            ``x`` or ``y`` unusable (see :meth:`hoodwink.PGD.__call__`).
        """
        budgets: list[Any]
        if eps is None:
            budgets = [float(self.config["eps"])]
        elif isinstance(eps, Sequence | np.ndarray) and not isinstance(eps, str):
            budgets = list(eps)
        else:
            budgets = [eps]  # a single budget; the attack checks it
        attack = PGD(norm=self.config["norm"], steps=steps, loss=loss, restarts=restarts,
                     seed=seed)
        clf = self.classifier()
        curve = attack.sweep(clf, x, y, eps=budgets, progress=progress)
        clean = float(curve[0].clean_correct.double().mean()) if len(curve[0].x_adv) else 0.0
        return {"n": int(curve[0].x_adv.shape[0]), "clean_accuracy": clean,
                "attack": repr(attack), "eps": [float(e) for e in budgets],
                "robust_accuracy": [float(r) for r in curve.robust_accuracy()]}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record: schema, config, history, time and library versions."""
        from hoodwink import __version__

        return {"schema": RECORD_SCHEMA, "config": dict(self.config),
                "history": [h.to_dict() for h in self.history], "time_s": self.time_s,
                "versions": {"hoodwink": __version__,
                             "torch": torch.__version__.split("+")[0]}}

    def save(self, path: str | Path, *, evaluation: Mapping[str, Any] | None = None,
             run: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
        """Write the weights (safetensors) and the JSON record beside them.

        Parameters
        ----------
        path : str or Path
            The weights file, e.g. ``out/robust.safetensors``; the record goes
            to the same name with the suffix ``.json``. Missing folders are
            created. The weights load with
            ``hoodwink attack --model PATH --arch package.module:Class``.
        evaluation : mapping, optional
            Held-out figures to store in the record under ``"evaluation"``
            (e.g. what :meth:`evaluate` returned).
        run : mapping, optional
            Provenance to store under ``"run"`` (the command line's network
            spec and data source).

        Returns
        -------
        (Path, Path)
            The weights file and the record.

        Raises
        ------
        ConfigError
            ``path`` does not end in ``.safetensors``, or cannot be written.
        MissingDependencyError
            ``safetensors`` is not installed.
        """
        from hoodwink.reports import atomic_write_bytes, atomic_write_text, make_folder

        weights = Path(path)
        if weights.suffix.lower() != ".safetensors":
            reject("TrainingResult.save", "path", str(path), "a file name ending in .safetensors",
                   hint=f"E.g. {weights.with_suffix('.safetensors')}.")
        try:
            st = importlib.import_module("safetensors.torch")
        except ImportError as exc:
            raise MissingDependencyError(
                "Saving weights needs the 'safetensors' package. Install it with: "
                "pip install 'hoodwink[mnist]' (or pip install safetensors)"
            ) from exc
        record = self.to_dict()
        if evaluation is not None:
            record["evaluation"] = dict(evaluation)
        if run is not None:
            record["run"] = dict(run)
        text = json.dumps(record, indent=2, allow_nan=False) + "\n"
        make_folder(weights.parent)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        data: bytes = st.save(state, metadata={"source": "hoodwink.training.adversarial_train"})
        atomic_write_bytes(weights, data)
        record_path = weights.with_suffix(".json")
        atomic_write_text(record_path, text)
        return weights, record_path


def adversarial_train(
    module: nn.Module,
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    eps: float,
    norm: NormName = "linf",
    steps: int = 7,
    stepsize: float | None = None,
    epochs: int,
    batch_size: int = 64,
    lr: float,
    weight_decay: float = 0.0,
    lr_schedule: Literal["constant", "cosine"] = "constant",
    bounds: tuple[BoundLike, BoundLike] = (0.0, 1.0),
    levels: int | None = None,
    preprocessing: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    clean_fraction: float = 0.0,
    eps_warmup_epochs: int = 0,
    progress: ProgressCallback | None = None,
    device: str | torch.device | None = None,
) -> TrainingResult:
    """Adversarially train a copy of ``module`` (Madry et al., ICLR 2018).

    For every batch, hoodwink's :class:`~hoodwink.PGD` (random start, no
    early stop: it keeps each sample's highest-loss iterate) attacks the
    current network in eval mode through a :class:`~hoodwink.TorchClassifier`
    with ``bounds``, ``levels`` and ``preprocessing``; then one Adam step on
    the cross-entropy of those adversarial examples is taken in train mode.
    The caller's module is never changed: a deep copy is trained.

    Parameters
    ----------
    module : torch.nn.Module
        The network (raw inputs → logits, behind ``preprocessing``); copied.
    x : float tensor (N, ...)
        Raw training inputs within ``bounds`` (on the grid when ``levels``
        is given), never normalised.
    y : int tensor (N,)
        True labels in ``[0, C)``.
    eps : float >= 0
        Training budget in ``norm``, in raw input units (0.3 for MNIST in
        L∞, Madry et al.). 0 is plain training through the same code path.
    norm : {"linf", "l2", "l1"}, default "linf"
    steps : int in [1, 1_000_000], default 7
        PGD steps per batch.
    stepsize : float > 0, optional
        PGD step length; default ``2.5 * eps / steps``. During the eps
        warm-up it shrinks in proportion to eps.
    epochs : int >= 1
    batch_size : int >= 1, default 64
    lr : float > 0
        Adam's learning rate.
    weight_decay : float >= 0, default 0
        Adam's L2 penalty.
    lr_schedule : {"constant", "cosine"}, default "constant"
        "cosine" decays the learning rate to 0 over the run, batch by batch.
    bounds : (lower, upper), default (0, 1)
        Input box, as for :class:`~hoodwink.TorchClassifier`.
    levels : int, optional
        Quantisation levels (256 for 8-bit images): adversarial examples are
        then grid points, as the deployed model will see them.
    preprocessing : nn.Module or callable, optional
        Differentiable map from raw inputs to what ``module`` expects (e.g.
        :class:`~hoodwink.Normalize`), applied inside, in training too.
    seed : int in [0, 2**64 - 1], default 0
        Seeds a local ``torch.Generator`` (shuffling, PGD's random starts)
        and, inside a forked RNG, any randomness of the module itself
        (dropout); the global random state is restored afterwards. The same
        seed on the same machine gives the same weights.
    clean_fraction : float in [0, 1], default 0
        Fraction of each batch trained on unperturbed inputs (Kurakin et
        al., 2017; Goodfellow et al. mix half and half); those samples are
        not attacked. 1 is plain training.
    eps_warmup_epochs : int in [0, epochs], default 0
        Ramp the budget linearly from 0 to ``eps`` over this many epochs,
        batch by batch (it helps MNIST at eps 0.3 start learning).
    progress : callable, optional
        ``progress(done, total, message)``, one unit per batch.
    device : str or torch.device, optional
        Where to train (default: where ``module`` is).

    Returns
    -------
    TrainingResult
        The trained copy (eval mode), per-epoch history and config.

    Raises
    ------
    ConfigError
        A parameter out of range (each message names it), ``module`` that is
        not an ``nn.Module`` instance or has no trainable float parameters,
        or ``eps`` larger than the whole input range (likely a 0..255 budget).
    InputError
        ``x`` or ``y`` unusable: not tensors, mismatched lengths, empty, out
        of ``bounds`` (:class:`~hoodwink.errors.OutOfBoundsError`), off the
        grid, wrong shape or dtype (:class:`~hoodwink.errors.ShapeError`),
        labels outside the module's classes.
    ModelOutputError
        The module does not return finite logits of shape (N, C).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(64, 2, generator=g)
    >>> y = (x[:, 0] > x[:, 1]).long()
    >>> net = nn.Linear(2, 2)
    >>> result = adversarial_train(net, x, y, eps=0.05, epochs=2, lr=0.05)
    >>> len(result.history), result.module is net
    (2, False)
    """
    t_start = time.perf_counter()
    if not isinstance(module, nn.Module):
        kind = f"the class {module.__name__}" if isinstance(module, type) else \
            type(module).__name__
        raise ConfigError(
            f"The 'module' parameter of {_OWNER} must be a torch.nn.Module instance; got "
            f"{kind}. Pass the network itself, e.g. MnistCNN()."
        )
    eps = check_real(_OWNER, "eps", eps, low=0)
    norm = check_choice(_OWNER, "norm", norm, _NORMS)
    steps = check_int(_OWNER, "steps", steps, low=1, high=MAX_STEPS)
    stepsize = check_real(_OWNER, "stepsize", stepsize, low=0, closed="neither",
                          allow_none=True)
    epochs = check_int(_OWNER, "epochs", epochs, low=1)
    batch_size = check_int(_OWNER, "batch_size", batch_size, low=1)
    lr = check_real(_OWNER, "lr", lr, low=0, closed="neither")
    weight_decay = check_real(_OWNER, "weight_decay", weight_decay, low=0)
    lr_schedule = check_choice(_OWNER, "lr_schedule", lr_schedule, ("constant", "cosine"))
    seed = check_seed(_OWNER, "seed", seed)
    clean_fraction = check_real(_OWNER, "clean_fraction", clean_fraction, low=0, high=1)
    eps_warmup_epochs = check_int(_OWNER, "eps_warmup_epochs", eps_warmup_epochs, low=0,
                                  high=epochs)
    report = as_callback(progress) if progress is not None else None
    wanted = check_device(_OWNER, "device", device)
    xt, yt = _data(x, y)

    net = _copy(module, wanted)
    params = [p for p in net.parameters() if p.requires_grad and p.is_floating_point()]
    if not params:
        raise ConfigError(
            f"{type(module).__name__} has no trainable float parameters (none requires "
            "grad), so there is nothing to train. Pass a network with parameters, or set "
            "requires_grad=True on those to train."
        )
    net.eval()
    clf = TorchClassifier(net, bounds=bounds, levels=levels, preprocessing=preprocessing,
                          batch_size=max(batch_size, 1))
    if clf.module is not net:
        raise InternalError("TorchClassifier copied the training module; this is a hoodwink bug.")
    lo, hi = clf.bounds
    dims = math.prod(int(d) for d in xt.shape[1:])
    diameter = range_diameter(lo, hi, norm, dims)
    if eps > diameter:
        reject(_OWNER, "eps", eps, f"at most the whole input range in {norm} ({diameter:g})",
               hint=f"Budgets are in raw input units: did you mean {eps:g}/255 = "
                    f"{eps / 255:.5g}?")
    # One checked pass over all the data before any training: the attack's own checks
    # (bounds, grid, shapes, labels within the classes) fail here, not at batch 40.
    PGD(norm=norm, steps=1)(clf, xt, yt, eps=0.0)

    n = int(xt.shape[0])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    per_epoch = -(-n // batch_size)
    total = epochs * per_epoch
    warmup = eps_warmup_epochs * per_epoch
    pre = clf.preprocessing
    config: dict[str, Any] = {
        "module": f"{type(module).__module__}.{type(module).__qualname__}",
        "eps": eps, "norm": norm, "steps": steps, "stepsize": stepsize, "epochs": epochs,
        "batch_size": batch_size, "optimizer": "Adam", "lr": lr, "weight_decay": weight_decay,
        "lr_schedule": lr_schedule,
        "bounds": [_bound_value(lo), _bound_value(hi)], "levels": clf.levels,
        "preprocessing": None if pre is None else repr(pre),
        "seed": seed, "clean_fraction": clean_fraction, "eps_warmup_epochs": eps_warmup_epochs,
        "n_train": n, "inner_attack": "PGD(random_start=True, early_stop=False)",
    }
    history: list[EpochStats] = []
    cuda = clf.device.type == "cuda"
    devices = [clf.device.index if clf.device.index is not None
               else torch.cuda.current_device()] if cuda else []
    done = 0
    # Randomness of the module itself (dropout) draws from the global generators: fork the
    # ones training uses, seed them, and have them restored on the way out, so the caller's
    # state is untouched (torch.manual_seed would also seed, or queue seeds for, every GPU).
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(clf.device):
                torch.cuda.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            t_epoch = time.perf_counter()
            order = torch.randperm(n, generator=generator)
            sums = {"loss": 0.0, "clean": 0, "adv": 0, "attacked": 0}
            eps_now = eps
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                xb = xt[index].to(clf.device)
                yb = yt[index].to(clf.device)
                ramp = min(1.0, (done + 1) / warmup) if warmup else 1.0
                eps_now = eps * ramp
                k = round(clean_fraction * len(index))
                x_train, correct, adv_correct = _batch_examples(
                    clf, xb, yb, k, eps_now, norm=norm, steps=steps,
                    stepsize=None if stepsize is None else stepsize * ramp,
                    seed=int(torch.randint(0, _BATCH_SEED_MAX, (1,), generator=generator)))
                if lr_schedule == "cosine":
                    for group in optimizer.param_groups:
                        group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * done / total))
                net.train()
                try:
                    logits = net(pre(x_train) if pre is not None else x_train)
                    loss = F.cross_entropy(logits, yb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                finally:
                    net.eval()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise ConfigError(
                        f"The training loss became {value} at epoch {epoch}; the learning "
                        f"rate lr={lr:g} is likely too large. Try a smaller lr."
                    )
                sums["loss"] += value * len(index)
                sums["clean"] += correct
                sums["adv"] += adv_correct
                sums["attacked"] += len(index) - k if eps_now > 0 else 0
                done += 1
                if report is not None:
                    report(done, total, f"epoch {epoch}/{epochs}, eps {eps_now:.4g}, "
                                        f"loss {value:.3f}")
            attacked = int(sums["attacked"])
            stats = EpochStats(
                epoch=epoch, eps=eps_now, loss=sums["loss"] / n,
                clean_accuracy=sums["clean"] / n,
                adversarial_accuracy=sums["adv"] / attacked if attacked else None,
                time_s=time.perf_counter() - t_epoch)
            history.append(stats)
            _log.info("epoch %d/%d: eps %.4g, loss %.4f, clean %.4f, adversarial %s, %.1f s",
                      epoch, epochs, stats.eps, stats.loss, stats.clean_accuracy,
                      "-" if stats.adversarial_accuracy is None
                      else f"{stats.adversarial_accuracy:.4f}", stats.time_s)
    for p in net.parameters():
        p.grad = None
    return TrainingResult(module=net.eval(), history=tuple(history), config=config,
                          time_s=time.perf_counter() - t_start, preprocessing=preprocessing)


def _batch_examples(
    clf: TorchClassifier, xb: torch.Tensor, yb: torch.Tensor, k: int, eps: float, *,
    norm: NormName, steps: int, stepsize: float | None, seed: int,
) -> tuple[torch.Tensor, int, int]:
    """The batch to train on: its first ``k`` samples clean, the rest PGD examples.

    Returns the training inputs, how many samples the network classified
    correctly before the step (clean), and how many attacked samples it still
    classified correctly on their PGD example.
    """
    if k >= len(xb) or eps == 0:
        correct = int((clf.predict(xb) == yb).sum())
        return xb, correct, 0
    attack = PGD(norm=norm, steps=steps, stepsize=stepsize, random_start=True,
                 early_stop=False, seed=seed)
    res = attack(clf, xb[k:], yb[k:], eps=eps)
    correct = int(res.clean_correct.sum())
    adv_correct = int((res.pred_adv == yb[k:]).sum())
    if k == 0:
        return res.x_adv, correct, adv_correct
    correct += int((clf.predict(xb[:k]) == yb[:k]).sum())
    return torch.cat([xb[:k], res.x_adv]), correct, adv_correct


def _copy(module: nn.Module, device: torch.device | None) -> nn.Module:
    """A deep copy of the user's module, on ``device`` when given."""
    try:
        net = copy.deepcopy(module)
    except Exception as exc:  # deepcopy runs the user's __deepcopy__/__reduce__
        raise ConfigError(
            f"Cannot copy {type(module).__name__} for training (adversarial_train never "
            f"trains the caller's module in place): {type(exc).__name__}: {exc}."
        ) from exc
    return net.to(device) if device is not None else net


def _data(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` as tensors of matching length; the attack checks the rest."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{_OWNER} takes x as a float tensor (N, ...) of raw inputs; got "
            f"{type(x).__name__}. Convert it: torch.as_tensor(x, dtype=torch.float32)."
        )
    if not isinstance(y, torch.Tensor):
        raise InputError(
            f"{_OWNER} takes y as an int tensor (N,) of labels; got {type(y).__name__}. "
            "Convert it: torch.as_tensor(y, dtype=torch.int64)."
        )
    if x.ndim == 0 or x.shape[0] == 0:
        raise InputError(
            f"x holds no samples (shape {tuple(x.shape)}); {_OWNER} needs a batch (N, ...) "
            "with N >= 1."
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InputError(
            f"y has shape {tuple(y.shape)} but x has {x.shape[0]} samples; y must have shape "
            f"({x.shape[0]},), one label per sample."
        )
    return x.detach(), y.detach()


def _bound_value(t: torch.Tensor) -> float | list[Any]:
    return float(t) if t.numel() == 1 else t.detach().cpu().tolist()

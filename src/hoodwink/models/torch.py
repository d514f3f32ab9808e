"""PyTorch adapter: :class:`TorchClassifier` and :class:`Normalize`.

The adapter owns the input domain of a network: its bounds, the normalisation
it expects (applied *inside*, so attacks only ever see raw inputs) and an
optional quantisation grid. It also guarantees that evaluating the model has
no lasting side effects: the module's training flag and its parameters'
``requires_grad`` flags are restored afterwards, even when an error is raised.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hoodwink.errors import (
    ConfigError,
    ModelOutputError,
    ShapeError,
    TrainingModeWarning,
)
from hoodwink.losses import LossName, attack_loss
from hoodwink.models.base import Capabilities

__all__ = ["Normalize", "TorchClassifier"]

_log = logging.getLogger(__name__)

BoundLike = float | Sequence[float] | np.ndarray | torch.Tensor
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Normalize(nn.Module):
    """Differentiable ``(x - mean) / std`` applied along one axis.

    Parameters
    ----------
    mean, std : float or sequence of float
        Per-channel (or per-feature) statistics. A sequence of length K is
        applied along axis ``dim`` of the input, which must have size K.
    dim : int, default 1
        The axis of the *batched* input that ``mean`` and ``std`` index
        (1 is the channel axis of an (N, C, H, W) image batch).

    Examples
    --------
    >>> import torch
    >>> norm = Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    >>> norm(torch.ones(1, 3, 2, 2)).flatten()[:2]
    tensor([2., 2.])
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, mean: float | Sequence[float], std: float | Sequence[float], dim: int = 1
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if not torch.isfinite(mean_t).all() or not torch.isfinite(std_t).all():
            raise ConfigError(f"Normalize mean and std must be finite. Got mean={mean}, std={std}.")
        if (std_t <= 0).any():
            raise ConfigError(f"The 'std' parameter of Normalize must be > 0. Got {std}.")
        if mean_t.numel() != std_t.numel() and min(mean_t.numel(), std_t.numel()) != 1:
            raise ConfigError(
                f"Normalize mean and std must have the same length; got {mean_t.numel()} "
                f"and {std_t.numel()}."
            )
        if dim < 1:
            raise ConfigError(f"The 'dim' parameter of Normalize must be >= 1. Got {dim}.")
        self.dim = dim
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def _shaped(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if t.numel() == 1:
            return t.reshape(())
        if x.ndim <= self.dim or x.shape[self.dim] != t.numel():
            raise ConfigError(
                f"Normalize has {t.numel()} statistics but the input has shape "
                f"{tuple(x.shape)}; axis {self.dim} must have size {t.numel()}."
            )
        shape = [1] * x.ndim
        shape[self.dim] = t.numel()
        return t.reshape(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shaped(self.mean, x)) / self._shaped(self.std, x)

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}, dim={self.dim}"


def _as_bound(value: BoundLike, name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(value, dtype=np.float64) if not isinstance(
            value, torch.Tensor) else value.detach().cpu(), dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The {name} bound of TorchClassifier must be a float or an array of floats. "
            f"Got {value!r}."
        ) from exc
    if not torch.isfinite(t).all():
        raise ConfigError(f"The {name} bound of TorchClassifier must be finite. Got {value!r}.")
    return t


class TorchClassifier:
    """Wrap a PyTorch classifier so attacks can use it.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a *preprocessed* batch to logits of shape (N, C).
    bounds : (lower, upper), default (0, 1)
        The box of valid raw inputs. Each is a float or an array broadcastable
        to one input (per-feature bounds for tabular data).
    preprocessing : nn.Module or callable, optional
        Differentiable map from raw inputs to what ``module`` expects, e.g.
        :class:`Normalize`, or a resize-and-normalise pipeline. Applied inside
        every call; attacks never see its output.
    levels : int, optional
        Number of quantisation levels per feature between the bounds (256 for
        8-bit images). When set, inputs must lie on the grid and attack results
        are snapped to it, so they survive saving as 8-bit files.
    batch_size : int, default 256
        Largest batch sent to the module at once.
    device : str or torch.device, optional
        Where to run. Defaults to the device of the module's parameters. If it
        differs, a copy of the module is moved there; yours is left untouched.
    class_names : sequence of str, optional
        Human-readable class names, used by reports and the CLI.
    num_classes : int, optional
        Number of classes; inferred from one forward pass when omitted.
    input_shape : sequence of int, optional
        Shape of one input, e.g. (1, 28, 28); when given, other shapes are
        refused with a clear :class:`~hoodwink.errors.ShapeError`.

    Notes
    -----
    The module is evaluated in eval mode with ``requires_grad`` switched off on
    its parameters; both flags are restored after every call, also on error.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        bounds: tuple[BoundLike, BoundLike] = (0.0, 1.0),
        preprocessing: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
        levels: int | None = None,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise ConfigError(
                f"TorchClassifier needs a torch.nn.Module; got {type(module).__name__}. "
                "Wrap a plain function with an nn.Module, or use a callable adapter."
            )
        if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
            raise ConfigError(
                f"The 'bounds' parameter of TorchClassifier must be a pair (lower, upper). "
                f"Got {bounds!r}."
            )
        lower, upper = _as_bound(bounds[0], "lower"), _as_bound(bounds[1], "upper")
        try:
            gap = upper - lower
        except RuntimeError as exc:
            raise ConfigError(
                f"The lower and upper bounds have incompatible shapes {tuple(lower.shape)} "
                f"and {tuple(upper.shape)}."
            ) from exc
        if (gap <= 0).any():
            raise ConfigError(
                "The 'bounds' parameter of TorchClassifier needs lower < upper everywhere. "
                f"Got {bounds!r}."
            )
        if levels is not None and (
            isinstance(levels, bool) or not isinstance(levels, int) or levels < 2
        ):
            raise ConfigError(
                f"The 'levels' parameter of TorchClassifier must be an int >= 2 or None "
                f"(256 for 8-bit images). Got {levels!r}."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"The 'batch_size' parameter of TorchClassifier must be an int >= 1. "
                f"Got {batch_size!r}."
            )
        module_device = _module_device(module)
        target_device = torch.device(device) if device is not None else module_device
        if target_device != module_device:
            _log.info("copying the module to %s; the original stays on %s", target_device,
                      module_device)
            module = copy.deepcopy(module).to(target_device)
            if isinstance(preprocessing, nn.Module):
                preprocessing = copy.deepcopy(preprocessing).to(target_device)
        elif isinstance(preprocessing, nn.Module):
            preprocessing = preprocessing.to(target_device)
        self.module = module
        self.preprocessing = preprocessing
        self._lower = lower.to(target_device)
        self._upper = upper.to(target_device)
        self._levels = levels
        self.batch_size = batch_size
        self.device = target_device
        self.class_names = tuple(class_names) if class_names is not None else None
        self._num_classes = num_classes
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
        self._warned_training = False
        self._eval_depth = 0  # nesting level of evaluating() blocks
        self._dtype_cache: torch.dtype | None = None  # the module's dtype, inside a block
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} entries but num_classes is {num_classes}."
            )

    # ------------------------------------------------------------------ properties
    @property
    def capabilities(self) -> Capabilities:
        """Differentiable, outputs logits."""
        return Capabilities(differentiable=True, output="logits")

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower, upper) bounds on the model's device."""
        return self._lower, self._upper

    @property
    def levels(self) -> int | None:
        """Quantisation levels between the bounds, or None."""
        return self._levels

    @property
    def num_classes(self) -> int:
        """Number of classes, inferred from one forward pass if not given."""
        if self._num_classes is None:
            if self.class_names is not None:
                self._num_classes = len(self.class_names)
            else:
                raise ConfigError(
                    "TorchClassifier does not know num_classes yet: pass num_classes= or "
                    "call logits() once."
                )
        return self._num_classes

    def __repr__(self) -> str:
        return (
            f"TorchClassifier({type(self.module).__name__}, bounds=({_fmt(self._lower)}, "
            f"{_fmt(self._upper)}), preprocessing={_name(self.preprocessing)}, "
            f"levels={self._levels}, device='{self.device}')"
        )

    # ------------------------------------------------------------------ evaluation
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Put the module in eval mode with frozen parameters; restore on exit.

        Yields
        ------
        None
            Inside the block the module is in eval mode and its parameters do
            not require gradients. Both are restored afterwards, even on error.

        Notes
        -----
        Re-entrant: a block opened inside another one on the same classifier
        changes nothing, since the outer block already froze the module and will
        restore it. Attacks open one block around their whole run, so the
        per-step calls skip the walk over every submodule and parameter.
        """
        if self._eval_depth > 0:
            self._eval_depth += 1
            try:
                yield
            finally:
                self._eval_depth -= 1
            return
        yield from self._outer_block()

    def _outer_block(self) -> Iterator[None]:
        modules = [self.module]
        if isinstance(self.preprocessing, nn.Module):
            modules.append(self.preprocessing)
        # Every submodule's own flag: m.train(mode) would also switch submodules the user
        # deliberately left in eval mode (e.g. frozen batch norm in a training model).
        # Only what is switched is remembered and restored: for a module already in eval
        # mode that is nothing, which keeps this walk cheap (it runs once per call).
        submodules = [s for m in modules for s in m.modules()]
        training = [s for s in submodules if s.training]
        params = [p for s in submodules for p in s._parameters.values()
                  if p is not None and p.requires_grad]
        if self.module.training and not self._warned_training:
            self._warned_training = True
            warnings.warn(
                f"{type(self.module).__name__} is in training mode; hoodwink evaluates it in "
                "eval mode (dropout off, batch-norm running statistics) and restores the "
                "mode afterwards. Call module.eval() to silence this warning.",
                TrainingModeWarning,
                stacklevel=4,
            )
        try:
            if training:
                for m in modules:
                    m.eval()
            for p in params:
                p.requires_grad_(False)
            self._eval_depth = 1
            # Nothing can change the module's dtype inside the block; look it up once.
            self._dtype_cache = _module_dtype(self.module)
            yield
        finally:
            self._eval_depth = 0
            self._dtype_cache = None
            for s in training:
                s.training = True
            for p in params:
                p.requires_grad_(True)

    def _forward(self, x: torch.Tensor, *, check_finite: bool = True) -> torch.Tensor:
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            shape = ", ".join(str(d) for d in self.input_shape)
            raise ShapeError(
                f"{type(self.module).__name__} takes inputs of shape (N, {shape}); got "
                f"{tuple(x.shape)}. Resize the inputs first."
            )
        dtype = self._dtype_cache if self._eval_depth > 0 else _module_dtype(self.module)
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)  # differentiable, so gradients come back in the caller's dtype
        z = self.preprocessing(x) if self.preprocessing is not None else x
        out = self.module(z)
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(
                f"{type(self.module).__name__} returned {type(out).__name__}; a classifier "
                "must return a tensor of logits with shape (N, C)."
            )
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned shape {tuple(out.shape)} for a batch "
                f"of {x.shape[0]}; a classifier must return logits of shape (N, C). If it "
                "returns a single score, stack it as (N, 2) with a zero column."
            )
        if self._num_classes is None:
            self._num_classes = int(out.shape[1])
        elif out.shape[1] != self._num_classes:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned {out.shape[1]} classes; expected "
                f"{self._num_classes}."
            )
        if out.shape[1] < 2:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned 1 class score; a classifier needs at "
                "least 2 (for a binary score s, return torch.stack([0*s, s], 1))."
            )
        if check_finite:
            self._check_finite(out)
        return out

    def _check_finite(self, out: torch.Tensor) -> None:
        if not torch.isfinite(out).all():
            raise ModelOutputError(
                f"{type(self.module).__name__} returned NaN or infinite logits. Check that "
                "the inputs are in the model's domain and the weights are finite."
            )

    def _chunks(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        for i in range(0, x.shape[0], self.batch_size):
            yield x[i : i + self.batch_size].to(self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for raw inputs.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
            Raw inputs within the bounds.

        Returns
        -------
        torch.Tensor, shape (N, C)
            On ``x``'s device.
        """
        if x.shape[0] <= self.batch_size and x.device == self.device:
            # One chunk on the right device (the common case): no split, no cat.
            with self._block(), torch.no_grad():
                return self._forward(x)
        with self._block(), torch.no_grad():
            outs = [self._forward(c) for c in self._chunks(x)]
        return torch.cat(outs).to(x.device)

    def _block(self) -> contextlib.AbstractContextManager[None]:
        # evaluating(), minus the generator machinery when a block is already open
        # (attacks hold one around their whole run): a per-step saving.
        return contextlib.nullcontext() if self._eval_depth > 0 else self.evaluating()

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities, shape (N, C)."""
        return torch.softmax(self.logits(x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, shape (N,), int64."""
        return self.logits(x).argmax(dim=1)

    def objective_gradient(
        self, x: torch.Tensor, objective: Objective
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample objective, logits and the objective's gradient w.r.t. raw ``x``.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
            Raw inputs.
        objective : callable
            ``objective(logits, x_chunk) -> values`` of shape (n,) for a chunk;
            it may use the input too (e.g. a smoothness penalty).

        Returns
        -------
        values : torch.Tensor, shape (N,)
        logits : torch.Tensor, shape (N, C)
        grad : torch.Tensor, same shape as ``x``
            Gradient of ``values.sum()`` with respect to ``x``.
        """
        if x.shape[0] <= self.batch_size and x.device == self.device:
            with self._block():
                xc = x.detach().requires_grad_(True)
                with torch.enable_grad():
                    out = self._forward(xc)
                    v = objective(out, xc)
                    (g,) = torch.autograd.grad(v.sum(), xc)
            return v.detach(), out.detach(), g
        vals, logits, grads = [], [], []
        with self._block():
            for chunk in self._chunks(x):
                xc = chunk.detach().requires_grad_(True)
                with torch.enable_grad():
                    out = self._forward(xc)
                    v = objective(out, xc)
                    (g,) = torch.autograd.grad(v.sum(), xc)
                vals.append(v.detach())
                logits.append(out.detach())
                grads.append(g)
        dev = x.device
        return torch.cat(vals).to(dev), torch.cat(logits).to(dev), torch.cat(grads).to(dev)

    def loss_gradient(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss: LossName = "ce",
        targeted: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The attack loss, the logits and the loss gradient with respect to raw ``x``.

        The loss is oriented so that *increasing* it helps the attacker: for an
        untargeted attack it is the loss of the true label; for a targeted one
        it is minus the loss of the target.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
        labels : torch.Tensor, shape (N,)
            True labels (untargeted) or target labels (targeted).
        loss : {"ce", "margin"}
            Cross-entropy, or the logit margin of Carlini and Wagner (2017).
        targeted : bool

        Returns
        -------
        values, logits, grad : see :meth:`objective_gradient`.
        """
        if self._eval_depth > 0:  # an attack's step: the lean path, chunk by chunk
            if x.shape[0] <= self.batch_size and x.device == self.device:
                return self._loss_gradient_one_chunk(x, labels, loss, targeted)
            lab_d = labels.to(self.device)
            parts = [self._loss_gradient_one_chunk(c, lab_d[i : i + c.shape[0]], loss, targeted)
                     for i, c in zip(range(0, x.shape[0], self.batch_size), self._chunks(x),
                                     strict=True)]
            dev = x.device
            return tuple(torch.cat(t).to(dev) for t in zip(*parts, strict=True))  # type: ignore[return-value]
        lab = labels.to(self.device)
        offset = [0]

        def objective(out: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
            n = out.shape[0]
            lc = lab[offset[0] : offset[0] + n]
            offset[0] += n
            return attack_loss(out, lc, loss=loss, targeted=targeted)

        return self.objective_gradient(x, objective)


    def _loss_gradient_one_chunk(
        self, x: torch.Tensor, labels: torch.Tensor, loss: LossName, targeted: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # The hot path of gradient attacks (one step = one call), inside an open
        # evaluating() block and with the batch in one chunk. The NaN/inf check reads
        # the summed loss, which the backward pass needs anyway: any NaN or +inf logit
        # makes the log-sum-exp (CE) or the max over classes (margin) non-finite. Only
        # then are the logits themselves inspected, for the usual error message.
        # (-inf logits of classes that do not matter pass here; the clean and
        # verification passes through logits() still reject them.)
        lab = labels if labels.device == self.device else labels.to(self.device)
        xc = x.detach().requires_grad_(True)
        with contextlib.nullcontext() if torch.is_grad_enabled() else torch.enable_grad():
            out = self._forward(xc, check_finite=False)
            v = attack_loss(out, lab, loss=loss, targeted=targeted)
            total = v.sum()
            (g,) = torch.autograd.grad(total, xc)
        if not math.isfinite(total.item()):
            self._check_finite(out)
            raise ModelOutputError(
                f"The attack loss of {type(self.module).__name__} is not finite although its "
                "logits are; the logits are too large for the loss. Check the model's scale."
            )
        return v.detach(), out.detach(), g


def _module_dtype(module: nn.Module) -> torch.dtype | None:
    for t in module.parameters():
        if t.is_floating_point():
            return t.dtype
    return None


def _module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _fmt(t: torch.Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"<array {tuple(t.shape)}>"


def _name(p: object) -> str:
    return "None" if p is None else type(p).__name__

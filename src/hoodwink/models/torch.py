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
from typing import Any, NoReturn, get_args

import numpy as np
import torch
from torch import nn

from hoodwink._validation import (
    Interval,
    check_bool,
    check_choice,
    check_int,
    is_int,
    is_real,
    reject,
)
from hoodwink.errors import (
    CapabilityError,
    ConfigError,
    HoodwinkError,
    InputError,
    InternalError,
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
    mean, std : float or 1-D sequence of float
        Per-channel (or per-feature) statistics: real numbers, finite (in
        float32), ``std`` > 0. A sequence of length K is applied along axis
        ``dim`` of the input, which must have size K; a single value applies
        to every channel. mean and std have the same length, or one of them
        has length 1.
    dim : int, default 1
        The axis of the *batched* input that ``mean`` and ``std`` index
        (1 is the channel axis of an (N, C, H, W) image batch); at least 1.

    Raises
    ------
    ConfigError
        A statistic that is missing, not a real number (a string, a bool, a
        nested or ragged list), not finite, or a ``std`` that is not positive;
        a ``dim`` that is not an int >= 1.

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
        mean_t = _statistics("Normalize", "mean", mean)
        std_t = _statistics("Normalize", "std", std, positive=True)
        if mean_t.numel() != std_t.numel() and min(mean_t.numel(), std_t.numel()) != 1:
            raise ConfigError(
                f"Normalize mean and std must have the same length (one value per channel), "
                f"or one of them a single value; mean has {mean_t.numel()} values and std "
                f"{std_t.numel()}."
            )
        # (x - mean) / std must stay finite in float32 for inputs of a sensible scale
        # (|x| <= 1e6): a huge mean over a tiny std would turn every input into inf.
        if float(((mean_t.double().abs().max() + 1e6) / std_t.double().min()).item()) > _F32_MAX:
            raise ConfigError(
                f"Normalize with mean {mean_t.tolist()} and std {std_t.tolist()} overflows "
                "float32: (x - mean) / std would be infinite. Check the statistics: they are "
                "in the units of the raw inputs (e.g. mean=0.485, std=0.229 for pixels in "
                "[0, 1])."
            )
        self.dim = check_int("Normalize", "dim", dim, low=1)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def _shaped(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if t.numel() == 1:
            return t.reshape(())
        k = t.numel()
        if x.ndim <= self.dim or x.shape[self.dim] != k:
            shape = tuple(x.shape)
            if x.ndim >= self.dim and x.shape[self.dim - 1] == k:
                # The statistics fit the axis before: most likely one input without its
                # batch axis, e.g. a (3, H, W) image for an (N, 3, H, W) network.
                raise ShapeError(
                    f"x has shape {shape}, which looks like a single input without its batch "
                    f"dimension (Normalize has {k} statistics for axis {self.dim} of a batch). "
                    "Add a batch dimension: x[None] (or x.unsqueeze(0)). If x is a batch, "
                    f"give mean and std one value per channel of axis {self.dim}."
                )
            raise ConfigError(
                f"Normalize has {k} statistics but the input has shape {shape}; axis "
                f"{self.dim} must have size {k}. Give mean and std one value per channel "
                "(or a single value for all), or check the layout of x (images are "
                "(N, C, H, W))."
            )
        shape_t = [1] * x.ndim
        shape_t[self.dim] = k
        return t.reshape(shape_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shaped(self.mean, x)) / self._shaped(self.std, x)

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}, dim={self.dim}"


_F32_MAX = float(torch.finfo(torch.float32).max)
_F32_TINY = float(torch.finfo(torch.float32).tiny)


def _statistics(owner: str, name: str, value: Any, *, positive: bool = False) -> torch.Tensor:
    """A real scalar or 1-D array of reals as a float32 tensor; finite, and > 0 if ``positive``."""
    what = ("a positive float or a 1-D sequence of positive floats" if positive
            else "a float or a 1-D sequence of floats")
    arr = _real_array(value)
    if arr is None or arr.ndim > 1 or arr.size == 0:
        reject(owner, name, value, what)
    if not np.isfinite(arr).all() or (np.abs(arr) > _F32_MAX).any():
        reject(owner, name, value, what + ", finite in float32 (|v| < 3.4e38)")
    if positive and (arr < _F32_TINY).any():
        reject(owner, name, value, what + f" (each at least {_F32_TINY:.3g}, the smallest "
               "normal float32)")
    return torch.from_numpy(arr.astype(np.float32)).flatten()


def _real_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array when it is a real number or an array of them, else None.

    Strings, bools, complex numbers, ragged lists and meta tensors are not real
    arrays; ints too large for a float are not either.
    """
    if isinstance(value, torch.Tensor):
        if value.is_meta or value.is_complex() or value.dtype == torch.bool:
            return None
        return value.detach().cpu().double().numpy()
    if is_real(value):
        try:
            return np.asarray(float(value), dtype=np.float64)
        except OverflowError:
            return None
    if isinstance(value, str | bytes) or value is None:
        return None
    if not isinstance(value, np.ndarray):
        if not isinstance(value, Sequence) or not all(
            is_real(v) or (isinstance(v, Sequence) and not isinstance(v, str | bytes))
            for v in value
        ):
            return None
        try:
            value = np.asarray(value)
        except (TypeError, ValueError, OverflowError):
            return None
    if value.dtype.kind not in "iuf":
        return None
    out: np.ndarray = value.astype(np.float64)
    return out


def _as_bound(value: BoundLike, name: str, owner: str = "TorchClassifier") -> torch.Tensor:
    """One bound (``name``: lower or upper) of an adapter as a float32 tensor, checked."""
    arr = _real_array(value)
    if arr is None or arr.size == 0:
        raise ConfigError(
            f"The {name} bound of {owner} must be a float or a non-empty array of "
            f"floats (the 'bounds' parameter is a pair (lower, upper)). Got {_show(value)}."
        )
    if not np.isfinite(arr).all() or (np.abs(arr) > _F32_MAX).any():
        raise ConfigError(
            f"The {name} bound of {owner} must be finite (and within float32, "
            f"|v| < 3.4e38). Got {_show(value)}."
        )
    return torch.from_numpy(arr.astype(np.float32))


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an int of about 1e{len(str(abs(value))) - 1}"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check_device(owner: str, name: str, value: Any) -> torch.device | None:
    """A device torch can run on here, as a ``torch.device`` (None stays None).

    Parameters
    ----------
    owner, name : str
        Who takes the parameter and its name, for the message.
    value : str, torch.device or None

    Raises
    ------
    ConfigError
        Not a str or torch.device; a string torch cannot parse (``"gpu"``);
        the meta device, which holds no data; a device this machine or this
        PyTorch build does not have (``"cuda"`` on a CPU-only build).

    Examples
    --------
    >>> check_device("TorchClassifier", "device", "cpu")
    device(type='cpu')
    >>> check_device("TorchClassifier", "device", "gpu")
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'device' parameter of TorchClassifier must be ...
    """
    if value is None:
        return None
    what = "a device name such as 'cpu', 'cuda', 'cuda:0' or 'mps', or a torch.device"
    if not isinstance(value, str | torch.device):
        reject(owner, name, value, what)
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        reject(owner, name, value, what)
    problem = _device_problem(device)
    if problem is not None:
        reject(owner, name, value, "a device this machine can run on", hint=problem)
    return device


def _device_problem(device: torch.device) -> str | None:
    """Why ``device`` cannot run a model here, with the fix; None when it can."""
    kind = device.type
    if kind == "cpu":
        return None
    if kind == "meta":
        return ("The meta device holds shapes but no data, so no model can run there; "
                "use device='cpu' (or 'cuda').")
    if kind == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            return (f"This PyTorch build ({torch.__version__}) has no CUDA support; use "
                    "device='cpu', or install a CUDA build of PyTorch.")
        if not torch.cuda.is_available():
            return "No CUDA GPU is visible on this machine; use device='cpu'."
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return (f"This machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
                    "use one of them or device='cpu'.")
        return None
    if kind == "mps" and not torch.backends.mps.is_available():
        return "The MPS backend (Apple GPUs) is not available here; use device='cpu'."
    try:
        torch.empty(0, device=device)
    except Exception as exc:  # each backend fails in its own way (AssertionError, ...)
        return (f"PyTorch cannot allocate on {device} here ({type(exc).__name__}: {exc}); use "
                "device='cpu'.")
    return None


def _check_class_names(names: Any) -> tuple[str, ...] | None:
    if names is None:
        return None
    what = "a sequence of str (at least 2, distinct), one per class"
    if isinstance(names, np.ndarray) and names.ndim == 1:
        names = names.tolist()
    if (isinstance(names, str | bytes) or not isinstance(names, Sequence)
            or not all(isinstance(n, str) for n in names)):
        reject("TorchClassifier", "class_names", names, what)
    out = tuple(str(n) for n in names)
    if len(out) < 2:
        reject("TorchClassifier", "class_names", names, what,
               hint="A classifier has at least 2 classes.")
    counts: dict[str, int] = {}
    for n in out:
        counts[n] = counts.get(n, 0) + 1
    dupes = [n for n, k in counts.items() if k > 1]
    if dupes:
        reject("TorchClassifier", "class_names", names, what,
               hint=f"Not unique: {', '.join(repr(d) for d in dupes[:5])}.")
    return out


def _check_input_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    what = "a non-empty tuple of positive ints, the shape of one input without the batch axis"
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = shape.tolist()
    if (isinstance(shape, str | bytes) or not isinstance(shape, Sequence) or len(shape) == 0
            or not all(is_int(d) and 1 <= d < 2**63 for d in shape)):
        reject("TorchClassifier", "input_shape", shape, what, hint="E.g. (3, 32, 32).")
    return tuple(int(d) for d in shape)


_LEVELS = Interval(int, 2, 2**24)
_BATCH = Interval(int, 1, None)


class TorchClassifier:
    """Wrap a PyTorch classifier so attacks can use it.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a *preprocessed* batch to float logits of shape (N, C).
    bounds : (lower, upper), default (0, 1)
        The box of valid raw inputs. Each is a float or an array broadcastable
        to one input (per-feature bounds for tabular data), finite, with
        lower < upper everywhere.
    preprocessing : nn.Module or callable, optional
        Differentiable map from raw inputs to what ``module`` expects, e.g.
        :class:`Normalize`, or a resize-and-normalise pipeline. Applied inside
        every call; attacks never see its output.
    levels : int, optional
        Number of quantisation levels per feature between the bounds (256 for
        8-bit images), in [2, 2**24]. When set, inputs must lie on the grid and
        attack results are snapped to it, so they survive saving as 8-bit files.
    batch_size : int, default 256
        Largest batch sent to the module at once.
    device : str or torch.device, optional
        Where to run; checked at once (``"cuda"`` on a machine without CUDA is
        a :class:`~hoodwink.errors.ConfigError`). Defaults to the device of
        the module's parameters. If it differs, a copy of the module is moved
        there; yours is left untouched.
    class_names : sequence of str, optional
        Human-readable class names (at least 2, distinct), used by reports and
        the CLI. They fix the number of classes; the module's output width is
        compared with it on the first call.
    num_classes : int, optional
        Number of classes (at least 2). When omitted, it comes from
        ``class_names``, or is learnt from the first forward pass.
    input_shape : sequence of int, optional
        Shape of one input, e.g. (1, 28, 28); when given, other shapes are
        refused with a clear :class:`~hoodwink.errors.ShapeError`, and
        :attr:`num_classes` can be learnt before any call.

    Raises
    ------
    ConfigError
        For any invalid parameter, naming it and the fix.

    Notes
    -----
    The module is evaluated in eval mode with ``requires_grad`` switched off on
    its parameters; both flags are restored after every call, also on error.
    Inputs are never changed: a module (or preprocessing) that writes into its
    input is detected on its first call and is handed a copy from then on.
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
            kind = (f"the class {module.__name__}" if isinstance(module, type)
                    else type(module).__name__)
            fix = (f" Pass an instance, e.g. {module.__name__}(...)."
                   if isinstance(module, type) and issubclass(module, nn.Module) else "")
            raise ConfigError(
                f"TorchClassifier needs a torch.nn.Module; got {kind}.{fix} "
                "Wrap a plain function with an nn.Module, or use a callable adapter."
            )
        if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
            raise ConfigError(
                f"The 'bounds' parameter of TorchClassifier must be a pair (lower, upper). "
                f"Got {_show(bounds)}."
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
                f"Got {_show(bounds)}."
            )
        if levels is not None:
            if not _LEVELS.accepts(levels):
                reject("TorchClassifier", "levels", levels, "an int >= 2 and <= 2**24, or None",
                       hint="Use 256 for 8-bit images; a finer grid cannot be represented "
                            "in float32.")
            levels = int(levels)
        if not _BATCH.accepts(batch_size):
            reject("TorchClassifier", "batch_size", batch_size, "an int >= 1")
        batch_size = int(batch_size)
        if preprocessing is not None and (isinstance(preprocessing, type)
                                          or not callable(preprocessing)):
            reject("TorchClassifier", "preprocessing", preprocessing,
                   "a callable (an nn.Module instance or a function) or None",
                   hint="E.g. preprocessing=Normalize(mean, std)." if isinstance(
                       preprocessing, type) else None)
        wanted = check_device("TorchClassifier", "device", device)
        module_device = _module_device(module)
        if module_device.type == "meta":
            raise ConfigError(
                f"The parameters of {type(module).__name__} are on the meta device, which "
                "holds no data. Load its weights first, e.g. module.to_empty(device='cpu') "
                "then module.load_state_dict(state)."
            )
        nc = check_int("TorchClassifier", "num_classes", num_classes, low=2, allow_none=True)
        names = _check_class_names(class_names)
        shape = _check_input_shape(input_shape)
        if names is not None and nc is not None and len(names) != nc:
            raise ConfigError(
                f"class_names has {len(names)} entries but num_classes is {nc}. Give one "
                "name per class."
            )
        bounds_shape = gap.shape
        if shape is not None and not _fits(bounds_shape, shape):
            raise ConfigError(
                f"The bounds have shape {tuple(bounds_shape)}, which does not fit one input "
                f"of input_shape {shape}: bounds must broadcast to one input (without a "
                "batch dimension)."
            )
        target_device = wanted if wanted is not None else module_device
        if target_device != module_device:
            _log.info("copying the module to %s; the original stays on %s", target_device,
                      module_device)
            module = _copy_to(module, target_device, "module")
        if isinstance(preprocessing, nn.Module) and _module_device(preprocessing) != target_device:
            # A copy, as for the module: the user's own preprocessing is never moved.
            preprocessing = _copy_to(preprocessing, target_device, "preprocessing")
        self.module = module
        self.preprocessing = preprocessing
        self._lower = lower.to(target_device)
        self._upper = upper.to(target_device)
        self._bounds_shape = tuple(bounds_shape)
        self._levels = levels
        self.batch_size = batch_size
        self.device = target_device
        self.class_names = names
        self.input_shape = shape
        self._num_classes = nc if nc is not None else (len(names) if names is not None else None)
        # Where the expected number of classes comes from, for the mismatch message.
        self._classes_from = (f"num_classes={nc}" if nc is not None
                              else f"class_names ({len(names)} names)" if names is not None
                              else "its first output")
        self._warned_training = False
        self._eval_depth = 0  # nesting level of evaluating() blocks
        self._dtype_cache: torch.dtype | None = None  # the module's dtype, inside a block
        # Inputs already checked: per-step calls inside attacks compare one shape and dtype.
        self._ok_shape: torch.Size | None = None
        self._ok_dtype: torch.dtype | None = None
        # The shape of one input the module has run on: a first failure on another shape is
        # the input's fault (a ShapeError), a later one the module's own (raised as it is).
        self._ran_shape: torch.Size | None = None
        # Whether the module (or preprocessing) writes into its input: None until its first
        # forward pass, which runs on a copy to find out; True keeps handing it copies.
        self._copy_input: bool | None = None

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
        """Number of classes C.

        From ``num_classes=`` or ``class_names=`` when given, else from the
        module's first output. Before any call, with ``input_shape=`` known,
        one forward pass on a single input at the middle of the bounds learns
        it.

        Raises
        ------
        ConfigError
            Before the first call, when neither num_classes, class_names nor
            input_shape was given: the message names those fixes.
        """
        if self._num_classes is None:
            if self.input_shape is None:
                raise ConfigError(
                    "TorchClassifier learns num_classes from the module's output, and the "
                    "module has not run yet. Pass num_classes= (or class_names=, or "
                    "input_shape= so that one pass on a single input can learn it), or call "
                    "model.logits(x) once first."
                )
            mid = (self._lower + self._upper) / 2
            self.logits(torch.broadcast_to(mid, self.input_shape)[None].clone())
        if self._num_classes is None:  # unreachable: logits() sets it or raises
            raise InternalError("num_classes was not learnt; this is a hoodwink bug.")
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

    def _check_input(self, x: Any) -> None:
        """Refuse an input the module cannot take; remember its shape and dtype when fine.

        Called once per public call; a step of an attack, with the shape and
        dtype already checked, costs one comparison.
        """
        check_batch("TorchClassifier", x, input_shape=self.input_shape,
                    bounds_shape=self._bounds_shape, taker=type(self.module).__name__)
        self._ok_shape, self._ok_dtype = x.shape, x.dtype

    def _forward(self, x: torch.Tensor, *, check_finite: bool = True) -> torch.Tensor:
        dtype = self._dtype_cache if self._eval_depth > 0 else _module_dtype(self.module)
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)  # differentiable, so gradients come back in the caller's dtype
        copy = self._copy_input
        xin = x.clone() if copy is not False else x  # differentiable too
        try:
            version: int | None = xin._version
        except RuntimeError:  # an inference tensor (torch.inference_mode) has no counter
            version = None
        z: Any = None
        try:
            z = self.preprocessing(xin) if self.preprocessing is not None else xin
            if z is not xin:
                if not isinstance(z, torch.Tensor):
                    raise ModelOutputError(
                        f"The preprocessing returned {type(z).__name__}; it must return a "
                        "torch.Tensor (a differentiable map of its input tensor)."
                    )
                if dtype is not None and z.dtype != dtype and z.is_floating_point():
                    z = z.to(dtype)  # e.g. float32 statistics promoting a float16 batch
            out = self.module(z)
        except HoodwinkError:
            raise
        except (MemoryError, torch.OutOfMemoryError):
            raise
        except Exception as exc:  # the user's network (or preprocessing) can raise anything
            self._raise_from_model(exc, x, "the preprocessing" if z is None else None)
        if self._ran_shape is None:
            self._ran_shape = x.shape[1:]
        if version is None:
            pass  # nothing to learn from; a copy stays a copy until a tensor can tell
        elif xin._version != version:  # the module wrote into its input
            if copy is False:  # a write it had not made on its first pass: data-dependent
                _log.warning("%s wrote into its input; hoodwink hands it copies from now on",
                             type(self.module).__name__)
            self._copy_input = True
        elif copy is None:
            self._copy_input = False
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(
                f"{type(self.module).__name__} returned {type(out).__name__}; a classifier "
                "must return a tensor of logits with shape (N, C)."
            )
        if not out.is_floating_point():
            raise ModelOutputError(
                f"{type(self.module).__name__} returned a tensor of dtype {out.dtype}; a "
                "classifier must return float scores (logits or log-probabilities), one per "
                "class, not labels or booleans. Return the scores before argmax/thresholding; "
                "a model that only gives labels needs a decision-based (label-only) adapter."
            )
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned shape {tuple(out.shape)} for a batch "
                f"of {x.shape[0]}; a classifier must return logits of shape (N, C). If it "
                "returns a single score, stack it as (N, 2) with a zero column. If x is one "
                "input, add a batch dimension: x[None]."
            )
        if self._num_classes is None:
            if out.shape[1] >= 2:
                self._num_classes = int(out.shape[1])
        elif out.shape[1] != self._num_classes:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned {out.shape[1]} class scores; expected "
                f"{self._num_classes} from {self._classes_from}."
            )
        if out.shape[1] < 2:
            raise ModelOutputError(
                f"{type(self.module).__name__} returned 1 class score; a classifier needs at "
                "least 2 (for a binary score s, return torch.stack([0*s, s], 1))."
            )
        if check_finite:
            self._check_finite(out)
        return out

    def _raise_from_model(self, exc: Exception, x: torch.Tensor, where: str | None) -> NoReturn:
        """Re-raise what the user's code raised, explained in terms of the input.

        On the first input shape the module meets, a failure is most likely that
        shape's fault: a :class:`ShapeError` saying so (the original chained).
        Once a shape has run, a failure is the module's own: re-raised as it is.
        """
        who = where or type(self.module).__name__
        if self._ran_shape is not None and x.shape[1:] == self._ran_shape:
            raise exc
        raise ShapeError(
            f"{who} raised {type(exc).__name__} on a batch of shape {tuple(x.shape)}: {exc}. "
            "Check that x has the shape and layout the module expects (images are "
            "(N, C, H, W)); if x is one input, add a batch dimension: x[None]. Give "
            "input_shape= to TorchClassifier to have shapes checked first."
        ) from exc

    def _check_finite(self, out: torch.Tensor) -> None:
        if not torch.isfinite(out).all():
            raise ModelOutputError(
                f"{type(self.module).__name__} returned NaN or infinite logits. Check that "
                "the inputs are in the model's domain and the weights are finite."
            )

    def _no_gradient(self, out: torch.Tensor, objective: bool = False) -> HoodwinkError:
        if torch.is_inference_mode_enabled():
            return InputError(
                "Gradients cannot be computed inside torch.inference_mode(); call "
                "loss_gradient/objective_gradient (or the attack) outside it."
            )
        if objective and out.requires_grad:
            return CapabilityError(
                "The objective gives no gradient with respect to the input x: its values do "
                "not depend on the logits (or x) through differentiable operations. Return "
                "values computed from the logits without .detach() or .item()."
            )
        return CapabilityError(
            f"{type(self.module).__name__} gives no gradient with respect to the input x: "
            "its logits do not depend on x through differentiable operations (a .detach(), "
            "torch.no_grad(), a NumPy round trip, argmax or rounding in forward() or in "
            "preprocessing=). Gradient attacks such as FGSM and PGD need that gradient; for "
            "such a model use a score- or decision-based attack."
        )

    def _chunks(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        for i in range(0, x.shape[0], self.batch_size):
            yield x[i : i + self.batch_size].to(self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for raw inputs.

        Parameters
        ----------
        x : torch.Tensor, shape (N, ...)
            Raw inputs within the bounds, float; never changed.

        Returns
        -------
        torch.Tensor, shape (N, C)
            On ``x``'s device.

        Raises
        ------
        InputError, ShapeError
            ``x`` is not a float tensor, or not a batch of inputs of the
            model's shape (a single input: add a batch dimension).
        ModelOutputError
            The module returned something else than finite float logits of
            shape (N, C).
        """
        if not (isinstance(x, torch.Tensor) and x.shape == self._ok_shape
                and x.dtype == self._ok_dtype):
            self._check_input(x)
        if x.shape[0] <= self.batch_size and x.device == self.device:
            # One chunk on the right device (the common case): no split, no cat.
            with self._block(), torch.no_grad():
                return self._forward(x)
        with self._block(), torch.no_grad():
            # An empty batch on another device still makes one (empty) pass.
            outs = [self._forward(c) for c in (list(self._chunks(x)) or [x.to(self.device)])]
        return torch.cat(outs).to(x.device)

    def _block(self) -> contextlib.AbstractContextManager[None]:
        # evaluating(), minus the generator machinery when a block is already open
        # (attacks hold one around their whole run): a per-step saving.
        return contextlib.nullcontext() if self._eval_depth > 0 else self.evaluating()

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The model's scores, shape (N, C): its logits (see :meth:`logits`)."""
        return self.logits(x)

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

        Raises
        ------
        CapabilityError
            No gradient flows from the logits (or the objective) to ``x``.
        """
        if isinstance(objective, type) or not callable(objective):
            reject("TorchClassifier.objective_gradient", "objective", objective,
                   "a callable objective(logits, x) -> values of shape (n,)")
        if not (isinstance(x, torch.Tensor) and x.shape == self._ok_shape
                and x.dtype == self._ok_dtype):
            self._check_input(x)
        single = x.shape[0] <= self.batch_size and x.device == self.device
        # An empty batch on another device still makes one (empty) pass.
        chunks = [x] if single else (list(self._chunks(x)) or [x.to(self.device)])
        vals, logits, grads = [], [], []
        with self._block():
            for chunk in chunks:
                xc = _grad_leaf(chunk)
                with torch.enable_grad():
                    out = self._forward(xc)
                    v = objective(out, xc)
                    if not isinstance(v, torch.Tensor) or v.shape != (xc.shape[0],):
                        got = (f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor)
                               else type(v).__name__)
                        raise ConfigError(
                            f"The objective returned {got} for a chunk of {xc.shape[0]}; it "
                            f"must return one value per sample, shape ({xc.shape[0]},)."
                        )
                    g = None
                    if v.requires_grad:
                        (g,) = torch.autograd.grad(v.sum(), xc, allow_unused=True)
                    if g is None:
                        raise self._no_gradient(out, objective=True)
                vals.append(v.detach())
                logits.append(out.detach())
                grads.append(g)
        if single:
            return vals[0], logits[0], grads[0]
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
            True labels (untargeted) or target labels (targeted), integers in
            ``[0, C)``.
        loss : {"ce", "margin", "dlr"}
            Cross-entropy, the logit margin of Carlini and Wagner (2017), or the
            difference of logits ratio of Croce and Hein (2020); see
            :func:`hoodwink.losses.attack_loss`.
        targeted : bool

        Returns
        -------
        values, logits, grad : see :meth:`objective_gradient`.

        Raises
        ------
        ConfigError, InputError, ShapeError
            Invalid ``loss``, ``targeted``, ``x`` or ``labels``.
        CapabilityError
            No gradient flows from the logits to ``x``.

        Notes
        -----
        Inside an :meth:`evaluating` block (an attack's run), ``labels``,
        ``loss`` and ``targeted`` are trusted: the attack validated them once,
        and each step takes the lean path.
        """
        if self._eval_depth > 0:  # an attack's step: the lean path, chunk by chunk
            if x.shape != self._ok_shape or x.dtype != self._ok_dtype:
                self._check_input(x)
            if x.shape[0] <= self.batch_size and x.device == self.device:
                return self._loss_gradient_one_chunk(x, labels, loss, targeted)
            lab_d = labels.to(self.device)
            parts = [self._loss_gradient_one_chunk(c, lab_d[i : i + c.shape[0]], loss, targeted)
                     for i, c in zip(range(0, x.shape[0], self.batch_size), self._chunks(x),
                                     strict=True)]
            dev = x.device
            return tuple(torch.cat(t).to(dev) for t in zip(*parts, strict=True))  # type: ignore[return-value]
        loss = check_choice("TorchClassifier.loss_gradient", "loss", loss, get_args(LossName))
        targeted = check_bool("TorchClassifier.loss_gradient", "targeted", targeted)
        self._check_input(x)
        lab = _labels(labels, x.shape[0]).to(self.device)
        offset = [0]

        def objective(out: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
            n = out.shape[0]
            lc = lab[offset[0] : offset[0] + n]
            offset[0] += n
            c = out.shape[1]
            bad = lc[(lc < 0) | (lc >= c)]
            if bad.numel():
                raise InputError(
                    f"labels contain {int(bad[0])}, outside the model's classes 0..{c - 1}."
                )
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
        xc = _grad_leaf(x)
        with contextlib.nullcontext() if torch.is_grad_enabled() else torch.enable_grad():
            out = self._forward(xc, check_finite=False)
            v = attack_loss(out, lab, loss=loss, targeted=targeted)
            total = v.sum()
            # A module whose logits ignore x has no gradient: said as a CapabilityError,
            # found at no cost (a flag, and allow_unused instead of autograd's error).
            g = torch.autograd.grad(total, xc, allow_unused=True)[0] if total.requires_grad \
                else None
        if g is None:
            raise self._no_gradient(out)
        if not math.isfinite(total.item()):
            self._check_finite(out)
            raise ModelOutputError(
                f"The attack loss of {type(self.module).__name__} is not finite although its "
                "logits are; the logits are too large for the loss. Check the model's scale."
            )
        return v.detach(), out.detach(), g


def _grad_leaf(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a leaf that requires grad (sharing its storage)."""
    try:
        return x.detach().requires_grad_(True)
    except RuntimeError as exc:  # an inference tensor, outside inference mode
        raise InputError(
            "x was made under torch.inference_mode() and cannot carry gradients; create it "
            "outside inference mode, or pass x.clone() made outside it."
        ) from exc


def _labels(labels: Any, n: int) -> torch.Tensor:
    """Labels as an int64 tensor of shape (n,)."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        labels = torch.from_numpy(np.ascontiguousarray(labels))
    if not isinstance(labels, torch.Tensor):
        raise InputError(
            f"labels must be an int tensor of shape ({n},); got {type(labels).__name__}."
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ShapeError(
            f"labels have dtype {labels.dtype}; labels must be integers (class indices), "
            "e.g. labels.long()."
        )
    if labels.shape != (n,):
        raise ShapeError(
            f"labels have shape {tuple(labels.shape)} but x has {n} samples; labels must have "
            f"shape ({n},)."
        )
    return labels.long()


def check_batch(owner: str, x: Any, *, input_shape: tuple[int, ...] | None,
                bounds_shape: tuple[int, ...], taker: str) -> None:
    """Refuse what no adapter can take: not a float tensor batch, or not shaped like its inputs.

    The one input check of every adapter (``owner`` names it in the messages,
    ``taker`` is what takes inputs of ``input_shape``: the module or the model).

    Raises
    ------
    InputError
        ``x`` is not a tensor.
    ShapeError
        ``x`` is not float, is on the meta device, has no batch dimension, or does
        not match ``input_shape`` or the bounds' shape; a single input is told to
        add a batch dimension.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{owner} takes x as a torch.Tensor of shape (N, ...); got "
            f"{type(x).__name__}. Convert it first: torch.as_tensor(x, dtype=torch.float32)."
        )
    if not x.is_floating_point():
        raise ShapeError(
            f"x has dtype {x.dtype}; the model takes float inputs in its bounds. For 8-bit "
            "images use x.float() / 255 with bounds=(0, 1) (and levels=256)."
        )
    if x.is_meta:
        raise ShapeError("x is on the meta device, which holds no data; pass real values.")
    if x.ndim == 0:
        raise ShapeError(
            "x has shape (); the model takes a batch of shape (N, ...). For one input use "
            "x[None]."
        )
    one = tuple(x.shape[1:])
    if input_shape is not None and one != input_shape:
        shape = ", ".join(str(d) for d in input_shape)
        if tuple(x.shape) == input_shape:
            raise ShapeError(
                f"x has shape {tuple(x.shape)}, the shape of one input: add a batch "
                "dimension, x[None] (or x.unsqueeze(0)), to pass it as a batch of one."
            )
        raise ShapeError(
            f"{taker} takes inputs of shape (N, {shape}); got "
            f"{tuple(x.shape)}. Resize the inputs first."
        )
    if bounds_shape and not _fits(bounds_shape, one):
        if tuple(x.shape) == bounds_shape:
            raise ShapeError(
                f"x has shape {tuple(x.shape)}, the shape of the model bounds, i.e. of one "
                "input: add a batch dimension, x[None] (or x.unsqueeze(0)). (If the "
                "bounds have a batch dimension instead, drop it: bounds describe one "
                "input.)"
            )
        raise ShapeError(
            f"The bounds of {owner} have shape {bounds_shape}, which does not fit one input "
            f"of shape {one} (x has shape {tuple(x.shape)}): bounds must broadcast to one "
            "input, without a batch dimension."
        )


def _fits(part: Sequence[int], whole: Sequence[int]) -> bool:
    """Whether a tensor of shape ``part`` broadcasts to ``whole`` without enlarging it."""
    if len(part) > len(whole):
        return False
    return all(p in (1, w) for p, w in zip(reversed(part), reversed(whole), strict=False))


def _copy_to(module: nn.Module, device: torch.device, what: str) -> nn.Module:
    try:
        return copy.deepcopy(module).to(device)
    except Exception as exc:  # deepcopy runs the user's __deepcopy__/__reduce__
        raise ConfigError(
            f"Cannot copy the {what} ({type(module).__name__}) to {device}: "
            f"{type(exc).__name__}: {exc}. Move it yourself (module.to(device)) and leave "
            "device= out."
        ) from exc


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

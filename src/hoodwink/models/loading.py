"""Load a model from a spec string: a zoo name, a factory, or a weights file.

:func:`load_model` is what ``hoodwink attack --model`` calls. A spec is one of

* a zoo name (``mnist-cnn``; see :func:`hoodwink.zoo.available`);
* ``package.module:factory`` or ``path/to/file.py:factory``: the module is
  imported and ``factory()`` called with no arguments. **This runs the named
  code.** It may return a ``torch.nn.Module`` (wrapped in a
  :class:`~hoodwink.TorchClassifier` with the given input domain) or a
  hoodwink classifier (used as it is);
* ``weights.safetensors`` with ``arch="package.module:Class"`` (or
  ``file.py:Class``): ``Class()`` is built with no arguments and the weights
  loaded with ``load_state_dict(strict=True)``;
* a scikit-learn model saved with skops (``.skops``), read safely: only
  types from scikit-learn, NumPy, SciPy, XGBoost, LightGBM and the standard
  library are trusted, anything else is refused before it is loaded; wrapped
  in a :class:`~hoodwink.SklearnClassifier`;
* an ONNX model (``.onnx``), wrapped in an :class:`~hoodwink.OnnxClassifier`;
* a pickle (``.pt``, ``.pth``, ``.pkl``, ``.joblib``) holding a module, a
  state dict or a fitted scikit-learn classifier, only with
  ``trust_pickle=True``: unpickling runs code stored in the file.

scikit-learn and ONNX models have no input domain of their own that hoodwink
could read, so ``bounds`` is required for them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hoodwink._validation import check_bool, reject
from hoodwink.errors import ConfigError, HoodwinkError, MissingDependencyError
from hoodwink.models.base import Classifier
from hoodwink.models.torch import _LEVELS, Normalize, TorchClassifier, _statistics, check_device

__all__ = ["PICKLE_SUFFIXES", "load_model"]

#: Weights files that need ``trust_pickle=True``.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".joblib")

#: Modules whose types a ``.skops`` file may hold without the user's say-so.
_SKOPS_TRUSTED = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.", "builtins.",
                  "collections.")
#: Built-ins that are never trusted in a ``.skops`` file: they run or reach arbitrary code.
_SKOPS_NEVER = frozenset(
    f"builtins.{n}" for n in ("eval", "exec", "compile", "open", "__import__", "getattr",
                              "setattr", "delattr", "globals", "locals", "vars", "input",
                              "breakpoint", "exit", "quit", "help"))

_FORMS = (
    "a zoo name (see `hoodwink models`), package.module:factory, path/to/file.py:factory, "
    "or weights.safetensors with --arch package.module:Class"
)


def load_model(
    spec: str,
    *,
    arch: str | None = None,
    bounds: tuple[float, float] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    levels: int | None = None,
    trust_pickle: bool = False,
    device: str | torch.device | None = None,
) -> Classifier:
    """Load a classifier from a zoo name, a factory, or a weights file.

    Parameters
    ----------
    spec : str
        ``"mnist-cnn"`` (a zoo name); ``"package.module:factory"`` or
        ``"path/to/file.py:factory"`` (imports the module and calls
        ``factory()``; **this executes that code**, so only name code you
        trust); ``"weights.safetensors"`` together with ``arch``; a
        scikit-learn model saved with skops (``"model.skops"``); an ONNX
        model (``"model.onnx"``); or a pickle (``.pt``, ``.pth``, ``.pkl``,
        ``.joblib``) with ``trust_pickle=True``. A factory (or pickle) may
        return an ``nn.Module``, a hoodwink classifier, or a fitted
        scikit-learn classifier.
        Modules are imported with the current directory on ``sys.path``.
    arch : str, optional
        ``"package.module:Class"`` or ``"file.py:Class"``: the network whose
        ``Class()`` (no arguments) receives the weights of a ``.safetensors``
        file or of a pickled state dict. Importing it runs that code.
    bounds : (float, float), optional
        Lower and upper bound of raw inputs; default (0, 1) for networks,
        required for scikit-learn and ONNX models (the range of their
        features: hoodwink cannot read it from the model).
    mean, std : sequence of float, optional
        Normalisation applied inside the adapter
        (:class:`~hoodwink.Normalize` on axis 1; for ONNX models, the
        preprocessing of :class:`~hoodwink.OnnxClassifier`), so attacks work
        on raw inputs. Give both or neither. Not for scikit-learn models,
        whose pipeline does its own preprocessing.
    levels : int, optional
        Quantisation levels between the bounds (256 for 8-bit images).
    trust_pickle : bool, default False
        Allow loading pickles, which execute code stored in the file. It
        does not apply to ``.skops`` files, which are never unpickled.
    device : str or torch.device, optional
        Where to run (scikit-learn and ONNX models run on the CPU).

    Returns
    -------
    Classifier
        A :class:`~hoodwink.TorchClassifier` in eval mode for modules and
        weights; a :class:`~hoodwink.SklearnClassifier` for scikit-learn
        models; an :class:`~hoodwink.OnnxClassifier` for ``.onnx`` files; the
        factory's own object when it returns a classifier.

    Raises
    ------
    ConfigError
        An unknown name, a malformed spec, a module or attribute that cannot be
        found, a factory that raises or returns something else than a module or
        classifier, weights that do not match ``arch``, a pickle without
        ``trust_pickle``, a ``.skops`` file holding types outside the trusted
        libraries, a scikit-learn or ONNX model without ``bounds``, or a domain
        (``bounds``, ``mean``, ``std``, ``levels``) given for a model that
        carries its own.
    MissingDependencyError
        safetensors, joblib, skops or onnxruntime is not installed.

    Examples
    --------
    >>> clf = load_model("mnist-linear")
    >>> clf.num_classes, clf.levels
    (10, 256)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"The model spec must be a non-empty string: {_FORMS}. Got {spec!r}.")
    if "\0" in spec:
        raise ConfigError(f"The model spec contains a NUL character: {_FORMS}. Got {spec!r}.")
    spec = spec.strip()
    if arch is not None and not isinstance(arch, str):
        reject("load_model", "arch", arch, "a str (package.module:Class or file.py:Class) or None")
    trust_pickle = check_bool("load_model", "trust_pickle", trust_pickle)
    if bounds is not None and not (isinstance(bounds, tuple | list) and len(bounds) == 2):
        reject("load_model", "bounds", bounds, "a pair (lower, upper) of floats, or None",
               hint="E.g. bounds=(0, 1) (on the command line: --bounds 0,1).")
    # The domain is checked before any user code runs or weights are read.
    for name, value in (("mean", mean), ("std", std)):
        if value is not None:
            _statistics("load_model", name, value, positive=name == "std")
    if levels is not None and not _LEVELS.accepts(levels):
        reject("load_model", "levels", levels, "an int >= 2 and <= 2**24, or None",
               hint="Use 256 for 8-bit images.")
    check_device("load_model", "device", device)
    domain = {"bounds": bounds, "mean": mean, "std": std, "levels": levels}
    from hoodwink import zoo

    if spec.lower() in zoo.available():
        _no_domain(domain, f"The zoo model {spec!r} carries its own input domain",
                   "leave them out")
        _no_arch(arch, spec)
        return zoo.load(spec, device=device)
    suffix = Path(spec).suffix.lower()
    if suffix == ".skops":
        _no_arch(arch, spec)
        _black_box_domain(domain, device, f"{spec} holds a scikit-learn model", sklearn=True)
        obj = _read_skops(Path(spec))
        return _classifier_or_module(obj, f"the object in {spec}", domain, device)
    if suffix == ".onnx":
        _no_arch(arch, spec)
        _black_box_domain(domain, device, f"{spec} is an ONNX model", sklearn=False)
        if not _is_file(Path(spec)):
            raise ConfigError(f"No model file at {spec}.")
        from hoodwink.models.onnx import OnnxClassifier

        pre = (mean, std) if mean is not None and std is not None else None
        given: Any = domain["bounds"]  # checked by _black_box_domain: not None
        return OnnxClassifier(spec, bounds=given, preprocessing=pre, levels=levels)
    if suffix == ".safetensors":
        if arch is None:
            raise ConfigError(
                f"{spec} holds only weights; give the network they belong to with --arch "
                "package.module:Class or --arch file.py:Class (arch=...)."
            )
        module = _with_state_dict(arch, _read_safetensors(Path(spec)), spec)
        return _wrap(module, domain, device)
    if suffix in PICKLE_SUFFIXES:
        obj = _read_pickle(Path(spec), trust_pickle)
        if isinstance(obj, Mapping):
            if arch is None:
                raise ConfigError(
                    f"{spec} holds a state dict (weights only); give the network with --arch "
                    "package.module:Class (arch=...)."
                )
            return _wrap(_with_state_dict(arch, obj, spec), domain, device)
        _no_arch(arch, spec)
        return _classifier_or_module(obj, f"the object in {spec}", domain, device)
    if ":" in spec:
        _no_arch(arch, spec)
        obj = _call_user(
            _resolve(spec, "factory"), f"Calling the factory {spec}()",
            "A factory is called with no arguments and returns an nn.Module or a hoodwink "
            "classifier.",
        )
        return _classifier_or_module(obj, f"the factory {spec}()", domain, device)
    if _exists(Path(spec)):
        raise ConfigError(
            f"Cannot load a model from {spec}: unknown file type {suffix or '(none)'!r}. Give "
            f"{_FORMS}, a .skops or .onnx file, or a pickle ({', '.join(PICKLE_SUFFIXES)}) "
            "with --trust-pickle."
        )
    raise ConfigError(
        f"Unknown model {spec!r}. Give {_FORMS}. Zoo models: {', '.join(zoo.available())}."
    )


# ---------------------------------------------------------------------- helpers
def _no_domain(domain: Mapping[str, Any], why: str, fix: str) -> None:
    given = [k for k, v in domain.items() if v is not None]
    if given:
        raise ConfigError(
            f"{why}, so {', '.join(given)} cannot be given ({fix}). Got "
            + ", ".join(f"{k}={domain[k]!r}" for k in given) + "."
        )


def _no_arch(arch: str | None, spec: str) -> None:
    if arch is not None:
        raise ConfigError(
            f"arch (--arch) names the network for a weights file (.safetensors or a pickled "
            f"state dict); {spec!r} is not one. Leave --arch out. Got arch={arch!r}."
        )


def _wrap(module: nn.Module, domain: Mapping[str, Any],
          device: str | torch.device | None) -> TorchClassifier:
    mean, std = domain["mean"], domain["std"]
    if (mean is None) != (std is None):
        raise ConfigError(
            "mean and std (--mean, --std) normalise inputs inside the adapter and go together; "
            f"give both or neither. Got mean={mean!r}, std={std!r}."
        )
    # Normalize checks the statistics (a scalar is one value for every channel).
    pre = Normalize(mean, std) if mean is not None and std is not None else None
    bounds = domain["bounds"] if domain["bounds"] is not None else (0.0, 1.0)
    module.eval()
    return TorchClassifier(module, bounds=bounds, preprocessing=pre, levels=domain["levels"],
                           device=device)


def _black_box_domain(domain: Mapping[str, Any], device: str | torch.device | None,
                      what: str, *, sklearn: bool) -> None:
    """Check the domain given for a scikit-learn or ONNX model before anything is read."""
    mean, std = domain["mean"], domain["std"]
    if sklearn and (mean is not None or std is not None):
        raise ConfigError(
            f"{what}; mean and std (--mean, --std) normalise the inputs of networks, and a "
            "scikit-learn model does its own preprocessing (a StandardScaler in its Pipeline). "
            "Leave them out."
        )
    if (mean is None) != (std is None):
        raise ConfigError(
            "mean and std (--mean, --std) normalise inputs inside the adapter and go together; "
            f"give both or neither. Got mean={mean!r}, std={std!r}."
        )
    if domain["bounds"] is None:
        raise ConfigError(
            f"{what}, which does not record the range of its inputs: give --bounds lo,hi (the "
            "range of the features, e.g. --bounds 0,16 for scikit-learn's 8x8 digits; "
            "bounds=(lo, hi) in Python)."
        )
    if device is not None and torch.device(device).type != "cpu":
        raise ConfigError(
            f"{what}, which runs on the CPU; leave --device out (or give cpu). Got "
            f"device={device!r}."
        )


def _is_sklearn_like(obj: Any) -> bool:
    """A scikit-learn-style classifier: ``predict``, and ``classes_`` or ``fit``."""
    if isinstance(obj, nn.Module | Mapping | type):
        return False
    try:
        if not callable(getattr(obj, "predict", None)):
            return False
        return hasattr(obj, "classes_") or callable(getattr(obj, "fit", None))
    except Exception:  # a property that raises: not something to wrap
        return False


def _wrap_sklearn(obj: Any, what: str, domain: Mapping[str, Any],
                  device: str | torch.device | None) -> Classifier:
    from hoodwink.models.sklearn import SklearnClassifier

    _black_box_domain(domain, device, f"{what} is a scikit-learn model ({type(obj).__name__})",
                      sklearn=True)
    return SklearnClassifier(obj, bounds=domain["bounds"], levels=domain["levels"])


def _read_skops(path: Path) -> Any:
    if not _is_file(path):
        raise ConfigError(f"No model file at {path}.")
    try:
        import skops.io as sio  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading .skops files needs skops. Install it with: pip install 'hoodwink[sklearn]' "
            "(or pip install skops)"
        ) from exc
    try:
        untrusted = [str(t) for t in sio.get_untrusted_types(file=path)]
    except Exception as exc:  # skops raises its own error types on a corrupt file
        raise ConfigError(
            f"{path} is not a readable .skops file: {type(exc).__name__}: {exc}") from exc
    refused = [t for t in untrusted if not t.startswith(_SKOPS_TRUSTED) or t in _SKOPS_NEVER]
    if refused:
        raise ConfigError(
            f"{path} holds types hoodwink does not trust: {', '.join(refused[:10])}"
            f"{' ...' if len(refused) > 10 else ''}. Only types from scikit-learn, NumPy, "
            "SciPy, XGBoost, LightGBM and the standard library are loaded without your say-so; "
            "loading these would run their code. If you trust them, load the file yourself "
            "(skops.io.load(path, trusted=[...])) and wrap the model: "
            "hoodwink.SklearnClassifier(model, bounds=(lo, hi)); from the command line, give a "
            "factory that does so (--model file.py:factory). --trust-pickle does not apply "
            "to .skops files."
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:  # skops raises its own error types
        raise ConfigError(f"Cannot load {path}: {type(exc).__name__}: {exc}") from exc


def _is_classifier(obj: Any) -> bool:
    # Looked up statically: evaluating num_classes may run the model.
    needed = ("capabilities", "num_classes", "bounds", "levels", "predict")
    for attr in needed:
        try:
            inspect.getattr_static(obj, attr)
        except AttributeError:
            return False
    return not isinstance(obj, nn.Module)


def _classifier_or_module(obj: Any, what: str, domain: Mapping[str, Any],
                          device: str | torch.device | None) -> Classifier:
    if isinstance(obj, nn.Module):
        return _wrap(obj, domain, device)
    if isinstance(obj, type):
        raise ConfigError(
            f"{what} returned a type ({obj.__name__}), not an instance; it must return a "
            "torch.nn.Module or a hoodwink classifier object, e.g. return Net() rather than "
            "Net."
        )
    if _is_classifier(obj):
        _no_domain(domain, f"{what} returned a ready {type(obj).__name__}, which carries its "
                   "own input domain", "set them in the factory instead")
        if device is not None:
            raise ConfigError(
                f"{what} returned a ready {type(obj).__name__}; choose its device in the "
                f"factory. Got device={device!r}."
            )
        result: Classifier = obj
        return result
    if _is_sklearn_like(obj):
        return _wrap_sklearn(obj, what, domain, device)
    raise ConfigError(
        f"{what} returned a {type(obj).__name__}; it must return a torch.nn.Module or a "
        "hoodwink classifier (e.g. hoodwink.TorchClassifier(net, bounds=(0, 1))), or a fitted "
        "scikit-learn classifier."
    )


@contextlib.contextmanager
def _on_path(folder: str) -> Iterator[None]:
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _resolve(spec: str, kind: str) -> Callable[[], Any]:
    """Import ``module:name`` or ``file.py:name`` and return the attribute."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ConfigError(
            f"A {kind} is written package.module:{kind} or path/to/file.py:{kind}; "
            f"{spec!r} does not have that form."
        )
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _import_file(Path(where), spec)
        folder = str(Path(where).resolve().parent)
    else:
        folder = os.getcwd()
        try:
            with _on_path(folder):
                module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"Cannot import {where!r} for {spec!r}: {exc}. Run from the folder that holds "
                "the package, install it, or give a file instead: path/to/file.py:"
                f"{name}."
            ) from exc
        except (Exception, SystemExit) as exc:  # the module's own code can raise anything
            raise ConfigError(
                f"Importing {where!r} for {spec!r} raised {type(exc).__name__}: {exc}."
            ) from exc
    if not hasattr(module, name):
        public = sorted(k for k in vars(module) if not k.startswith("_")
                        and callable(getattr(module, k)))
        raise ConfigError(
            f"{where} has no attribute {name!r} (from {spec!r}). Callables it defines: "
            f"{', '.join(public[:10]) or 'none'}."
        )
    attr = getattr(module, name)
    if not callable(attr):
        raise ConfigError(
            f"{spec} is a {type(attr).__name__}, not a {kind}; name a function or class."
        )

    def call() -> Any:
        with _on_path(folder):
            return attr()

    return call


def _import_file(path: Path, spec: str) -> Any:
    if not _is_file(path):
        raise ConfigError(f"No Python file at {path} (from {spec!r}).")
    name = f"_hoodwink_user_{abs(hash(str(path.resolve())))}"
    mod_spec = importlib.util.spec_from_file_location(name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise ConfigError(f"Cannot import {path} (from {spec!r}): not a Python module.")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        with _on_path(str(path.resolve().parent)):
            mod_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the file's own code can raise anything
        sys.modules.pop(name, None)
        raise ConfigError(
            f"Importing {path} (from {spec!r}) raised {type(exc).__name__}: {exc}."
        ) from exc
    return module


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not _is_file(path):
        raise ConfigError(f"No weights file at {path}.")
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise MissingDependencyError(
            "Reading .safetensors weights needs safetensors. Install it with: "
            "pip install 'hoodwink[mnist]' (or pip install safetensors)"
        ) from exc
    try:
        state: dict[str, torch.Tensor] = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ConfigError(f"{path} is not a readable .safetensors file: {exc}") from exc
    return state


def _read_pickle(path: Path, trust_pickle: bool) -> Any:
    if not _is_file(path):
        raise ConfigError(f"No model file at {path}.")
    if not trust_pickle:
        raise ConfigError(
            f"{path} is a pickle, and loading a pickle executes code stored in it. If you trust "
            "the file, pass --trust-pickle (trust_pickle=True); better, convert it to "
            "safetensors (safetensors.torch.save_file(net.state_dict(), 'weights.safetensors')) "
            "and load it with --arch."
        )
    try:
        if path.suffix.lower() == ".joblib":
            try:
                import joblib  # type: ignore[import-untyped, import-not-found, unused-ignore]
            except ImportError as exc:
                raise MissingDependencyError(
                    "Reading .joblib files needs joblib: pip install joblib"
                ) from exc
            return joblib.load(path)
        with _on_path(os.getcwd()):
            if path.suffix.lower() == ".pkl" and not zipfile.is_zipfile(path):
                # Not torch.save's format: a plain pickle (pickle.dump, joblib.dump), e.g. of
                # a scikit-learn model. Only torch's legacy format starts with its magic number.
                obj = _read_plain_pickle(path)
                if not (isinstance(obj, int) and obj == _TORCH_LEGACY_MAGIC):
                    return obj
            return torch.load(path, map_location="cpu", weights_only=False)
    except HoodwinkError:
        raise
    except (Exception, SystemExit) as exc:  # unpickling can raise anything
        raise ConfigError(f"Cannot unpickle {path}: {type(exc).__name__}: {exc}") from exc


#: The first object in a file written by torch.save(..., _use_new_zipfile_serialization=False).
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_plain_pickle(path: Path) -> Any:
    """A pickle written by pickle.dump or joblib.dump (joblib reads both)."""
    try:
        import joblib  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        import pickle

        with path.open("rb") as f:
            return pickle.load(f)
    return joblib.load(path)


def _call_user(fn: Callable[[], Any], what: str, hint: str) -> Any:
    """``fn()``, the user's code: anything it raises but a HoodwinkError becomes a ConfigError.

    The message reads "{what} raised {type}: {error}. {hint}".
    """
    try:
        return fn()
    except HoodwinkError:
        raise
    except (Exception, SystemExit) as exc:  # the user's code can raise anything
        raise ConfigError(f"{what} raised {type(exc).__name__}: {exc}. {hint}") from exc


def _with_state_dict(arch: str, state: Mapping[str, Any], source: str) -> nn.Module:
    module = _call_user(
        _resolve(arch, "Class"), f"Building {arch}()",
        "The --arch class is built with no arguments; give a factory with defaults if it "
        "needs some.",
    )
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{arch}() returned a {type(module).__name__}; --arch must name a torch.nn.Module "
            "class (or a function returning one)."
        )
    own = module.state_dict()
    # Keys as text: a pickled dict may hold ints or other objects as keys.
    missing = sorted(str(k) for k in set(own) - set(state))
    unexpected = sorted(repr(k) if not isinstance(k, str) else k for k in set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:4])})")
        raise ConfigError(
            f"The weights in {source} do not fit {arch}: keys {'; '.join(parts)}. Check that "
            "--arch names the network the weights were saved from (a 'module.' prefix comes "
            "from saving a DataParallel model)."
        )
    not_tensors = [f"{k} ({type(state[k]).__name__})" for k in own
                   if not isinstance(state[k], torch.Tensor)]
    if not_tensors:
        raise ConfigError(
            f"The weights in {source} do not fit {arch}: {len(not_tensors)} entr(ies) are not "
            f"tensors, e.g. {'; '.join(not_tensors[:3])}."
        )
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if state[k].shape != v.shape]
    if wrong:
        raise ConfigError(
            f"The weights in {source} do not fit {arch}: {len(wrong)} tensor(s) have another "
            f"shape (file vs network), e.g. {'; '.join(wrong[:3])}."
        )
    try:
        module.load_state_dict(dict(state), strict=True)
    except Exception as exc:  # the network's own load hooks can raise anything
        raise ConfigError(
            f"Loading {source} into {arch} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a name the OS refuses (too long, ...) instead of OSError."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name the OS refuses instead of OSError."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False

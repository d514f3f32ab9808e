"""Parameter validation for the whole code base, declarative.

A parameter is checked against one or more *constraints*, small objects in
the spirit of scikit-learn's ``_param_validation``. The value passes when any
constraint accepts it; otherwise :class:`~hoodwink.errors.ConfigError` is
raised with one message format everywhere::

    The '{name}' parameter of {owner} must be {description}. Got {value!r}.

Constraints
-----------
- :class:`Interval` ``(int | float, low, high, closed=...)``: an int or a real
  number in a range. ``None`` for a bound means unbounded and excludes
  infinity; pass ``math.inf`` with a closed side to admit it. NaN is never in
  an interval.
- :class:`Options`: one of a fixed set of hashable values (e.g. strings).
- :class:`Boolean`, :class:`Callable`, :class:`NoneOk`, :class:`InstanceOf`,
  :class:`PathLike`. A bare ``None`` in a list of constraints means
  :class:`NoneOk`.

Rules shared by every numeric check: ``bool`` is never an int or a real;
numpy integer and floating scalars are accepted and returned as Python
``int``/``float``; strings are never numbers; arrays and tensors (even 0-d or
one-element) are never scalars and never options.

Functions
---------
- :func:`check` ``(owner, name, value, *constraints)``: the general form.
- :func:`check_int`, :func:`check_real`, :func:`check_choice`,
  :func:`check_bool`: the common cases.
- :func:`reject`: the same error for a check no constraint expresses.
- :func:`is_int`, :func:`is_real`: the scalar predicates behind the checks.
- :func:`validate_fields` and the ``_constraints`` table: a frozen dataclass
  declares ``_constraints = {"steps": (Interval(int, 1, None),), ...}`` and
  its ``__post_init__`` validates (and normalises) every listed field in one
  loop.

Examples
--------
>>> check_int("PGD", "steps", 40, low=1)
40
>>> check_int("PGD", "steps", 0, low=1)
Traceback (most recent call last):
...
hoodwink.errors.ConfigError: The 'steps' parameter of PGD must be an int in [1, inf). Got 0.
>>> check_real("PGD", "eps", -0.03, low=0)
Traceback (most recent call last):
...
hoodwink.errors.ConfigError: The 'eps' parameter of PGD must be a float in [0, inf). Got -0.03.
>>> check("PGD", "stepsize", None, Interval(float, 0, None, closed="neither"), None) is None
True
>>> check_choice("PGD", "loss", "hinge", ("ce", "margin"))
Traceback (most recent call last):
...
hoodwink.errors.ConfigError: The 'loss' parameter of PGD must be one of 'ce', 'margin'. Got 'hinge'.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn, TypeVar, overload

import numpy as np

from hoodwink.errors import ConfigError

__all__ = [
    "Boolean",
    "Callable",
    "Constraint",
    "ConstraintSpec",
    "Constraints",
    "InstanceOf",
    "Interval",
    "NoneOk",
    "Options",
    "PathLike",
    "Validated",
    "check",
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "describe",
    "format_apart",
    "is_int",
    "is_real",
    "parse_index",
    "reject",
    "validate_fields",
]

Closed = Literal["left", "right", "both", "neither"]
T = TypeVar("T")


class Constraint(ABC):
    """One admissible kind of value for a parameter.

    Subclasses implement :meth:`accepts` and :meth:`convert`, and set
    :attr:`description`, the phrase after "must be" in an error message.
    """

    description: str

    @abstractmethod
    def accepts(self, value: Any) -> bool:
        """Whether ``value`` satisfies the constraint."""

    def convert(self, value: Any) -> Any:
        """The normalised value (e.g. a Python int for a numpy integer); ``value`` is accepted."""
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.description}>"


#: What a constraint list may hold: constraints, or ``None`` for :class:`NoneOk`.
ConstraintSpec = Constraint | None
#: The declarative table of a validated dataclass: field name → constraints.
Constraints = Mapping[str, tuple[ConstraintSpec, ...]]


# ---------------------------------------------------------------------------- scalar kinds
def _is_bool(v: Any) -> bool:
    return isinstance(v, bool | np.bool_)


def is_int(v: Any) -> bool:
    """A Python or numpy integer scalar, never a bool."""
    return isinstance(v, int | np.integer) and not _is_bool(v)


def is_real(v: Any) -> bool:
    """A real scalar (int, float, numpy scalar, Fraction), never a bool, string or array."""
    return isinstance(v, numbers.Real | np.integer | np.floating) and not _is_bool(v)


def _as_float(v: Any) -> float | None:
    """``float(v)``, or None when it overflows (a huge int or Fraction)."""
    try:
        return float(v)
    except OverflowError:
        return None


def _fmt_bound(b: float) -> str:
    if isinstance(b, int):
        # Limits such as a 64-bit seed's read better as powers of two.
        for k in range(32, 129):
            if b in (2**k, 2**k - 1):
                return f"2**{k}" + (" - 1" if b != 2**k else "")
        return str(b)
    if math.isinf(b):
        return "inf" if b > 0 else "-inf"
    if b.is_integer() and abs(b) < 1e16:
        return str(int(b))
    return repr(b)


class Interval(Constraint):
    """An int or a real number in a range.

    Parameters
    ----------
    kind : type
        ``int`` (Python or numpy integers) or ``float`` (any real scalar:
        ints, floats, numpy scalars, fractions), returned as ``int`` or
        ``float``.
    low, high : int, float or None
        The bounds; None means unbounded on that side (infinity excluded).
        Pass ``math.inf`` (or ``-math.inf``) with that side closed to admit
        infinite values.
    closed : {"both", "left", "right", "neither"}, default "both"
        Which bounds belong to the interval.

    Examples
    --------
    >>> Interval(float, 0, 1, closed="left").description
    'a float in [0, 1)'
    >>> Interval(int, 1, None).description
    'an int in [1, inf)'
    >>> nonneg = Interval(float, 0, None)
    >>> nonneg.accepts(float("inf")), nonneg.accepts(float("nan")), nonneg.accepts(np.float32(2))
    (False, False, True)
    >>> Interval(int, 0, None).accepts(True), Interval(int, 0, None).convert(np.int64(3))
    (False, 3)
    """

    def __init__(self, kind: type[int] | type[float], low: float | None, high: float | None,
                 *, closed: Closed = "both") -> None:
        if kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float; got {kind!r}.")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"closed must be 'left', 'right', 'both' or 'neither'; got {closed!r}.")
        for b in (low, high):
            if b is not None and (not is_real(b) or (kind is int and not is_int(b)
                                                        and not math.isinf(b))):
                raise TypeError(f"Interval bound {b!r} does not suit kind {kind.__name__}.")
        if low is not None and high is not None and low > high:
            raise ValueError(f"Interval low {low!r} exceeds high {high!r}.")
        self.kind = kind
        self.low = low
        self.high = high
        self.closed = closed
        left_closed = closed in ("left", "both") and low is not None
        right_closed = closed in ("right", "both") and high is not None
        self._left_closed = left_closed
        self._right_closed = right_closed
        lo = "-inf" if low is None else _fmt_bound(low)
        hi = "inf" if high is None else _fmt_bound(high)
        what = "an int" if kind is int else "a float"
        self.description = (
            f"{what} in {'[' if left_closed else '('}{lo}, {hi}{']' if right_closed else ')'}"
        )

    def accepts(self, value: Any) -> bool:
        if self.kind is int:
            if not is_int(value):
                return False
            v: float = int(value)
        else:
            if not is_real(value):
                return False
            f = _as_float(value)
            if f is None or math.isnan(f):
                return False
            v = f
            if math.isinf(v) and not (
                (v > 0 and self._right_closed and self.high == math.inf)
                or (v < 0 and self._left_closed and self.low == -math.inf)
            ):
                return False
        if self.low is not None and (v < self.low or (v == self.low and not self._left_closed)):
            return False
        return not (self.high is not None
                    and (v > self.high or (v == self.high and not self._right_closed)))

    def convert(self, value: Any) -> Any:
        return int(value) if self.kind is int else float(value)


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _same_kind(value: Any, option: Any) -> bool:
    """Whether ``value`` may be compared with ``option``: bools only with bools, and so on."""
    if _is_bool(option) or _is_bool(value):
        return _is_bool(option) and _is_bool(value)
    if isinstance(option, str):
        return isinstance(value, str)
    if isinstance(option, int):
        return is_int(value)
    if isinstance(option, float):
        return isinstance(value, float | np.floating)
    return type(value) is type(option)


class Options(Constraint):
    """One of a fixed set of hashable values, compared only with values of the same kind.

    A match returns the option itself (so ``np.str_("ce")`` becomes ``"ce"``).
    Arrays never match, even ``np.array(["ce"])``.

    Parameters
    ----------
    options : iterable of hashable
        The admissible values; their order (sorted, for a set) is the order
        of the error message.

    Examples
    --------
    >>> Options(("ce", "margin")).description
    "one of 'ce', 'margin'"
    >>> Options({"l2", "linf"}).accepts(np.array(["l2"])), Options({1, 2}).accepts(True)
    (False, False)
    """

    def __init__(self, options: Iterable[Any]) -> None:
        opts = sorted(options, key=repr) if isinstance(options, set | frozenset) else list(options)
        if not opts:
            raise ValueError("Options needs at least one option.")
        for o in opts:
            if not _hashable(o):
                raise TypeError(f"Option {o!r} is not hashable.")
        self.options: tuple[Any, ...] = tuple(opts)
        self.description = (f"{opts[0]!r}" if len(opts) == 1
                            else "one of " + ", ".join(repr(o) for o in opts))

    def accepts(self, value: Any) -> bool:
        return self._match(value) is not _NO_MATCH

    def convert(self, value: Any) -> Any:
        return self._match(value)

    def _match(self, value: Any) -> Any:
        if isinstance(value, np.ndarray) or not _hashable(value):
            return _NO_MATCH
        for o in self.options:
            if _same_kind(value, o) and bool(value == o):
                return o
        return _NO_MATCH


_NO_MATCH = object()


class Boolean(Constraint):
    """A bool (Python or numpy); never 0, 1 or a string.

    >>> Boolean().accepts(np.True_), Boolean().accepts(1)
    (True, False)
    """

    description = "a bool"

    def accepts(self, value: Any) -> bool:
        return _is_bool(value)

    def convert(self, value: Any) -> Any:
        return bool(value)


class Callable(Constraint):
    """Any callable object.

    >>> Callable().accepts(len), Callable().accepts("len")
    (True, False)
    """

    description = "a callable"

    def accepts(self, value: Any) -> bool:
        return callable(value)


class NoneOk(Constraint):
    """The value None (a bare ``None`` in a constraint list means the same)."""

    description = "None"

    def accepts(self, value: Any) -> bool:
        return value is None


class InstanceOf(Constraint):
    """An instance of a type (or of one of several types).

    >>> InstanceOf(Path).description
    'an instance of Path'
    """

    def __init__(self, types: type | tuple[type, ...], description: str | None = None) -> None:
        self.types = types
        names = (types,) if isinstance(types, type) else types
        self.description = description or "an instance of " + " or ".join(
            t.__name__ for t in names)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)


class PathLike(Constraint):
    """A non-empty ``str`` or ``os.PathLike`` naming a file or folder; returned as a Path.

    >>> PathLike().convert("out/run.json") == Path("out/run.json")
    True
    >>> PathLike().accepts(""), PathLike().accepts(3)
    (False, False)
    """

    description = "a path (str or pathlib.Path)"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str):
            return value != ""
        return isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)

    def convert(self, value: Any) -> Any:
        return Path(value)


# ---------------------------------------------------------------------------- functions
def _constraint(c: ConstraintSpec) -> Constraint:
    if c is None:
        return NoneOk()
    if not isinstance(c, Constraint):
        raise TypeError(f"Not a constraint: {c!r}.")
    return c


def describe(*constraints: ConstraintSpec) -> str:
    """The phrase for a list of constraints, e.g. "a float in (0, inf) or None".

    >>> describe(Interval(int, 0, None), None)
    'an int in [0, inf) or None'
    >>> describe(Boolean(), Options(("auto",)), None)
    "a bool, 'auto' or None"
    """
    parts = [_constraint(c).description for c in constraints]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _show(value: Any, *, real: bool = False) -> str:
    """``repr(value)``, kept readable for values whose repr is huge or fails.

    ``real`` says a float was expected: an int too large for one says so.
    """
    if isinstance(value, int) and is_int(value) and _as_float(value) is None:
        digits = int(value.bit_length() * math.log10(2))
        shown = f"an int of about {'-' if value < 0 else ''}1e{digits}"
        return shown + (", too large for a float" if real else "")
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"a {type(value).__name__}"
    return text if len(text) <= 200 else text[:197] + "..."


@functools.lru_cache(maxsize=256)
def _interval(kind: type[int] | type[float], low: float | None, high: float | None,
              closed: Closed) -> Interval:
    # Attacks validate eps on every call: building the message text each time
    # was a measurable share of a small step's cost, so ranges are shared.
    return Interval(kind, low, high, closed=closed)


def check(owner: str, name: str, value: Any, *constraints: ConstraintSpec,
          hint: str | None = None) -> Any:
    """Validate ``value`` against ``constraints``; return it, normalised.

    Parameters
    ----------
    owner : str
        Who takes the parameter, as the user knows it: ``"PGD"``,
        ``"TorchClassifier"``, ``"dream"``.
    name : str
        The parameter's name.
    value : object
        The value given.
    *constraints : Constraint or None
        The value passes when any of them accepts it (None means
        :class:`NoneOk`). The first that accepts it converts it.
    hint : str, optional
        A sentence appended to the error message, e.g. the likely fix.

    Returns
    -------
    object
        The value, converted by the accepting constraint (numpy scalars to
        Python ``int``/``float``, paths to ``Path``, options to the option).

    Raises
    ------
    ConfigError
        "The '{name}' parameter of {owner} must be {description}. Got {value!r}."

    Examples
    --------
    >>> check("dream", "blur", np.float32(0.5), Interval(float, 0, None))
    0.5
    >>> check("dream", "blur", "0.5", Interval(float, 0, None))
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'blur' parameter of dream must be a float ... Got '0.5'.
    """
    if not constraints:
        raise TypeError("check() needs at least one constraint.")
    cs = [_constraint(c) for c in constraints]
    for c in cs:
        if c.accepts(value):
            return c.convert(value)
    real = any(isinstance(c, Interval) and c.kind is float for c in cs)
    _raise(owner, name, describe(*cs), _show(value, real=real), hint)


def reject(owner: str, name: str, value: Any, description: str, *,
           hint: str | None = None) -> NoReturn:
    """Raise the standard :class:`ConfigError` for a check no constraint expresses.

    For conditions across parameters or on contents, e.g. a list of budgets
    that must be increasing; ``description`` follows "must be".

    >>> reject("transfer_study", "eps", [0.1, 0.1], "a list of distinct budgets")
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'eps' ... must be a list of distinct budgets. Got [0.1, 0.1].
    """
    _raise(owner, name, description, _show(value), hint)


def _raise(owner: str, name: str, description: str, shown: str, hint: str | None) -> NoReturn:
    message = f"The '{name}' parameter of {owner} must be {description}. Got {shown}."
    if hint:
        message += " " + hint
    raise ConfigError(message)


@overload
def check_int(owner: str, name: str, value: Any, low: int | None = ...,
              high: int | None = ..., *, allow_none: Literal[False] = ...) -> int: ...
@overload
def check_int(owner: str, name: str, value: Any, low: int | None = ...,
              high: int | None = ..., *, allow_none: bool) -> int | None: ...
def check_int(owner: str, name: str, value: Any, low: int | None = None,
              high: int | None = None, *, allow_none: bool = False) -> int | None:
    """An int in ``[low, high]`` (None: unbounded), as a Python int (or None if allowed).

    >>> check_int("TorchClassifier", "batch_size", True, low=1)
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'batch_size' ... must be an int in [1, inf). Got True.
    """
    extra: tuple[ConstraintSpec, ...] = (None,) if allow_none else ()
    result: int | None = check(owner, name, value, _interval(int, low, high, "both"), *extra)
    return result


@overload
def check_real(owner: str, name: str, value: Any, low: float | None = ...,
               high: float | None = ..., *, closed: Closed = ...,
               allow_none: Literal[False] = ..., hint: str | None = ...) -> float: ...
@overload
def check_real(owner: str, name: str, value: Any, low: float | None = ...,
               high: float | None = ..., *, closed: Closed = ...,
               allow_none: bool, hint: str | None = ...) -> float | None: ...
def check_real(owner: str, name: str, value: Any, low: float | None = None,
               high: float | None = None, *, closed: Closed = "both",
               allow_none: bool = False, hint: str | None = None) -> float | None:
    """A real number in the interval, as a Python float (or None if allowed).

    ``closed`` says which given bounds belong to the interval; an absent
    bound (None) never admits infinity. NaN is always rejected.

    >>> check_real("PGD", "stepsize", 0.0, low=0, closed="neither")
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'stepsize' ... must be a float in (0, inf). Got 0.0.
    >>> check_real("PGD", "eps", 10**400, low=0)
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'eps' ... Got an int of about 1e400, too large for a float.
    """
    extra: tuple[ConstraintSpec, ...] = (None,) if allow_none else ()
    result: float | None = check(owner, name, value, _interval(float, low, high, closed),
                                 *extra, hint=hint)
    return result


@overload
def check_choice(owner: str, name: str, value: Any, choices: Iterable[T], *,
                 allow_none: Literal[False] = ...) -> T: ...
@overload
def check_choice(owner: str, name: str, value: Any, choices: Iterable[T], *,
                 allow_none: bool) -> T | None: ...
def check_choice(owner: str, name: str, value: Any, choices: Iterable[T], *,
                 allow_none: bool = False) -> T | None:
    """One of ``choices`` (strings, ints, ...), returned as the matching choice.

    >>> check_choice("PGD", "norm", np.array(["l2"]), ("linf", "l2"))
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'norm' ... one of 'linf', 'l2'. Got array(['l2'], ...).
    """
    extra: tuple[ConstraintSpec, ...] = (None,) if allow_none else ()
    result: T | None = check(owner, name, value, Options(choices), *extra)
    return result


def check_bool(owner: str, name: str, value: Any) -> bool:
    """A bool (Python or numpy), as a Python bool.

    >>> check_bool("PGD", "early_stop", "yes")
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'early_stop' parameter of PGD must be a bool. Got 'yes'.
    """
    result: bool = check(owner, name, value, Boolean())
    return result


def _collect(cls: type) -> dict[str, tuple[ConstraintSpec, ...]]:
    table: dict[str, tuple[ConstraintSpec, ...]] = {}
    for klass in reversed(cls.__mro__):
        table.update(vars(klass).get("_constraints", {}))
    return table


def validate_fields(obj: Any, constraints: Constraints | None = None, *,
                    owner: str | None = None) -> None:
    """Validate the attributes of ``obj`` named in a constraint table, in one loop.

    The table defaults to the ``_constraints`` class attributes of ``obj``'s
    class and its bases (a subclass entry overrides its base's). Each valid
    value is stored back normalised (``np.int64(40)`` becomes ``40``), also
    on frozen dataclasses, so call it from ``__post_init__``.

    Parameters
    ----------
    obj : object
        The configuration object, e.g. a frozen dataclass.
    constraints : mapping of str to tuple of Constraint, optional
        Field name → constraints; the class table when omitted.
    owner : str, optional
        The name in messages; ``type(obj).__name__`` when omitted.

    Raises
    ------
    ConfigError
        For the first invalid field, in table order.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Blur(Validated):
    ...     sigma: float = 1.0
    ...     _constraints = {"sigma": (Interval(float, 0, None, closed="neither"),)}
    ...     def __post_init__(self) -> None:
    ...         validate_fields(self)
    >>> Blur(np.float32(2.0))
    Blur(sigma=2.0)
    >>> Blur(0)
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'sigma' parameter of Blur must be a float in (0, inf). Got 0.
    """
    table = _collect(type(obj)) if constraints is None else constraints
    who = owner if owner is not None else type(obj).__name__
    for name, cs in table.items():
        value = getattr(obj, name)
        new = check(who, name, value, *cs)
        if new is not value:
            object.__setattr__(obj, name, new)


class Validated:
    """Mixin that declares the ``_constraints`` table read by :func:`validate_fields`."""

    _constraints: ClassVar[Constraints] = {}


# ---------------------------------------------------------------- message helpers
def format_apart(value: float, reference: float, digits: int = 4) -> tuple[str, str]:
    """Format two numbers with the fewest significant digits (at least ``digits``) that
    tell them apart.

    A message such as "x has values in [0, 1], outside the bounds [0, 1]" hides the
    problem when x is 1 + 1e-7; this prints ``1.0000001`` against ``1``. Equal numbers
    are formatted with ``digits`` digits.

    Examples
    --------
    >>> format_apart(1 + 1e-7, 1.0)
    ('1.0000001', '1')
    >>> format_apart(-2.1, 0.0)
    ('-2.1', '0')
    """
    for p in range(digits, 18):
        a, b = f"{value:.{p}g}", f"{reference:.{p}g}"
        if value == reference or a != b:
            return a, b
    return repr(value), repr(reference)


def parse_index(text: str) -> int | None:
    """An integer written in ASCII digits with an optional sign, else None.

    ``str.isdigit`` accepts superscripts ("²") and other scripts' digits, which ``int``
    then refuses or reads differently; this does not. More than 100 digits give
    ``±10**100`` (outside any index range) without meeting ``int``'s digit limit.

    Examples
    --------
    >>> parse_index(" 42"), parse_index("-3"), parse_index("²"), parse_index("4 2")
    (42, -3, None, None)
    """
    s = text.strip()
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not all("0" <= ch <= "9" for ch in body):
        return None
    sign = -1 if s[:1] == "-" else 1
    digits = body.lstrip("0") or "0"
    return sign * (10**100 if len(digits) > 100 else int(digits))


#: Largest seed a ``torch.Generator`` accepts (``manual_seed`` takes the 64-bit unsigned range).
MAX_SEED = 2**64 - 1


def check_seed(owner: str, name: str, value: Any) -> int:
    """A seed for ``torch.Generator().manual_seed``: an int in [0, 2**64 - 1].

    >>> check_seed("dream", "seed", np.int64(7))
    7
    >>> check_seed("dream", "seed", 2**64)
    Traceback (most recent call last):
    ...
    hoodwink.errors.ConfigError: The 'seed' parameter of dream must be an int in [0, 2**64 - 1]. ...
    """
    return check_int(owner, name, value, low=0, high=MAX_SEED)


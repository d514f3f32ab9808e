"""hoodwink._validation: constraints, messages, conversion, and the declarative table."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hoodwink._validation import (
    Boolean,
    Callable,
    InstanceOf,
    Interval,
    NoneOk,
    Options,
    PathLike,
    Validated,
    check,
    check_bool,
    check_choice,
    check_int,
    check_real,
    describe,
    reject,
    validate_fields,
)
from hoodwink.errors import ConfigError

# Values that are no scalar of any kind: arrays and tensors, even 0-d or one-element.
ARRAYS: list[Any] = [
    np.array(1), np.array([1]), np.array(0.5), np.array([0.5]), np.array(["ce"]),
    np.array("ce"), torch.tensor(1), torch.tensor([0.5]), [1], (0.5,), {"ce"},
]
NOT_NUMBERS: list[Any] = [
    None, "1", "0.5", "nan", b"1", True, False, np.True_, np.False_, 1 + 0j,
    *ARRAYS,
]


def _id(v: Any) -> str:
    return f"{type(v).__name__}:{v!r}"[:40]


# ---------------------------------------------------------------------- generated invalid values
def _int_cases() -> list[Any]:
    bad = [*NOT_NUMBERS, 2.5, 3.0, np.float64(3.0), math.nan, math.inf, Fraction(3, 1),
           0, -1, np.int64(-5), 11, 10**30]
    return [pytest.param(v, id=_id(v)) for v in bad]


@pytest.mark.parametrize("value", _int_cases())
def test_check_int_rejects(value: Any) -> None:
    """Anything but an int in [1, 10] raises a ConfigError naming the parameter and range."""
    with pytest.raises(ConfigError, match=r"^The 'steps' parameter of PGD must be an int in "
                                          r"\[1, 10\]\. Got "):
        check_int("PGD", "steps", value, low=1, high=10)


def _real_cases() -> list[Any]:
    bad = [*NOT_NUMBERS, math.nan, np.float32("nan"), math.inf, -math.inf, np.float64(math.inf),
           -0.5, np.float32(-1), 1.0, np.int64(1), Fraction(3, 2), 10**400, -(10**400)]
    return [pytest.param(v, id=_id(v)) for v in bad]


@pytest.mark.parametrize("value", _real_cases())
def test_check_real_rejects(value: Any) -> None:
    """Anything but a finite real in [0, 1) raises a ConfigError naming the parameter."""
    with pytest.raises(ConfigError, match=r"^The 'confidence' parameter of PGD must be a float "
                                          r"in \[0, 1\)\. Got "):
        check_real("PGD", "confidence", value, low=0, high=1, closed="left")


def _choice_cases() -> list[Any]:
    bad = [*NOT_NUMBERS, "CE", "ce ", "", "hinge", 0, 1, np.array(["ce"]), np.array("ce"),
           ["ce"], ("ce",), b"ce"]
    return [pytest.param(v, id=_id(v)) for v in bad]


@pytest.mark.parametrize("value", _choice_cases())
def test_check_choice_rejects(value: Any) -> None:
    """Anything but one of the strings raises, arrays and containers of an option included."""
    with pytest.raises(ConfigError, match=r"^The 'loss' parameter of PGD must be one of 'ce', "
                                          r"'margin'\. Got "):
        check_choice("PGD", "loss", value, ("ce", "margin"))


@pytest.mark.parametrize("value", [pytest.param(v, id=_id(v)) for v in
                                   [1, 0, "yes", "True", None, 1.0, np.int64(1), *ARRAYS]])
def test_check_bool_rejects(value: Any) -> None:
    """Only bools are bools: not 0, 1, strings or arrays."""
    with pytest.raises(ConfigError, match=r"^The 'early_stop' parameter of PGD must be a bool\."):
        check_bool("PGD", "early_stop", value)


# ---------------------------------------------------------------------- accepted values
@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), (10, 10), (np.int64(7), 7), (np.uint8(3), 3), (np.int32(1), 1)],
)
def test_check_int_accepts_and_converts(value: Any, expected: int) -> None:
    """Python and numpy integers pass and come back as a Python int of the same value."""
    out = check_int("PGD", "steps", value, low=1, high=10)
    assert out == expected and type(out) is int


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (0.25, 0.25), (np.float32(0.5), 0.5), (np.float16(0.5), 0.5),
     (np.int64(0), 0.0), (Fraction(1, 4), 0.25), (0.999, 0.999)],
)
def test_check_real_accepts_and_converts(value: Any, expected: float) -> None:
    """Ints, floats, numpy scalars and fractions pass and come back as a Python float."""
    out = check_real("PGD", "confidence", value, low=0, high=1, closed="left")
    assert out == expected and type(out) is float


def test_check_choice_returns_the_option() -> None:
    """A numpy string scalar matches and comes back as the plain option."""
    out = check_choice("PGD", "loss", np.str_("margin"), ("ce", "margin"))
    assert out == "margin" and type(out) is str


def test_check_bool_converts_numpy_bool() -> None:
    """np.True_ passes and becomes True."""
    out = check_bool("PGD", "early_stop", np.True_)
    assert out is True


# ---------------------------------------------------------------------- intervals
@pytest.mark.parametrize(
    ("closed", "low_ok", "high_ok", "text"),
    [("both", True, True, "[0, 1]"), ("left", True, False, "[0, 1)"),
     ("right", False, True, "(0, 1]"), ("neither", False, False, "(0, 1)")],
)
def test_interval_closed_sides(closed: Any, low_ok: bool, high_ok: bool, text: str) -> None:
    """Each closed= choice admits exactly the bounds it says, and the message shows it."""
    c = Interval(float, 0, 1, closed=closed)
    assert c.description == f"a float in {text}"
    assert c.accepts(0.0) is low_ok
    assert c.accepts(1.0) is high_ok
    assert c.accepts(0.5)
    assert not c.accepts(-1e-12) and not c.accepts(1 + 1e-12)


def test_interval_infinity_only_when_asked() -> None:
    """An absent bound excludes infinity; math.inf with a closed side admits it; NaN never."""
    assert not Interval(float, 0, None).accepts(math.inf)
    assert not Interval(float, None, None).accepts(-math.inf)
    both = Interval(float, -math.inf, math.inf)
    assert both.accepts(math.inf) and both.accepts(-math.inf) and not both.accepts(math.nan)
    assert both.description == "a float in [-inf, inf]"
    assert not Interval(float, 0, math.inf, closed="left").accepts(math.inf)


def test_interval_bounds_descriptions() -> None:
    """Bounds print as written: ints plainly, fractions exactly, 64-bit limits as powers of 2."""
    assert Interval(float, 0.0, 2.5).description == "a float in [0, 2.5]"
    assert Interval(float, None, 1 / 255, closed="neither").description == (
        f"a float in (-inf, {1 / 255!r})")
    assert Interval(int, 0, 2**64 - 1).description == "an int in [0, 2**64 - 1]"
    assert Interval(int, None, -3).description == "an int in (-inf, -3]"


def test_interval_misuse_is_a_programming_error() -> None:
    """Wrong kinds, bounds or closed= values fail at definition, not as a ConfigError."""
    with pytest.raises(TypeError):
        Interval(str, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Interval(int, 0.5, 2)
    with pytest.raises(ValueError, match="exceeds"):
        Interval(float, 2, 1)
    with pytest.raises(ValueError, match="closed"):
        Interval(float, 0, 1, closed="open")  # type: ignore[arg-type]


def test_huge_int_message_says_why() -> None:
    """An int too large for a float is rejected for a real, with a short, clear message."""
    with pytest.raises(ConfigError) as info:
        check_real("PGD", "eps", 10**5000, low=0)
    msg = str(info.value)
    assert msg == ("The 'eps' parameter of PGD must be a float in [0, inf). Got an int of "
                   "about 1e5000, too large for a float.")
    # For an int parameter the value is an int; the message still stays short.
    with pytest.raises(ConfigError, match=r"Got an int of about 1e400\.$"):
        check_int("PGD", "steps", 10**400, high=100)
    assert check_int("PGD", "seed", 10**400, low=0) == 10**400


# ---------------------------------------------------------------------- options
def test_options_compare_only_same_kind() -> None:
    """True is not 1, 1.0 is not 1, and unhashable values never match."""
    ints = Options((0, 1, 2))
    assert ints.accepts(1) and ints.accepts(np.int64(2))
    assert not ints.accepts(True) and not ints.accepts(1.0) and not ints.accepts("1")
    assert ints.convert(np.int64(2)) == 2 and type(ints.convert(np.int64(2))) is int
    bools = Options((True,))
    assert bools.accepts(True) and not bools.accepts(1)
    strs = Options({"linf", "l2", "l1"})
    assert strs.description == "one of 'l1', 'l2', 'linf'"
    assert not strs.accepts(["l2"]) and not strs.accepts(np.array(["l2"]))


def test_options_misuse() -> None:
    """Empty or unhashable option lists are programming errors."""
    with pytest.raises(ValueError):
        Options(())
    with pytest.raises(TypeError):
        Options((["ce"],))


# ---------------------------------------------------------------------- check and friends
def test_check_message_format_exact() -> None:
    """The one message format: name, owner, description, repr of the value, then the hint."""
    with pytest.raises(ConfigError) as info:
        check("dream", "stepsize", -1, Interval(float, 0, None, closed="neither"), None,
              hint="Try 0.01.")
    assert str(info.value) == ("The 'stepsize' parameter of dream must be a float in "
                               "(0, inf) or None. Got -1. Try 0.01.")


def test_check_error_is_a_value_error() -> None:
    """ConfigError is a ValueError, so generic handlers still catch it."""
    with pytest.raises(ValueError):
        check_int("X", "n", -1, low=0)


def test_check_first_accepting_constraint_converts() -> None:
    """None passes with NoneOk; numbers are converted by the interval that accepts them."""
    cs = (Interval(float, 0, None), None)
    assert check("PGD", "stepsize", None, *cs) is None
    assert check("PGD", "stepsize", np.float32(0.5), *cs) == 0.5
    assert check("X", "v", None, NoneOk()) is None
    assert check("X", "mode", "auto", Options(("auto",)), Interval(float, 0, None)) == "auto"
    assert check("X", "mode", 3, Options(("auto",)), Interval(float, 0, None)) == 3.0


def test_check_needs_a_constraint() -> None:
    """check() without constraints is a programming error."""
    with pytest.raises(TypeError):
        check("X", "v", 1)
    with pytest.raises(TypeError):
        check("X", "v", 1, "an int")  # type: ignore[arg-type]


def test_describe_joins_with_or() -> None:
    """Several constraints read as a list ending in 'or'."""
    assert describe(Boolean()) == "a bool"
    assert describe(Interval(int, 1, None), None) == "an int in [1, inf) or None"
    assert describe(Boolean(), Options(("auto",)), None) == "a bool, 'auto' or None"


def test_other_constraints() -> None:
    """Callable, InstanceOf and PathLike accept what they say and convert paths."""
    assert Callable().accepts(print) and not Callable().accepts("print")
    inst = InstanceOf((int, str))
    assert inst.description == "an instance of int or str"
    assert inst.accepts("a") and not inst.accepts(1.0)
    assert check("X", "out", "a/b.json", PathLike()) == Path("a/b.json")
    assert check("X", "out", Path("c"), PathLike()) == Path("c")
    for bad in ("", 3, None, b"a", np.array(["a"])):
        with pytest.raises(ConfigError, match=r"'out' parameter of X must be a path"):
            check("X", "out", bad, PathLike())


def test_reject_uses_the_same_format() -> None:
    """reject() raises the standard message for checks no constraint expresses."""
    with pytest.raises(ConfigError) as info:
        reject("transfer_study", "eps", [0.1, 0.1], "a list of distinct budgets", hint="Drop one.")
    assert str(info.value) == ("The 'eps' parameter of transfer_study must be a list of distinct "
                               "budgets. Got [0.1, 0.1]. Drop one.")


def test_long_repr_is_shortened() -> None:
    """A huge value does not flood the message."""
    with pytest.raises(ConfigError) as info:
        check_int("X", "n", list(range(10_000)))
    assert len(str(info.value)) < 300


# ---------------------------------------------------------------------- declarative tables
@dataclass(frozen=True, kw_only=True)
class _Base(Validated):
    seed: int | None = 0
    _constraints = {"seed": (Interval(int, 0, None), None)}

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True, kw_only=True)
class _Config(_Base):
    steps: int = 10
    rate: float = 0.5
    mode: str = "fast"
    _constraints = {
        "steps": (Interval(int, 1, None),),
        "rate": (Interval(float, 0, 1, closed="neither"),),
        "mode": (Options(("fast", "exact")),),
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("seed", -1), ("seed", 1.5), ("steps", 0), ("steps", True), ("rate", 1.0),
     ("rate", math.nan), ("mode", "slow"), ("mode", np.array(["fast"]))],
)
def test_table_rejects_with_field_name(name: str, value: Any) -> None:
    """A dataclass with a _constraints table (inherited entries too) names the bad field."""
    with pytest.raises(ConfigError, match=rf"^The '{name}' parameter of _Config must be"):
        _Config(**{name: value})


def test_table_normalises_values() -> None:
    """Valid numpy scalars are stored as Python numbers, so the repr stays clean."""
    c = _Config(seed=np.int64(3), steps=np.int32(5), rate=np.float32(0.25), mode=np.str_("exact"))
    assert repr(c) == "_Config(seed=3, steps=5, rate=0.25, mode='exact')"
    assert type(c.steps) is int and type(c.rate) is float and type(c.mode) is str


def test_explicit_table_and_owner() -> None:
    """validate_fields takes an explicit table and owner name."""
    c = _Config()
    with pytest.raises(ConfigError, match=r"^The 'steps' parameter of run must be an int in "
                                          r"\[20, inf\)"):
        validate_fields(c, {"steps": (Interval(int, 20, None),)}, owner="run")


# ---------------------------------------------------------------------- attacks use it
def test_attack_messages_come_from_the_module() -> None:
    """PGD's table gives the standard messages, with exact ranges."""
    from hoodwink import PGD

    cases: dict[str, tuple[Any, str]] = {
        "steps": (0, "an int in [1, 1000000]"),
        "stepsize": (0.0, "a float in (0, inf) or None"),
        "l1_sparsity": (1.0, "a float in [0, 1)"),
        "loss": (np.array(["ce"]), "one of 'ce', 'margin', 'dlr'"),
        "early_stop": (1, "a bool"),
        "seed": (-1, "an int in [0, 2**64 - 1] or None"),
        "norm": ("l3", "one of 'linf', 'l2', 'l1'"),
    }
    for name, (value, text) in cases.items():
        with pytest.raises(ConfigError, match=re.escape(
                f"The '{name}' parameter of PGD must be {text}. Got ")):
            PGD(**{name: value})


def test_attack_config_normalises_numpy_scalars() -> None:
    """PGD(steps=np.int64(5)) stores a Python int, so reprs and JSON records stay plain."""
    from hoodwink import PGD

    a = PGD(steps=np.int64(5), stepsize=np.float32(0.5), seed=np.int64(2))
    assert type(a.steps) is int and type(a.stepsize) is float and type(a.seed) is int
    assert "np." not in repr(a)


def test_allow_none_wrappers() -> None:
    """allow_none=True admits None and says so in the message; without it None is rejected."""
    assert check_int("X", "n", None, low=0, allow_none=True) is None
    assert check_real("X", "r", None, allow_none=True) is None
    assert check_choice("X", "c", None, ("a",), allow_none=True) is None
    with pytest.raises(ConfigError, match=r"must be an int in \[0, inf\) or None\. Got -1\.$"):
        check_int("X", "n", -1, low=0, allow_none=True)
    with pytest.raises(ConfigError, match=r"must be a float in \(-inf, inf\)\. Got None\.$"):
        check_real("X", "r", None)
    with pytest.raises(ConfigError, match=r"must be 'a' or None\. Got 'b'\.$"):
        check_choice("X", "c", "b", ("a",), allow_none=True)

"""The hoodwink exception and warning tree.

Every error a user can trigger derives from :class:`HoodwinkError`, so one
``except HoodwinkError`` catches them all, and each also derives from the
built-in exception a Python user would expect (``ValueError`` for bad values,
``TypeError`` for a model that lacks a capability).

Tree::

    HoodwinkError
    ├── ConfigError(ValueError)          bad attack or function parameter
    ├── InputError(ValueError)           bad data passed at call time
    │   ├── OutOfBoundsError             x outside the model bounds
    │   ├── ShapeError                   wrong shape, rank or dtype
    │   └── MissingLabelsError           a figure needs true labels the run did not have
    ├── ModelOutputError                 the model returned something unusable
    ├── CapabilityError(TypeError)       the model cannot do what the attack needs
    ├── MissingDependencyError(ImportError)  an optional extra is not installed
    ├── BudgetExhaustedError             a budget (eps, queries) was too small
    └── InternalError                    a hoodwink bug: please report it

    HoodwinkWarning(UserWarning)
    ├── EpsScaleWarning                  eps looks like it is in 0..255 units
    ├── TrainingModeWarning              the model is in training mode
    ├── SanityWarning                    a sanity check of a training run fired
    └── StochasticModelWarning           the model answered the same input two ways
"""

from __future__ import annotations

__all__ = [
    "BudgetExhaustedError",
    "CapabilityError",
    "ConfigError",
    "EpsScaleWarning",
    "HoodwinkError",
    "HoodwinkWarning",
    "InputError",
    "InternalError",
    "MissingDependencyError",
    "MissingLabelsError",
    "ModelOutputError",
    "OutOfBoundsError",
    "SanityWarning",
    "ShapeError",
    "StochasticModelWarning",
    "TrainingModeWarning",
]


class HoodwinkError(Exception):
    """Base class of every error raised by hoodwink."""


class ConfigError(HoodwinkError, ValueError):
    """A parameter of an attack or function has an invalid value."""


class InputError(HoodwinkError, ValueError):
    """Data passed at call time (inputs, labels, targets) is invalid."""


class OutOfBoundsError(InputError):
    """Inputs lie outside the bounds of the model's input domain."""


class ShapeError(InputError):
    """An array has the wrong shape, rank or dtype."""


class MissingLabelsError(InputError):
    """A figure needs true labels (robust or clean accuracy) but the run had none.

    Pass ``y`` to the attack (or to ``sweep``); without labels only the success
    rate against the model's own predictions is defined.
    """


class ModelOutputError(HoodwinkError):
    """The wrapped model returned output that cannot be used (wrong shape, NaN)."""


class CapabilityError(HoodwinkError, TypeError):
    """The model lacks a capability the operation needs (e.g. gradients)."""


class MissingDependencyError(HoodwinkError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class BudgetExhaustedError(HoodwinkError):
    """The given budget was too small to reach the goal."""


class InternalError(HoodwinkError):
    """A guarantee of the library was violated: this is a hoodwink bug."""


class HoodwinkWarning(UserWarning):
    """Base class of every warning issued by hoodwink."""


class EpsScaleWarning(HoodwinkWarning):
    """eps is large relative to the input range (perhaps given in 0..255 units)."""


class TrainingModeWarning(HoodwinkWarning):
    """The model was in training mode; it is evaluated in eval mode."""


class SanityWarning(HoodwinkWarning):
    """A sanity check fired (loss at initialisation, exploding loss, ...)."""


class StochasticModelWarning(HoodwinkWarning):
    """The model gave different answers for the same input: it is random."""

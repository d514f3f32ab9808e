"""Robustness evaluation: one call for a trustworthy robust-accuracy number.

:func:`evaluate` runs a cascade of attacks (minimum-norm attacks on every
sample, then fixed-budget attacks on the samples still robust), reads exact
robust-accuracy curves from per-sample minimal norms, raises sanity flags
that catch gradient masking, and can stream its work to an SQLite file to
resume after a crash. It returns an :class:`Evaluation` record.
"""

from __future__ import annotations

from hoodwink.evaluation.core import STANDARD, evaluate, standard_attacks
from hoodwink.evaluation.flags import FLAGS, FlagInfo
from hoodwink.evaluation.record import SCHEMA, Evaluation

__all__ = ["FLAGS", "SCHEMA", "STANDARD", "Evaluation", "FlagInfo", "evaluate",
           "standard_attacks"]

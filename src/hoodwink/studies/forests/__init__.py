"""Are non-differentiable models safe from black-box attacks? The forests study.

The essay behind hoodwink argues that adversarial examples need only a
model's scores ("computing the gradient numerically or by local stochastic
search"), so random forests are not safe either, and notes that nobody had
confirmed it with experiments. This study does: it trains random forests,
gradient-boosted trees, RBF SVMs, k-NN and logistic regressions on three
datasets, adds the bundled MNIST ConvNet, attacks each with every black-box
attack at query budgets up to 10,000 per input, and measures why attacks fail
where they fail (gradient estimates that are exactly zero on
piecewise-constant scores).

The study contract (:mod:`hoodwink.studies`):

* :func:`run` returns the JSON record (schema :data:`SCHEMA`);
* :func:`report` draws the page, the figures and the verdict from a record
  alone; :func:`verdict` is the verdict paragraph on its own.

Modules: :mod:`~.models` (datasets and training), :mod:`~.core` (the study
and its definitions), :mod:`~.report` (page, figures, verdict).

Examples
--------
>>> from hoodwink.studies import forests
>>> sorted(forests.PROFILES)
['full', 'quick']
"""

from __future__ import annotations

from hoodwink.studies.forests.core import (
    ATTACKS,
    DEFINITIONS,
    PROFILES,
    SCHEMA,
    DatasetPlan,
    Profile,
    forests_study,
    run,
)
from hoodwink.studies.forests.report import CURVES, MATRIX, report, verdict

__all__ = [
    "ATTACKS",
    "CURVES",
    "DEFINITIONS",
    "MATRIX",
    "PROFILES",
    "SCHEMA",
    "DatasetPlan",
    "Profile",
    "forests_study",
    "report",
    "run",
    "verdict",
]

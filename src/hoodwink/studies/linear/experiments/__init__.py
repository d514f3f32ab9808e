"""The essay's experiments as studies: one module each, with ``run`` and ``report``.

Naming: ``hoodwink.studies.linear.experiments.<name>.run(...)`` and
``hoodwink.studies.linear.experiments.<name>.report(record)``, for ``<name>``
one of :mod:`~.train`, :mod:`~.templates`, :mod:`~.fool`,
:mod:`~.regularization`, :mod:`~.dimension` and :mod:`~.toy` (the
``hoodwink linear <name>`` commands), as for the other studies
(:mod:`hoodwink.studies.dream` ...):

* ``run(..., progress=None) -> dict``: the experiment's record, plain data
  that survives a JSON round trip exactly. Images a figure shows (templates,
  the fooling strip) are kept inside as nested lists rounded to 4 significant
  digits; a value that is never reached (an infinite smallest alpha) is
  ``None``.
* ``report(record) -> Rendered``: the page and the figures (PNG bytes by file
  name), drawn from the record alone; ``report(record).write(folder)`` writes
  ``report.json/.md/.html`` and the PNGs. A ``report.json`` read back gives
  the same page.

``train``, ``regularization`` and ``dimension`` also have ``record(...)``,
the record of a result computed by the library functions
(:func:`~hoodwink.studies.linear.train_linear`,
:func:`~hoodwink.studies.linear.regularization_study`,
:func:`~hoodwink.studies.linear.dimension_study`).

The ``run_*`` functions below compute nothing: each writes the report folder
of an already computed result in one call (kept from before the split).

Examples
--------
>>> from hoodwink.studies.linear.experiments import toy
>>> rendered = toy.report(toy.run())
>>> sorted(rendered.figures), rendered.report.record["score_adv"]
(['toy.png'], 2.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoodwink.studies.linear.experiments import (
    dimension,
    fool,
    regularization,
    templates,
    toy,
    train,
)

if TYPE_CHECKING:
    from hoodwink.reports import ReportPaths
    from hoodwink.studies.linear.datasets import ImageData
    from hoodwink.studies.linear.model import LinearModel
    from hoodwink.studies.linear.study import DimensionStudy, RegularizationStudy
    from hoodwink.studies.linear.toy import ToyResult
    from hoodwink.studies.linear.train import TrainingLog

__all__ = [
    "dimension",
    "fool",
    "regularization",
    "run_dimension",
    "run_fool",
    "run_regularization",
    "run_templates",
    "run_toy",
    "run_train",
    "templates",
    "toy",
    "train",
]


def run_train(model: LinearModel, log: TrainingLog, data: ImageData, out: str | Path
              ) -> ReportPaths:
    """Save ``model.safetensors`` and write the training report into ``out``."""
    saved = model.save(Path(out) / "model.safetensors")
    return train.report(train.record(model, log, data, model_file=saved)).write(out)


def run_templates(model: LinearModel, out: str | Path, *, source: str = "") -> ReportPaths:
    """Write the templates report of ``model`` into ``out``."""
    return templates.report(templates.run(model, source=source)).write(out)


def run_fool(model: LinearModel, data: ImageData, out: str | Path, **kwargs: Any
             ) -> ReportPaths:
    """Run :func:`fool.run <hoodwink.studies.linear.experiments.fool.run>`; write its report."""
    return fool.report(fool.run(model, data, **kwargs)).write(out)


def run_regularization(study: RegularizationStudy, out: str | Path) -> ReportPaths:
    """Write the report of a finished regularisation study into ``out``."""
    return regularization.report(regularization.record(study)).write(out)


def run_dimension(study: DimensionStudy, out: str | Path) -> ReportPaths:
    """Write the report of a finished dimension study into ``out``."""
    return dimension.report(dimension.record(study)).write(out)


def run_toy(result: ToyResult, out: str | Path) -> ReportPaths:
    """Write the report of a computed toy example into ``out``."""
    rec = toy.run(result.alpha, result.x, result.w, result.b)
    return toy.report(rec).write(out)

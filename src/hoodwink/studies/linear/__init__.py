"""Linear classifiers over raw pixels: the experiments of "Breaking Linear Classifiers".

Karpathy's essay argues that adversarial examples come from linearity itself
and shows it with softmax classifiers on raw pixels. This package makes each
experiment a function (and, through :mod:`hoodwink.cli.linear`, a command):

* :func:`train_linear`: softmax or linear SVM with the essay's sanity checks
  (initial loss against ln C, exploding loss, negligible weight decay);
* :func:`plot_templates`, :func:`roughness`: the class templates;
* :func:`template_attack`, :func:`minimal_alpha`, :func:`minimal_distance`:
  fooling with the model's own templates, with closed forms;
* :func:`regularization_study`, :func:`dimension_study`: smoothness against
  foolability, and the ε·n·m argument on trained models;
* :func:`toy_example`: the 10-dimensional logistic-regression example;
* :func:`load_data`: bundled MNIST, a folder of class sub-folders, or an .npz.

The studies (the study contract of :mod:`hoodwink.studies`)
-----------------------------------------------------------
Each experiment is also a study module named like its command,
``hoodwink.studies.linear.experiments.<name>`` for ``<name>`` in ``train``,
``templates``, ``fool``, ``regularization``, ``dimension`` and ``toy``, with
``run(..., progress=None) -> record`` (plain data that survives JSON exactly,
the figures' pixels included) and ``report(record) -> Rendered`` (the page and
the PNG figures, drawn from the record alone). ``hoodwink linear <name>`` is
``<name>.report(<name>.run(...)).write(folder)``. The functions above stay the
library-level building blocks: they return models, tensors and result objects.

Modules: :mod:`~hoodwink.studies.linear.model` (:class:`LinearModel`),
:mod:`~hoodwink.studies.linear.train`, :mod:`~hoodwink.studies.linear.sanity`,
:mod:`~hoodwink.studies.linear.templates`, :mod:`~hoodwink.studies.linear.fool`
(closed forms), :mod:`~hoodwink.studies.linear.study`,
:mod:`~hoodwink.studies.linear.toy`, :mod:`~hoodwink.studies.linear.datasets` and
:mod:`~hoodwink.studies.linear.experiments`.
"""

from hoodwink.studies.linear.datasets import ImageData, load_data, parse_size, synthetic_images
from hoodwink.studies.linear.fool import (
    FoolCurve,
    alpha_curve,
    fooling_confidence,
    measured_minimal_alpha,
    minimal_alpha,
    minimal_distance,
    template_attack,
    template_direction,
)
from hoodwink.studies.linear.model import LinearModel
from hoodwink.studies.linear.sanity import (
    ExplodingLossWarning,
    InitialLossWarning,
    SanityFlag,
    WeakRegularizationWarning,
    expected_initial_loss,
)
from hoodwink.studies.linear.study import (
    DimensionStudy,
    RegularizationStudy,
    dimension_study,
    essay_findings,
    regularization_study,
)
from hoodwink.studies.linear.templates import (
    draw_templates,
    plot_templates,
    roughness,
    template_images,
)
from hoodwink.studies.linear.toy import ToyResult, toy_example
from hoodwink.studies.linear.train import TrainingLog, train_linear

__all__ = [
    "DimensionStudy",
    "ExplodingLossWarning",
    "FoolCurve",
    "ImageData",
    "InitialLossWarning",
    "LinearModel",
    "RegularizationStudy",
    "SanityFlag",
    "ToyResult",
    "TrainingLog",
    "WeakRegularizationWarning",
    "alpha_curve",
    "dimension_study",
    "draw_templates",
    "essay_findings",
    "expected_initial_loss",
    "fooling_confidence",
    "load_data",
    "measured_minimal_alpha",
    "minimal_alpha",
    "minimal_distance",
    "parse_size",
    "plot_templates",
    "regularization_study",
    "roughness",
    "synthetic_images",
    "template_attack",
    "template_direction",
    "template_images",
    "toy_example",
    "train_linear",
]

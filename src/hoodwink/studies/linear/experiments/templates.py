"""The class templates as a study: ``run`` gives the record, ``report`` the grid and table.

The record keeps the templates as drawn (each scaled per class, see
:func:`~hoodwink.studies.linear.template_images`), rounded to a few
significant digits, so the grid can be redrawn from the record alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import as_array, body, plain, rounded
from hoodwink.studies.linear.model import LinearModel
from hoodwink.studies.linear.templates import draw_templates, roughness, template_images

__all__ = ["MAX_CLASSES", "draw", "report", "run", "template_record"]

#: Templates kept in a record (and drawn): the first 100 classes.
MAX_CLASSES = 100

ROUGHNESS_DEFINITION = ("sum of squared differences of neighbouring pixels / sum of squares; "
                        "0 = flat, about 4 = white noise")


def template_record(model: LinearModel) -> dict[str, Any]:
    """The templates as a record entry: ``images`` (display values), ``roughness``, ``names``.

    ``images`` holds the first :data:`MAX_CLASSES` templates as
    :func:`~hoodwink.studies.linear.template_images` gives them (grey: (H, W)
    in [-1, 1]; colour: (H, W, 3) in [0, 1]), rounded to 4 significant digits.
    """
    return {
        "images": rounded(template_images(model)[:MAX_CLASSES]),
        "roughness": [float(v) for v in roughness(model.templates()).tolist()],
        "names": [model.name(c) for c in range(model.num_classes)],
    }


def draw(entry: Mapping[str, Any], title: str | None = None) -> bytes:
    """The grid PNG of a :func:`template_record` entry."""
    return draw_templates(as_array(entry["images"]), entry["names"], entry["roughness"],
                          title=title)


def run(
    model: LinearModel | str | Path,
    *,
    source: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Measure every class's template and return the record.

    Parameters
    ----------
    model : LinearModel, or the path of one saved with ``LinearModel.save``
    source : str, optional
        Where the model came from, shown in the report; default the path
        given, else "".
    progress : callable, optional
        ``progress(done, classes, name)`` after each class.

    Returns
    -------
    dict
        ``model`` (kind, input shape, classes, source), ``classes`` (per class:
        ``class``, ``roughness``, ``l2_norm``, ``l1_norm``, ``bias``),
        ``roughness_definition`` and ``templates`` (:func:`template_record`).
    """
    if not isinstance(model, LinearModel):
        source = str(model) if source is None else source
        model = LinearModel.load(model)
    tick = as_callback(progress)
    rough = roughness(model.templates()).tolist()
    w = model.weight.to(torch.float64)
    classes = []
    for c in range(model.num_classes):
        classes.append({"class": model.name(c), "roughness": rough[c],
                        "l2_norm": float(w[c].norm()), "l1_norm": float(w[c].abs().sum()),
                        "bias": float(model.bias[c])})
        tick(c + 1, model.num_classes, model.name(c))
    rec = plain({
        "model": {"kind": model.kind, "input_shape": list(model.input_shape),
                  "num_classes": model.num_classes, "source": source or ""},
        "classes": classes,
        "roughness_definition": ROUGHNESS_DEFINITION,
        "templates": template_record(model),
    })
    return check_record(rec, "linear templates")


def report(record: Mapping[str, Any]) -> Rendered:
    """The page and ``templates.png``, from the record alone."""
    r = body(record)
    rep = Report("linear.templates", "Class templates", r)
    rep.text("Each class's score is the dot product of the image with its weight row, so the "
             "weights reshaped to an image are the template the class looks for. Grey-scale "
             "templates are drawn red (positive) and blue (negative), each scaled by its own "
             "largest |weight|; colour templates are min-max scaled per class.")
    rep.figure("templates.png", "Class templates")
    rep.heading("Per class")
    rep.table(["class", "roughness", "‖w‖₂", "‖w‖₁", "bias"],
              [[c["class"], c["roughness"], c["l2_norm"], c["l1_norm"], c["bias"]]
               for c in r["classes"]])
    return Rendered(rep, {"templates.png": draw(r["templates"])})

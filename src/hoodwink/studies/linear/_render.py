"""Shared pieces of the linear studies' records and figures.

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot state, so nothing global changes) and returned as PNG bytes.
Records hold plain data only: :func:`plain` turns tensors and arrays into
lists and non-finite numbers into ``None`` ("never", "undefined"), and
:func:`rounded` keeps images small.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from hoodwink.reports import to_jsonable

__all__ = ["DIGITS", "DPI", "as_array", "body", "figure", "never", "plain", "png", "rounded"]

#: Resolution of every figure of the linear studies.
DPI = 110
#: Significant digits kept for image values in a record: far below what a
#: colour map can show, and small enough that 7,840 template values stay ~60 kB.
DIGITS = 4


def figure(width: float, height: float) -> Any:
    """A new matplotlib figure with an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def png(fig: Any, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def plain(obj: Any) -> Any:
    """Plain JSON data: tensors and arrays as lists, tuples as lists, non-finite floats as None."""
    obj = to_jsonable(obj)
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def rounded(values: Any, digits: int = DIGITS) -> Any:
    """Nested lists of ``values`` (array or tensor) rounded to ``digits`` significant digits."""
    a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values,
                   dtype=np.float64)
    flat = [float(f"{v:.{digits}g}") for v in a.ravel().tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(a.shape).tolist()


def as_array(values: Any) -> npt.NDArray[np.float64]:
    """A record's nested list back as a float64 array."""
    return np.asarray(values, dtype=np.float64)


#: Keys that :meth:`hoodwink.reports.Report.full_record` adds to a written record.
_WRITTEN = ("schema", "title", "environment", "figures")


def body(record: Any) -> dict[str, Any]:
    """The record without what writing it added (schema, title, environment, figure list).

    So a report drawn from a ``report.json`` read back holds the same record
    as one drawn from :func:`run`'s result.
    """
    return {k: v for k, v in record.items() if k not in _WRITTEN}


def never(v: Any, digits: int = 4) -> str:
    """A number for a page: ``None`` (a non-finite value in the record) reads "never"."""
    return "never" if v is None else f"{v:.{digits}g}"

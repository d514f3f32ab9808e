"""Shared pieces of the study contract: rendered reports, images in records.

Every study is a pair ``run(...) -> record`` and ``report(record) ->
Rendered`` (see :mod:`hoodwink.studies`). This module holds what the pairs
share: the :class:`Rendered` result of ``report``, writing it to a folder, and
the encoding of pixels inside a record (PNG bytes as base64 text), so that a
record is self-contained and a report can be drawn from the JSON file alone.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hoodwink.errors import InternalError
from hoodwink.reports import Report, ReportPaths, atomic_write_bytes

__all__ = ["Rendered", "check_record", "from_b64", "to_b64"]


@dataclass
class Rendered:
    """What ``report(record)`` returns: the report and its figures.

    Attributes
    ----------
    report : Report
        Blocks (text, tables, figure links) and the record it was drawn from.
    figures : dict of str to bytes
        PNG data by file name, the names the report's figure blocks link.
    """

    report: Report
    figures: dict[str, bytes] = field(default_factory=dict)

    def markdown(self) -> str:
        """The Markdown page."""
        return self.report.markdown()

    def write(self, folder: str | Path, stem: str = "report") -> ReportPaths:
        """Write the figures, then ``<stem>.json/.md/.html`` into ``folder`` (created)."""
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        for name, data in self.figures.items():
            atomic_write_bytes(d / name, data)
        return self.report.write(d, stem=stem)


def to_b64(data: bytes) -> str:
    """Bytes (a PNG file) as base64 text, for a JSON record."""
    return base64.b64encode(data).decode("ascii")


def from_b64(text: str) -> bytes:
    """The bytes :func:`to_b64` encoded."""
    return base64.b64decode(text.encode("ascii"))


def check_record(record: Any, owner: str) -> dict[str, Any]:
    """Return ``record`` after checking it is data only and survives JSON exactly.

    Raises
    ------
    InternalError
        A study produced a record that is not plain JSON data: a library bug.
    """
    try:
        back = json.loads(json.dumps(record, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InternalError(
            f"{owner} produced a record that is not plain JSON data ({exc}); please report it."
        ) from exc
    if back != record or not isinstance(record, dict):
        raise InternalError(
            f"{owner} produced a record that does not survive a JSON round trip; please "
            "report it."
        )
    return record

"""Transferability: do adversarial examples made on one model fool another?

The study crafts adversarial examples on a *source* model with white-box
attacks and feeds them to every *target* model; see
:mod:`hoodwink.studies.transfer.core` for the exact definition of every rate
(also stored in every record as :data:`DEFINITIONS`).

The study contract (:mod:`hoodwink.studies`):

* :func:`run` runs :func:`zoo_transfer_study` and returns its JSON record
  (:meth:`TransferStudy.to_dict`); for your own models call
  :func:`transfer_study` and take ``.to_dict()``;
* :func:`report` draws the heat map and the Markdown/HTML page from a record
  alone (it rebuilds the cells with :meth:`TransferStudy.from_dict`).

Modules: :mod:`~.records` (cells and the record), :mod:`~.core` (the study),
:mod:`~.zoo` (between zoo models on their bundled data), :mod:`~.report`
(heat map and text). The photos moved to :mod:`hoodwink.data.photos`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from hoodwink.data.photos import PHOTOS, natural_photos
from hoodwink.progress import ProgressCallback
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.transfer.core import _random_sign, transfer_study
from hoodwink.studies.transfer.records import (
    ATTACK_NAMES,
    DEFINITIONS,
    NOISE,
    SCHEMA,
    TransferCell,
    TransferMode,
    TransferStudy,
    format_eps,
)
from hoodwink.studies.transfer.report import (
    render_heatmap,
    transfer_report,
    write_transfer_report,
)
from hoodwink.studies.transfer.zoo import zoo_transfer_study

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ATTACK_NAMES",
    "DEFINITIONS",
    "NOISE",
    "PHOTOS",
    "SCHEMA",
    "TransferCell",
    "TransferMode",
    "TransferParams",
    "TransferStudy",
    "format_eps",
    "natural_photos",
    "render_heatmap",
    "report",
    "run",
    "transfer_report",
    "transfer_study",
    "write_transfer_report",
    "zoo_transfer_study",
]

# Re-exported for the tests of the noise baseline.
_random_sign = _random_sign

#: File name of the heat map a report links.
FIGURE = "transfer.png"


class TransferParams(TypedDict, total=False):
    """The keywords of :func:`zoo_transfer_study` that :func:`run` passes on (defaults: its own)."""

    n: int
    eps: float | Sequence[float] | None
    attacks: Sequence[str]
    targeted: bool | None
    target: Literal["random"] | int | str
    steps: int
    seed: int
    progress: ProgressCallback | None


def run(
    source: str,
    to: Sequence[str],
    *,
    per_sample: bool = True,
    **params: Unpack[TransferParams],
) -> dict[str, Any]:
    """Run :func:`zoo_transfer_study` and return its record.

    Parameters
    ----------
    source, to
        As in :func:`zoo_transfer_study`.
    per_sample : bool, default True
        Keep the per-sample predictions in the record (the report does not
        need them).
    **params
        Any keyword of :func:`zoo_transfer_study` (:class:`TransferParams`): n,
        eps, attacks, targeted, target, steps, seed, progress; with its defaults.

    Returns
    -------
    dict
        Data only; ``json.loads(json.dumps(record)) == record``.
    """
    study = zoo_transfer_study(source, to, **params)
    return check_record(study.to_dict(per_sample=per_sample), "transfer.run")


def report(record: Mapping[str, Any]) -> Rendered:
    """The heat map and the report of a transfer record, from the record alone.

    Parameters
    ----------
    record : dict
        From :func:`run`, :meth:`TransferStudy.to_dict`, or a ``transfer.json``
        read back.

    Returns
    -------
    Rendered
        ``.write(folder, stem="transfer")`` writes it.
    """
    study = TransferStudy.from_dict(record)
    rep = transfer_report(study, figure=FIGURE)
    rep.record = {k: v for k, v in record.items() if k != "environment"}
    return Rendered(rep, {FIGURE: render_heatmap(study)})

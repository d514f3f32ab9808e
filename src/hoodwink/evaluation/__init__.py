"""Evaluations built on the attacks: transferability studies (more to come)."""

from hoodwink.evaluation.transfer import (
    DEFINITIONS,
    TransferCell,
    TransferStudy,
    natural_photos,
    transfer_study,
    write_transfer_report,
    zoo_transfer_study,
)

__all__ = [
    "DEFINITIONS",
    "TransferCell",
    "TransferStudy",
    "natural_photos",
    "transfer_study",
    "write_transfer_report",
    "zoo_transfer_study",
]

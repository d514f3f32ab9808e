"""Defences, studied honestly: each one is a reproducible experiment with a report.

* :func:`background_class_study`: add fooling images to an extra "background"
  class and retrain, round after round (Nguyen et al., CVPR 2015, section 3.3).
"""

from hoodwink.defences.background import (
    BackgroundRound,
    BackgroundStudy,
    background_class_study,
    write_background_report,
)

__all__ = [
    "BackgroundRound",
    "BackgroundStudy",
    "background_class_study",
    "write_background_report",
]

"""Data: small datasets carried by installed packages (nothing is downloaded) and users' files."""

from __future__ import annotations

from hoodwink.data.files import Dataset, load_dataset
from hoodwink.data.mnist import Split, load_digits8x8, load_mnist

__all__ = ["Dataset", "Split", "load_dataset", "load_digits8x8", "load_mnist"]

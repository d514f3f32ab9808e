"""Small datasets carried by installed packages, loaded offline (nothing is downloaded)."""

from __future__ import annotations

from hoodwink.data.mnist import Split, load_digits8x8, load_mnist

__all__ = ["Split", "load_digits8x8", "load_mnist"]

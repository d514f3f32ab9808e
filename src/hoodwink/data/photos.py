"""Natural photos that ship inside installed packages: offline ImageNet-style inputs.

scikit-image bundles a few CC0 / public-domain photos (``chelsea``, a cat;
``coffee``; ``rocket``; ``astronaut``; ``motorcycle``) and scikit-learn two
CC-BY sample photos (``china``, a temple; ``flower``, a daisy). They let the
ImageNet models be attacked and compared without a download.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hoodwink.errors import ConfigError, MissingDependencyError

__all__ = ["PHOTOS", "natural_photos"]

#: Natural photos available offline, in the order :func:`natural_photos` returns them:
#: scikit-image's (CC0 / public domain) and scikit-learn's two sample photos (CC-BY).
PHOTOS: tuple[str, ...] = (
    "chelsea", "coffee", "rocket", "astronaut", "motorcycle", "china", "flower",
)
_SKLEARN_PHOTOS = ("china", "flower")


# ---------------------------------------------------------------------- zoo and data
def natural_photos(names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Natural photos that ship inside installed packages, at native resolution.

    Parameters
    ----------
    names : list of str, optional
        Any of :data:`PHOTOS`: scikit-image's ``chelsea`` (a cat), ``coffee``
        (espresso), ``rocket``, ``astronaut``, ``motorcycle`` (the left view of
        ``stereo_motorcycle``), and scikit-learn's ``china`` (a temple) and
        ``flower`` (a daisy). Default: all of them, without the two
        scikit-learn photos when scikit-learn is not installed.

    Returns
    -------
    dict of str to torch.Tensor
        Each photo as a float tensor of shape (1, 3, H, W) with values
        ``k / 255``, in the order asked for.

    Raises
    ------
    ConfigError
        Unknown photo name.
    MissingDependencyError
        scikit-image (or scikit-learn, for a photo named explicitly) is missing.
    """
    try:
        import skimage.data as skdata
    except ImportError as exc:
        raise MissingDependencyError(
            "The ImageNet photos come from scikit-image: pip install 'hoodwink[imagenet]'."
        ) from exc
    have_sklearn = True
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        have_sklearn = False
    if names is None:
        wanted = [p for p in PHOTOS if have_sklearn or p not in _SKLEARN_PHOTOS]
    else:
        if isinstance(names, str):
            names = [names]
        wanted = [str(p).strip().lower() for p in names]
        unknown = [p for p in wanted if p not in PHOTOS]
        if unknown or not wanted:
            raise ConfigError(
                f"Unknown photo name(s) {unknown or names!r}; choose from {', '.join(PHOTOS)}."
            )
        if not have_sklearn and any(p in _SKLEARN_PHOTOS for p in wanted):
            raise MissingDependencyError(
                "The photos 'china' and 'flower' come from scikit-learn: "
                "pip install 'hoodwink[sklearn]'."
            )
    out: dict[str, torch.Tensor] = {}
    sample_images: list[np.ndarray] | None = None
    for p in wanted:
        if p == "motorcycle":
            arr = np.asarray(skdata.stereo_motorcycle()[0])  # type: ignore[no-untyped-call]
        elif p in _SKLEARN_PHOTOS:
            if sample_images is None:
                sample_images = list(load_sample_images().images)
            arr = np.asarray(sample_images[_SKLEARN_PHOTOS.index(p)])
        else:
            arr = np.asarray(getattr(skdata, p)())
        t = torch.from_numpy(np.array(arr[..., :3], dtype=np.uint8, copy=True)).permute(2, 0, 1)
        out[p] = t[None].float() / 255.0
    return out

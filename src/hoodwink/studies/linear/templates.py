"""Class templates: each class's weight row seen as an image, and how rough it is.

A linear classifier scores class c by the dot product of the image with the
weight row ``w_c``, so ``w_c`` reshaped to the image's shape is the *template*
the class looks for. :func:`plot_templates` draws every template in a grid,
scaled per class so each pattern is visible; :func:`roughness` measures how
noisy a template is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from hoodwink.errors import ConfigError
from hoodwink.studies.linear.train import LinearModel

__all__ = ["plot_templates", "roughness", "template_images"]


def roughness(templates: torch.Tensor) -> torch.Tensor:
    """Normalised Dirichlet energy of each template: 0 is flat, about 4 is white noise.

    For a template ``w`` of shape (C, H, W) (or (D,) for non-image input),

    ``roughness(w) = sum over neighbouring pixel pairs (p, q) of (w_p - w_q)^2 / sum_p w_p^2``,

    with pairs taken horizontally and vertically within each channel. It is
    invariant to the scale of ``w`` (so weight decay alone does not change it)
    and measures the share of the template's energy at high spatial
    frequencies: 0 for a constant template, about 4 for i.i.d. noise on a
    2-D grid (about 2 on a 1-D one), and small for smooth, blob-like templates.

    Parameters
    ----------
    templates : torch.Tensor, shape (K, *input_shape)
        K templates, e.g. :meth:`LinearModel.templates`.

    Returns
    -------
    torch.Tensor, shape (K,)
        One value per template; 0 for an all-zero template.
    """
    t = templates.to(torch.float64)
    k = t.shape[0]
    if t.ndim <= 2:  # flat input: neighbours along the one axis
        flat = t.reshape(k, -1)
        diff = (flat[:, 1:] - flat[:, :-1]).pow(2).sum(dim=1)
    else:
        diff = (t[..., 1:, :] - t[..., :-1, :]).pow(2).reshape(k, -1).sum(dim=1)
        diff = diff + (t[..., :, 1:] - t[..., :, :-1]).pow(2).reshape(k, -1).sum(dim=1)
    energy = t.reshape(k, -1).pow(2).sum(dim=1)
    return torch.where(energy > 0, diff / energy.clamp_min(1e-300), torch.zeros_like(energy))


def template_images(model: LinearModel) -> npt.NDArray[np.float64]:
    """Templates as displayable images, scaled per class.

    Returns
    -------
    ndarray, shape (C, H, W) or (C, H, W, 3)
        Grey-scale models: each template divided by its own max |w|, so values
        lie in [-1, 1] with 0 meaning "no weight" (draw with a diverging colour
        map). Colour models: each template min-max scaled to [0, 1] over all
        its channels, so hues are kept (as in the essay's figures).
    """
    t = model.templates().detach().to(torch.float64)
    if t.ndim == 2:  # flat input: show as a 1-row image
        t = t[:, None, None, :]
    elif t.ndim == 3:
        t = t[:, None]
    c = t.shape[0]
    if t.shape[1] == 3:
        lo = t.reshape(c, -1).amin(dim=1).reshape(c, 1, 1, 1)
        hi = t.reshape(c, -1).amax(dim=1).reshape(c, 1, 1, 1)
        out = (t - lo) / (hi - lo).clamp_min(1e-300)
        return out.permute(0, 2, 3, 1).numpy()
    grey = t[:, 0] if t.shape[1] == 1 else t.mean(dim=1)
    scale = grey.reshape(c, -1).abs().amax(dim=1).clamp_min(1e-300).reshape(c, 1, 1)
    return (grey / scale).numpy()


def plot_templates(
    model: LinearModel,
    path: str | Path,
    *,
    classes: Sequence[int] | None = None,
    columns: int = 10,
    title: str | None = None,
) -> Path:
    """Draw the class templates in a grid PNG.

    Parameters
    ----------
    model : LinearModel
    path : str or Path
        The PNG to write.
    classes : sequence of int, optional
        Which classes to show (default: all, at most the first 100).
    columns : int, default 10
    title : str, optional

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ConfigError(f"The 'columns' parameter must be an int >= 1. Got {columns!r}.")
    chosen = list(classes) if classes is not None else list(range(min(model.num_classes, 100)))
    bad = [c for c in chosen if not 0 <= c < model.num_classes]
    if bad or not chosen:
        raise ConfigError(f"The 'classes' parameter must list classes in 0..{model.num_classes - 1}"
                          f". Got {list(chosen)!r}.")
    images = template_images(model)
    rough = roughness(model.templates()).tolist()
    cols = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, chosen, strict=False):
        img = images[c]
        if img.ndim == 3:
            ax.imshow(img, interpolation="nearest")
        else:
            ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(f"{model.name(c)}\nrough {rough[c]:.2f}", fontsize=7)
    fig.suptitle(title or "Class templates (weights as images, scaled per class)", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

"""Class templates: each class's weight row seen as an image, and how rough it is.

A linear classifier scores class c by the dot product of the image with the
weight row ``w_c``, so ``w_c`` reshaped to the image's shape is the *template*
the class looks for. :func:`plot_templates` draws every template in a grid,
scaled per class so each pattern is visible (:func:`draw_templates` draws the
same grid from the values alone, e.g. read back from a record);
:func:`roughness` measures how noisy a template is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from hoodwink._validation import check_int, is_int, reject
from hoodwink.reports import atomic_write_bytes
from hoodwink.studies.linear._render import figure, png
from hoodwink.studies.linear.model import LinearModel

__all__ = ["draw_templates", "plot_templates", "roughness", "template_images"]


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
    data = draw_templates(template_images(model), [model.name(c) for c in
                                                   range(model.num_classes)],
                          roughness(model.templates()).tolist(), classes=classes,
                          columns=columns, title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    return out


def draw_templates(
    images: npt.NDArray[np.float64],
    names: Sequence[str],
    rough: Sequence[float],
    *,
    classes: Sequence[int] | None = None,
    columns: int = 10,
    title: str | None = None,
) -> bytes:
    """The grid of templates as PNG bytes, from :func:`template_images` values.

    Parameters
    ----------
    images : ndarray, shape (C, H, W) or (C, H, W, 3)
        As :func:`template_images` returns them (or read back from a record).
    names : sequence of str
        Class names, one per image.
    rough : sequence of float
        Each template's :func:`roughness`, shown under its name.
    classes, columns, title
        As in :func:`plot_templates`.

    Returns
    -------
    bytes
        A PNG file.
    """
    n = len(images)
    columns = check_int("plot_templates", "columns", columns, low=1)
    chosen = list(classes) if classes is not None else list(range(min(n, 100)))
    if not chosen or any(not is_int(c) or not 0 <= c < n for c in chosen):
        reject("plot_templates", "classes", classes, f"a non-empty list of classes in 0..{n - 1}")
    cols = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig = figure(1.4 * cols, 1.6 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, chosen, strict=False):
        img = images[c]
        if img.ndim == 3:
            ax.imshow(img, interpolation="nearest")
        else:
            ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(f"{names[c]}\nrough {rough[c]:.2f}", fontsize=7)
    fig.suptitle(title or "Class templates (weights as images, scaled per class)", fontsize=9)
    fig.tight_layout()
    return png(fig)

"""The transfer study between pretrained zoo models, on their bundled data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from hoodwink._validation import check_int
from hoodwink.data.photos import natural_photos
from hoodwink.errors import ConfigError
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.studies.transfer.core import transfer_study
from hoodwink.studies.transfer.records import ATTACK_NAMES, TransferStudy

__all__ = ["zoo_transfer_study"]

_MNIST_EPS: tuple[float, ...] = (0.1, 0.2)
_IMAGENET_EPS: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)


def _family(name: str) -> str:
    return "mnist" if name.strip().lower().startswith("mnist") else "imagenet"


def zoo_transfer_study(
    source: str,
    to: Sequence[str],
    *,
    n: int = 500,
    eps: float | Sequence[float] | None = None,
    attacks: Sequence[str] = ATTACK_NAMES,
    targeted: bool | None = None,
    target: Literal["random"] | int | str = "random",
    steps: int = 20,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> TransferStudy:
    """:func:`transfer_study` between pretrained zoo models, on their bundled data.

    MNIST models are compared on the first ``n`` held-out digits
    (``hoodwink.data.load_mnist("test")``, with their true labels); ImageNet
    models on the first ``n`` of :func:`natural_photos` at their native sizes
    (each model resizes differentiably), unlabelled, so each model's clean
    prediction is its reference label.

    Parameters
    ----------
    source : str
        A name from ``hoodwink.zoo.available()``.
    to : list of str
        Target model names of the same family (MNIST or ImageNet).
    n : int >= 1, default 500
        Samples (for ImageNet: photos, at most ``len(PHOTOS)``).
    eps : float or list of float, optional
        Default: 0.1 and 0.2 for MNIST; 2/255, 4/255 and 8/255 for ImageNet.
    attacks, targeted, steps, seed, progress
        As in :func:`transfer_study`.
    target : "random", int or str
        Targeted mode's class: random per sample, an index, or an ImageNet
        class name (e.g. ``"goldfish"``).

    Returns
    -------
    TransferStudy

    Raises
    ------
    ConfigError
        Unknown model name, mixed families, or a bad parameter.
    """
    from hoodwink import zoo

    if isinstance(to, str):
        to = [t for t in to.split(",") if t.strip()]
    names = [source, *to]
    known = zoo.available()
    for nm in names:
        if not isinstance(nm, str) or nm.strip().lower() not in known:
            raise ConfigError(f"Unknown model {nm!r}. Available: {', '.join(known)}.")
    names = [nm.strip().lower() for nm in names]
    if len(names) < 2:
        raise ConfigError("Give at least one target model (--to), e.g. --to mnist-linear.")
    if len(set(names)) != len(names):
        raise ConfigError(f"Each model may appear once; got {names}.")
    families = {_family(nm) for nm in names}
    if len(families) != 1:
        raise ConfigError(
            f"Transfer needs models that take the same inputs; {names} mix MNIST and ImageNet "
            "models."
        )
    family = families.pop()
    n = int(check_int("zoo_transfer_study", "n", n, low=1))
    target_spec: Literal["random"] | int = "random"
    if isinstance(target, str) and target.strip().lower() != "random":
        s = target.strip()
        if s.isdigit():
            target_spec = int(s)
        elif family == "imagenet":
            from hoodwink.zoo.imagenet import resolve_class

            target_spec = resolve_class(s)
        else:
            raise ConfigError(f"An MNIST target must be a digit 0..9 or 'random'. Got {target!r}.")
    elif isinstance(target, int):
        target_spec = target
    report = as_callback(progress)
    if eps is None:
        eps = _MNIST_EPS if family == "mnist" else _IMAGENET_EPS
    xs: torch.Tensor | list[torch.Tensor]
    ys: torch.Tensor | None
    if family == "mnist":
        from hoodwink.data.mnist import load_mnist

        x_all, y_all = load_mnist("test")
        xs, ys = x_all[:n], y_all[:n]
        data = f"first {len(xs)} of load_mnist('test') (true labels)"
    else:
        report(0, 0, "loading the photos")
        photos = natural_photos()
        chosen = list(photos)[:n]
        xs, ys = [photos[p] for p in chosen], None
        data = (f"photos {', '.join(chosen)} at native size (unlabelled: each model's clean "
                "prediction is its reference label)")
    models = {}
    for i, nm in enumerate(names):
        report(0, 0, f"loading {nm} ({i + 1}/{len(names)})")
        models[nm] = zoo.load(nm)
    return transfer_study(
        models[names[0]], {nm: models[nm] for nm in names[1:]}, xs, ys, source_name=names[0],
        attacks=attacks, eps=eps, targeted=targeted, target=target_spec, steps=steps,
        seed=seed, data=data, progress=progress,
    )

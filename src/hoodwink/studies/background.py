"""The background-class defence against fooling images, and why it fails.

Nguyen, Yosinski and Clune (*Deep Neural Networks are Easily Fooled*, CVPR
2015, section 3.3) tried the obvious fix: give the network an extra class,
"background", fill it with the fooling images that fooled it, retrain, and
repeat. On MNIST it did not help: every retrained network was fooled again, at
the same confidence. The essay this project follows cites that result.

:func:`background_class_study` reruns the experiment on an
:class:`~hoodwink.zoo.mnist.MnistCNN` with 11 outputs, cheaply enough for a
CPU: round 0 trains the network on the 4,000 ``load_mnist("train")`` digits
(the background class has no images yet); each round then grows fooling images
from noise for the ten digits with :func:`hoodwink.studies.dream.dream`, adds them to
the background class, and retrains (fine-tunes, or trains from scratch). Every
round records the clean accuracy on ``load_mnist("test")``, how confident the
new fooling images get and how many gradient steps they need, and how many of
the previous round's fooling images the retrained network now rejects.
:func:`write_background_report` renders the figure and the versioned report.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from hoodwink._validation import check_int, check_seed
from hoodwink.attacks.pgd import MAX_STEPS
from hoodwink.errors import ConfigError
from hoodwink.models.torch import TorchClassifier
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.reports import Report
from hoodwink.stats import differ
from hoodwink.studies._record import check_record
from hoodwink.studies.background_report import (
    _NOISE_SIZE,
    page,
    report,
    write_background_report,
)
from hoodwink.studies.dream import NGUYEN_CONFIDENCE, DreamResult, dream

__all__ = [
    "BackgroundRound",
    "BackgroundStudy",
    "background_class_study",
    "report",
    "run",
    "write_background_report",
]

_log = logging.getLogger(__name__)

Retrain = Literal["finetune", "scratch"]

BACKGROUND = 10
_OWNER = "background_class_study"
CLASS_NAMES = tuple(str(i) for i in range(10)) + ("background",)


@dataclass(frozen=True)
class BackgroundRound:
    """What one round's network does on clean digits and against new fooling images.

    Attributes
    ----------
    round : int
        0 is the network trained on digits only; round r was retrained after
        the fooling images of rounds 0 .. r-1 joined the background class.
    background_size : int
        Background images the network was trained with.
    clean_accuracy : float
        Accuracy on the clean test digits (a "background" answer counts wrong).
    clean_as_background : float
        Fraction of clean test digits classified as background.
    noise_as_background : float
        Fraction of fresh uniform-noise images classified as background.
    previous_rejected : float or None
        Fraction of the fooling images made against the previous round's
        network that this network classifies as background (None in round 0).
    fooling_n : int
        Fooling images grown against this network, ``fooling_per_round``.
    start_confidence_mean : float
        Mean target probability of the uniform-noise starts, before any step:
        how far the network puts noise from the digits.
    confidence_mean : float
        Mean target probability the fooling images reached (each stops at the
        threshold, so this is at most a little above it when all succeed).
    reached_threshold : float
        Fraction reaching the study's confidence (0.996 by default).
    reached_099 : float
        Fraction reaching 0.99.
    steps_mean, steps_median : float
        Gradient steps to the threshold; an image that never reached it counts
        as the step budget, so these are lower bounds when some failed.
    steps_median_099 : float or None
        Median steps to 0.99 among the images that got there.
    train_time_s, dream_time_s : float
    """

    round: int
    background_size: int
    clean_accuracy: float
    clean_as_background: float
    noise_as_background: float
    previous_rejected: float | None
    fooling_n: int
    start_confidence_mean: float
    confidence_mean: float
    reached_threshold: float
    reached_099: float
    steps_mean: float
    steps_median: float
    steps_median_099: float | None
    train_time_s: float
    dream_time_s: float


@dataclass(frozen=True)
class BackgroundStudy:
    """The result of :func:`background_class_study`.

    Attributes
    ----------
    config : dict
        Every parameter of the study.
    rounds : list of BackgroundRound
        ``rounds + 1`` entries: round 0 (no background images) and each
        retraining round.
    effective : bool
        Whether the data show the defence working: in the last round at most
        half as many new fooling images reach the threshold (within the same
        step budget) as in round 0. Needing more steps does not count: the
        attacker still gets the fooling image. See :attr:`verdict`.
    verdict : str
        One paragraph stating what the figures show.
    time_s : float
    """

    config: dict[str, Any]
    rounds: list[BackgroundRound]
    effective: bool
    verdict: str
    time_s: float
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: config, per-round figures, verdict."""
        return {
            "config": dict(self.config),
            "seed": self.seed,
            "rounds": [asdict(r) for r in self.rounds],
            "effective": self.effective,
            "verdict": self.verdict,
            "time_s": self.time_s,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> BackgroundStudy:
        """Rebuild the study from its record (:meth:`to_dict`, or the JSON read back)."""
        return cls(config=dict(record["config"]),
                   rounds=[BackgroundRound(**r) for r in record["rounds"]],
                   effective=bool(record["effective"]), verdict=str(record["verdict"]),
                   time_s=float(record["time_s"]), seed=int(record["seed"]))

    def report(self, figure: str | None = None) -> Report:
        """A :class:`~hoodwink.reports.Report` of the study (figure path relative to it)."""
        return page(self, figure)


# ---------------------------------------------------------------------------- training


def _new_net(seed: int) -> torch.nn.Module:
    from hoodwink.zoo.mnist import MnistCNN

    # Initialise from a seed without disturbing the caller's global random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MnistCNN(num_classes=11)


def _train(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> float:
    """Adam on cross-entropy; returns the last epoch's mean loss."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    last = math.nan
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=generator)
        total, count = 0.0, 0
        for i in range(0, x.shape[0], batch_size):
            b = perm[i : i + batch_size]
            loss = F.cross_entropy(net(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * b.numel()
            count += b.numel()
        last = total / max(count, 1)
    net.eval()
    return last


def _fraction(mask: torch.Tensor) -> float:
    return float(mask.float().mean()) if mask.numel() else math.nan


def _round_figures(res: DreamResult) -> dict[str, Any]:
    steps = res.steps_used.tolist()
    to99 = res.steps_to(0.99)
    reached99 = to99 >= 0
    return {
        "fooling_n": len(res),
        "start_confidence_mean": float(res.history[:, 0].mean()),
        "confidence_mean": float(res.confidence.mean()),
        "reached_threshold": _fraction(res.success),
        "reached_099": _fraction(reached99 | (res.confidence >= 0.99)),
        "steps_mean": float(statistics.fmean(steps)),
        "steps_median": float(statistics.median(steps)),
        "steps_median_099": float(statistics.median(to99[reached99].tolist()))
        if bool(reached99.any()) else None,
    }


def background_class_study(
    *,
    rounds: int = 5,
    fooling_per_round: int = 100,
    epochs: int = 3,
    epochs_per_round: int = 2,
    retrain: Retrain = "finetune",
    steps: int = 1000,
    stepsize: float = 2 / 255,
    confidence: float = NGUYEN_CONFIDENCE,
    smoothness: float = 0.0,
    train_size: int | None = None,
    test_size: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> BackgroundStudy:
    """Run the background-class defence for ``rounds`` rounds on MNIST and measure it.

    Threat model of the fooling images: white-box, targeted at each of the ten
    digits, unbounded (any image in [0, 1], 8-bit), started from uniform noise;
    see :func:`hoodwink.studies.dream.dream`. The defended model is an
    :class:`~hoodwink.zoo.mnist.MnistCNN` with an 11th "background" class.

    Parameters
    ----------
    rounds : int >= 1, default 5
        Retraining rounds after round 0.
    fooling_per_round : int >= 1, default 100
        Fooling images grown per round, cycling through the ten digits.
    epochs : int >= 1, default 3
        Epochs of the round-0 training (and of every round with
        ``retrain="scratch"``).
    epochs_per_round : int >= 1, default 2
        Fine-tuning epochs per round with ``retrain="finetune"``.
    retrain : {"finetune", "scratch"}, default "finetune"
        Continue from the previous round's weights, or start again from the
        same seeded initialisation.
    steps : int >= 1, default 1000
        Step budget of each fooling image. Generous on purpose: the defence
        makes fooling images need more steps, and a tight budget would count
        that as the defence working.
    stepsize : float > 0, default 2/255
        Signed-gradient step of :func:`~hoodwink.studies.dream.dream`.
    confidence : float in (0, 1), default 0.996
        Where a fooling image stops; its success threshold.
    smoothness : float >= 0, default 0
        Passed to :func:`~hoodwink.studies.dream.dream`.
    train_size, test_size : int, optional
        Use only this many training / test digits (a seeded random subset);
        all 4,000 / 1,000 by default. Small values make a seconds-long study
        for tests.
    batch_size : int >= 1, default 64
    lr : float > 0, default 1e-3
        Adam learning rate.
    seed : int >= 0, default 0
        Seeds the initialisation, the shuffling, the subsets and the noise.
        The global random state is left untouched.
    progress : callable, optional
        ``progress(done, total, message)`` (:mod:`hoodwink.progress`): two
        units per round (training, then growing the fooling images).

    Returns
    -------
    BackgroundStudy
        ``rounds + 1`` :class:`BackgroundRound` records and a verdict.

    Raises
    ------
    ConfigError
        Any parameter outside its range.
    """
    t_start = time.perf_counter()
    rounds = check_int(_OWNER, "rounds", rounds, low=1)
    fooling_per_round = check_int(_OWNER, "fooling_per_round", fooling_per_round, low=1)
    epochs = check_int(_OWNER, "epochs", epochs, low=1)
    epochs_per_round = check_int(_OWNER, "epochs_per_round", epochs_per_round, low=1)
    steps = check_int(_OWNER, "steps", steps, low=1, high=MAX_STEPS)
    batch_size = check_int(_OWNER, "batch_size", batch_size, low=1)
    seed = check_seed(_OWNER, "seed", seed)
    if retrain not in ("finetune", "scratch"):
        raise ConfigError(
            f"The 'retrain' parameter of background_class_study must be 'finetune' or "
            f"'scratch'. Got {retrain!r}."
        )
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise ConfigError(
            f"The 'lr' parameter of background_class_study must be a float > 0. Got {lr!r}."
        )
    for name, size in (("train_size", train_size), ("test_size", test_size)):
        if size is not None:
            check_int(_OWNER, name, size, low=10)
    # dream validates confidence, stepsize and smoothness itself, but fail
    # before any training rather than after it.
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) \
            or not 0 < confidence < 1:
        raise ConfigError(
            f"The 'confidence' parameter of background_class_study must be a float in (0, 1). "
            f"Got {confidence!r}."
        )
    if isinstance(stepsize, bool) or not isinstance(stepsize, int | float) \
            or not 0 < stepsize < math.inf:
        raise ConfigError(
            f"The 'stepsize' parameter of background_class_study must be a float > 0. "
            f"Got {stepsize!r}."
        )
    if isinstance(smoothness, bool) or not isinstance(smoothness, int | float) \
            or not 0 <= smoothness < math.inf:
        raise ConfigError(
            f"The 'smoothness' parameter of background_class_study must be a float >= 0. "
            f"Got {smoothness!r}."
        )

    from hoodwink.data.mnist import load_mnist

    gen = torch.Generator().manual_seed(seed)
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    if train_size is not None and train_size < x_train.shape[0]:
        keep = torch.randperm(x_train.shape[0], generator=gen)[:train_size]
        x_train, y_train = x_train[keep], y_train[keep]
    if test_size is not None and test_size < x_test.shape[0]:
        keep = torch.randperm(x_test.shape[0], generator=gen)[:test_size]
        x_test, y_test = x_test[keep], y_test[keep]
    noise = torch.round(torch.rand((_NOISE_SIZE, 1, 28, 28), generator=gen) * 255) / 255

    config: dict[str, Any] = {
        "rounds": rounds, "fooling_per_round": fooling_per_round, "epochs": epochs,
        "epochs_per_round": epochs_per_round, "retrain": retrain, "steps": steps,
        "stepsize": float(stepsize), "confidence": float(confidence),
        "smoothness": float(smoothness), "train_size": int(x_train.shape[0]),
        "test_size": int(x_test.shape[0]), "noise_size": _NOISE_SIZE,
        "batch_size": batch_size, "lr": float(lr),
        "seed": seed, "model": "MnistCNN(num_classes=11)",
    }
    work = 2 * (rounds + 1)
    report = as_callback(progress)
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        _log.info("background study: %s", message)
        report(min(done, work), work, message)
        done += 1

    net = _new_net(seed)
    background = torch.empty((0, 1, 28, 28))
    targets = [i % 10 for i in range(fooling_per_round)]
    records: list[BackgroundRound] = []
    previous: torch.Tensor | None = None
    for r in range(rounds + 1):
        tick(f"round {r}: training with {background.shape[0]} background images")
        t0 = time.perf_counter()
        x = torch.cat([x_train, background])
        y = torch.cat([y_train, torch.full((background.shape[0],), BACKGROUND,
                                           dtype=torch.int64)])
        if r == 0 or retrain == "scratch":
            net = _new_net(seed)
            _train(net, x, y, epochs=epochs, batch_size=batch_size, lr=lr, generator=gen)
        else:
            _train(net, x, y, epochs=epochs_per_round, batch_size=batch_size, lr=lr,
                   generator=gen)
        train_time = time.perf_counter() - t0
        model = TorchClassifier(net, bounds=(0, 1), levels=256, class_names=CLASS_NAMES,
                                num_classes=11)
        pred = model.predict(x_test)
        rejected = (
            _fraction(model.predict(previous) == BACKGROUND) if previous is not None else None
        )
        tick(f"round {r}: growing {fooling_per_round} fooling images")
        t1 = time.perf_counter()
        res = dream(model, targets, shape=(1, 28, 28), confidence=confidence, steps=steps,
                    stepsize=stepsize, smoothness=smoothness, seed=seed * 1000 + r)
        dream_time = time.perf_counter() - t1
        records.append(BackgroundRound(
            round=r,
            background_size=int(background.shape[0]),
            clean_accuracy=_fraction(pred == y_test),
            clean_as_background=_fraction(pred == BACKGROUND),
            noise_as_background=_fraction(model.predict(noise) == BACKGROUND),
            previous_rejected=rejected,
            train_time_s=train_time,
            dream_time_s=dream_time,
            **_round_figures(res),
        ))
        _log.info("background study: %s", records[-1])
        previous = res.x.detach().cpu()
        background = torch.cat([background, previous])
    report(work, work, "done")
    effective, verdict = _verdict(records, config)
    return BackgroundStudy(config=config, rounds=records, effective=effective, verdict=verdict,
                           time_s=time.perf_counter() - t_start, seed=seed)


def _verdict(rounds: list[BackgroundRound], config: dict[str, Any]) -> tuple[bool, str]:
    first, last = rounds[0], rounds[-1]
    thr = config["confidence"]
    effective = last.reached_threshold <= 0.5 * first.reached_threshold
    slowdown = last.steps_median / max(first.steps_median, 1.0)
    rejected = [r.previous_rejected for r in rounds if r.previous_rejected is not None]
    text = (
        f"Round 0 (no background images): {first.reached_threshold:.0%} of new fooling images "
        f"reached {thr:.1%} confidence, in a median of {first.steps_median:g} steps. "
        f"Round {last.round} ({last.background_size} background images): "
        f"{last.reached_threshold:.0%} reached it, in a median of {last.steps_median:g} steps "
        f"({slowdown:.1f}× round 0; budget {config['steps']}). "
        f"Clean accuracy went from {first.clean_accuracy:.1%} to {last.clean_accuracy:.1%}. "
    )
    if rejected:
        text += (
            f"Each retrained network put {min(rejected):.0%}–{max(rejected):.0%} of the previous "
            f"round's fooling images in the background class, so it learned those; "
        )
    if effective:
        text += (
            f"within the budget of {config['steps']} steps, at most half as many new fooling "
            "images reach the threshold as in round 0, so by this study's criterion the "
            "defence is effective here (a larger step budget may undo that)."
        )
    else:
        # "Rarer" only when the 95% intervals of the two shares do not overlap.
        k_first = round(first.reached_threshold * first.fooling_n)
        k_last = round(last.reached_threshold * last.fooling_n)
        rarer = k_last / last.fooling_n < k_first / first.fooling_n and differ(
            k_last, last.fooling_n, k_first, first.fooling_n)
        costlier = slowdown >= 1.5
        change = (
            "costlier and somewhat rarer" if costlier and rarer
            else "costlier, not rarer" if costlier
            else "somewhat rarer" if rarer
            else "neither costlier nor rarer"
        )
        text += (
            f"but {last.reached_threshold:.0%} of new fooling images still reach the threshold "
            f"in one try of at most {config['steps']} steps, needing {slowdown:.1f}× the "
            f"steps of round 0: the background class makes fooling images {change}, so it "
            "is not an effective defence, as Nguyen et al. (2015) found on MNIST."
        )
    return effective, text


# ---------------------------------------------------------------------------- outputs


def run(*, progress: ProgressCallback | None = None, **params: Any) -> dict[str, Any]:
    """Run :func:`background_class_study` and return its record.

    Parameters
    ----------
    progress : callable, optional
    **params
        Any parameter of :func:`background_class_study`.

    Returns
    -------
    dict
        :meth:`BackgroundStudy.to_dict`: data only; :func:`report` renders it.
    """
    study = background_class_study(progress=progress, **params)
    return check_record(study.to_dict(), "background.run")

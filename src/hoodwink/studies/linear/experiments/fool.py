"""Fooling with the model's own templates as a study: ``run`` gives the record, ``report`` the page.

``run`` pushes a validation image and a uniform-noise image towards a target
class along ``d = w_t`` and ``d = w_t - w_y`` (closed-form and measured
smallest alpha, the target probability along alpha), then compares the
template attack with FGSM and PGD at matching budgets. The record keeps the
strip's start images and perturbations (rounded) and every curve, so
``report`` draws the strip, the curves and the comparison from it alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoodwink._validation import check_int, check_real, reject
from hoodwink.attacks import FGSM, PGD
from hoodwink.errors import InputError
from hoodwink.progress import ProgressCallback, as_callback
from hoodwink.reports import Report
from hoodwink.studies._record import Rendered, check_record
from hoodwink.studies.linear._render import as_array, body, figure, never, plain, png, rounded
from hoodwink.studies.linear.datasets import ImageData
from hoodwink.studies.linear.fool import (
    Direction,
    alpha_curve,
    measured_minimal_alpha,
    minimal_alpha,
    minimal_distance,
    template_attack,
    template_direction,
)
from hoodwink.studies.linear.model import LinearModel

__all__ = ["report", "run"]

_OWNER = "linear fool"
_DIRECTIONS: tuple[Direction, ...] = ("target", "difference")
_NOTES = ("The template attack is unclipped (as in the essay), so the closed form is exact; in "
          "the comparison with FGSM and PGD every attack is clipped to [0, 1].")


def _direction(model: LinearModel, x: torch.Tensor, t: torch.Tensor | int,
               y: torch.Tensor | int, direction: Direction
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``d``, the closed-form smallest alpha, ``||d||_inf`` and ``||d||_2`` per input."""
    d = template_direction(model, x, t, y, direction=direction)
    a_min = minimal_alpha(model, x, t, y, direction=direction)
    flat = d.reshape(d.shape[0], -1).to(torch.float64)
    return d, a_min, flat.abs().amax(dim=1), flat.norm(dim=1)


def run(
    model: LinearModel | str | Path,
    data: ImageData,
    *,
    index: int = 0,
    target: int | None = None,
    noise_seed: int = 0,
    confidence: float = 0.9,
    n_compare: int = 100,
    eps_linf: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.2),
    eps_l2: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    pgd_steps: int = 20,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Fool the model with its own templates; compare with FGSM and PGD.

    Parameters
    ----------
    model : LinearModel, or the path of one saved with ``LinearModel.save``
    data : ImageData
        Validation images are attacked.
    index : int, default 0
        The validation image of the example strip.
    target : int, optional
        Its target class; default ``(y + 1) % C``.
    noise_seed : int, default 0
        Seed of the uniform-noise starting image.
    confidence : float in (0, 1), default 0.9
        The strip shows the smallest alpha (on a grid) at which the target
        probability reaches this value, or twice the flipping alpha.
    n_compare : int >= 1, default 100
        Validation images in the comparison with FGSM and PGD (targets
        ``(y + 1) % C``).
    eps_linf, eps_l2 : sequences of float > 0
        Budgets of the comparison.
    pgd_steps : int >= 1, default 20
    progress : callable, optional
        ``progress(done, total, message)`` after each of the four examples and
        each budget of the comparison.

    Returns
    -------
    dict
        Data only. A smallest alpha or distance that is never reached is
        ``None`` ("never" on the page).
    """
    if not isinstance(model, LinearModel):
        model = LinearModel.load(model)
    if data.input_shape != model.input_shape:
        raise InputError(
            f"The model takes inputs of shape {model.input_shape} but the data has "
            f"{data.input_shape}: load the data with the size and channels used for training."
        )
    n_val = data.x_val.shape[0]
    index = check_int(_OWNER, "index", index, 0, n_val - 1)
    confidence = check_real(_OWNER, "confidence", confidence, 0, 1, closed="neither")
    # torch.Generator.manual_seed takes exactly the 64-bit unsigned range.
    noise_seed = check_int(_OWNER, "noise_seed", noise_seed, low=0, high=2**64 - 1)
    n_compare = check_int(_OWNER, "n_compare", n_compare, low=1)
    pgd_steps = check_int(_OWNER, "pgd_steps", pgd_steps, low=1)
    linf_grid = [check_real(_OWNER, "eps_linf", e, low=0, closed="neither") for e in eps_linf]
    l2_grid = [check_real(_OWNER, "eps_l2", e, low=0, closed="neither") for e in eps_l2]
    c = model.num_classes
    x0 = data.x_val[index : index + 1]
    y0 = int(data.y_val[index])
    t0 = (y0 + 1) % c if target is None else check_int(_OWNER, "target", target, 0, c - 1)
    if t0 == y0:
        reject(_OWNER, "target", target, f"a class other than the image's class {y0}")
    tick = as_callback(progress)
    total = 2 * len(_DIRECTIONS) + len(linf_grid) + len(l2_grid)
    gen = torch.Generator().manual_seed(noise_seed)
    noise = torch.rand((1, *x0.shape[1:]), generator=gen)
    noise_pred = int(model.predict(noise)[0])
    # The noise image gets the same target unless it is already classified as it.
    starts = {"image": (x0, y0, t0),
              "noise": (noise, noise_pred, t0 if noise_pred != t0 else (t0 + 1) % c)}
    examples: list[dict[str, Any]] = []
    for start, (xs, ys, tt) in starts.items():
        for direction in _DIRECTIONS:
            examples.append(_example(model, start, xs, ys, tt, direction, confidence))
            tick(len(examples), total, f"{start}, {direction}")
    comparison = _compare(model, data, n_compare=n_compare, eps_linf=linf_grid,
                          eps_l2=l2_grid, pgd_steps=pgd_steps,
                          tick=lambda k, msg: tick(len(examples) + k, total, msg))
    rec = plain({
        "data": data.describe(), "class_names": [model.name(k) for k in range(c)],
        "index": index, "target": t0, "true_class": y0, "noise_seed": noise_seed,
        "confidence": confidence, "examples": examples, "comparison": comparison,
        "notes": _NOTES,
    })
    return check_record(rec, _OWNER)


def _example(model: LinearModel, start: str, xs: torch.Tensor, ys: int, tt: int,
             direction: Direction, confidence: float) -> dict[str, Any]:
    yt = torch.tensor([ys])
    d, a, linf, l2 = _direction(model, xs, tt, yt, direction)
    a_min = float(a[0])
    scale = a_min if math.isfinite(a_min) and a_min > 0 else 1.0 / max(
        float(model.weight.abs().max()), 1e-12)
    a_max = 4.0 * scale
    measured = float(measured_minimal_alpha(model, xs, tt, yt, direction=direction,
                                            alpha_max=a_max, grid=400)[0])
    curve = alpha_curve(model, xs, tt, torch.linspace(0, a_max, 201), yt, direction=direction)
    a_conf = float(curve.first_alpha_reaching(confidence)[0])
    a_show = a_conf if math.isfinite(a_conf) else (2 * a_min if math.isfinite(a_min) else a_max)
    x_adv = template_attack(model, xs, tt, a_show, yt, direction=direction)
    p0 = model.probabilities(xs)[0]
    p1 = model.probabilities(x_adv)[0]
    k0, k1 = int(p0.argmax()), int(p1.argmax())
    return {
        "start": start, "direction": direction,
        "label": f"{start}, d = w_t" if direction == "target" else f"{start}, d = w_t − w_y",
        "true_or_predicted": ys, "target": tt, "alpha_min_closed_form": a_min,
        "alpha_min_measured": measured, "alpha_min_linf": a_min * float(linf[0]),
        "alpha_min_l2": a_min * float(l2[0]), "alpha_shown": a_show,
        "alpha_confidence": a_conf, "target_probability_shown": float(p1[tt]),
        "prediction_shown": k1, "probability_shown": float(p1[k1]),
        "start_prediction": k0, "start_probability": float(p0[k0]),
        "start_target_probability": float(p0[tt]),
        "curve": {"alphas": curve.alphas.tolist(),
                  "target_probability": curve.target_probability[0].tolist()},
        "images": {"start": rounded(xs[0]), "perturbation": rounded((a_show * d)[0])},
    }


def _compare(model: LinearModel, data: ImageData, *, n_compare: int, eps_linf: list[float],
             eps_l2: list[float], pgd_steps: int, tick: Any) -> dict[str, Any]:
    n = min(n_compare, data.x_val.shape[0])
    x = data.x_val[:n]
    y = data.y_val[:n]
    t = (y + 1) % model.num_classes
    clf = model.as_classifier()
    out: dict[str, Any] = {"n": n}
    rays = {}
    for direction in _DIRECTIONS:
        d, a, linf, l2 = _direction(model, x, t, y, direction)
        rays[direction] = (linf, l2)
        fin = torch.isfinite(a)
        out[f"template_{direction}"] = {
            "median_linf": float((a * linf)[fin].median()) if bool(fin.any()) else None,
            "median_l2": float((a * l2)[fin].median()) if bool(fin.any()) else None,
            "never": float((~fin).to(torch.float64).mean()),
        }
    rows: list[dict[str, Any]] = []

    def add(name: str, norm: str, eps: float, xa: torch.Tensor) -> None:
        p = model.probabilities(xa)
        rows.append({"attack": name, "norm": norm, "eps": eps,
                     "success_rate": float((p.argmax(dim=1) == t).to(torch.float64).mean()),
                     "mean_target_probability": float(p[torch.arange(n), t].mean())})

    done = 0
    for norm, grid in (("linf", eps_linf), ("l2", eps_l2)):
        for eps in grid:
            for direction in _DIRECTIONS:
                linf, l2 = rays[direction]
                alpha = eps / (linf if norm == "linf" else l2).clamp_min(1e-12)
                xa = template_attack(model, x, t, alpha.to(x.dtype), y, direction=direction,
                                     clip=True)
                add(f"template (d = {'w_t' if direction == 'target' else 'w_t − w_y'})",
                    norm, eps, xa)
            if norm == "linf":
                add("FGSM", norm, eps, FGSM(norm="linf")(clf, x, y, target=t, eps=eps).x_adv)
            add(f"PGD-{pgd_steps}", norm, eps,
                PGD(norm="linf" if norm == "linf" else "l2", steps=pgd_steps)(
                    clf, x, y, target=t, eps=eps).x_adv)
            done += 1
            tick(done, f"comparison, {norm} eps {eps:g}")
    out["rows"] = rows
    dist_l2, _ = minimal_distance(model, x, norm="l2")
    dist_linf, _ = minimal_distance(model, x, norm="linf")
    out["untargeted_minimal_l2_median"] = float(dist_l2.median())
    out["untargeted_minimal_linf_median"] = float(dist_linf.median())
    return out


def report(record: Mapping[str, Any]) -> Rendered:
    """The page, ``strip.png``, ``alpha_curve.png`` and ``comparison.png``, from the record."""
    r = body(record)
    names = r["class_names"]
    conf = r["confidence"]
    rep = Report("linear.fool", "Fooling a linear classifier with its own templates", r)
    rep.text(f"Image {r['index']} of the validation set (class {names[r['true_class']]}) and a "
             f"uniform-noise image are pushed towards class {names[r['target']]} by adding "
             "alpha times the target's template d = w_t, or the difference d = w_t − w_y. The "
             "smallest flipping alpha has a closed form (see hoodwink.studies.linear.fool); "
             "the measured value comes from scanning alpha and bisecting on the model's "
             "predictions.")
    rep.table(
        ["start", "direction", "target", "α min (closed form)", "α min (measured)", "‖α d‖∞",
         "‖α d‖₂", f"α for p ≥ {conf:g}"],
        [[e["start"], e["direction"], names[e["target"]], never(e["alpha_min_closed_form"]),
          never(e["alpha_min_measured"]), never(e["alpha_min_linf"]),
          never(e["alpha_min_l2"]), never(e["alpha_confidence"])] for e in r["examples"]],
    )
    rep.figure("strip.png", "Start image, perturbation (α·d, scaled for display) and result")
    rep.figure("alpha_curve.png", "Target probability against α; dashed: closed-form flip")
    cmp_ = r["comparison"]
    tt, td = cmp_["template_target"], cmp_["template_difference"]
    rep.heading(f"Against FGSM and PGD on the same model ({cmp_['n']} images)")
    rep.text(
        f"Closed-form flipping perturbation of the template attack, median over images: "
        f"d = w_t needs ‖δ‖∞ = {never(tt['median_linf'])} (‖δ‖₂ = {never(tt['median_l2'])}); "
        f"d = w_t − w_y needs ‖δ‖∞ = {never(td['median_linf'])} "
        f"(‖δ‖₂ = {never(td['median_l2'])}); never reached: {never(tt['never'])} and "
        f"{never(td['never'])}."
    )
    rep.table(["attack", "norm", "eps", "targeted success", "mean p(target)"],
              [[row["attack"], row["norm"], row["eps"], row["success_rate"],
                row["mean_target_probability"]] for row in cmp_["rows"]])
    rep.figure("comparison.png", "Targeted success against the budget")
    return Rendered(rep, {"strip.png": _strip(r["examples"], names),
                          "alpha_curve.png": _curves(r["examples"], names),
                          "comparison.png": _comparison(cmp_)})


def _display(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """(C, H, W) as (H, W) for one channel, (H, W, C) otherwise."""
    out: np.ndarray[Any, Any] = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    return out


def _strip(examples: list[dict[str, Any]], names: list[str]) -> bytes:
    fig = figure(6.6, 2.3 * len(examples))
    axes = fig.subplots(len(examples), 3, squeeze=False)
    for i, e in enumerate(examples):
        x = as_array(e["images"]["start"])
        delta = as_array(e["images"]["perturbation"])
        grey = x.shape[0] == 1
        kw: dict[str, Any] = {"cmap": "gray", "vmin": 0, "vmax": 1} if grey else {}
        axes[i, 0].imshow(_display(x).clip(0, 1), **kw)
        axes[i, 0].set_title(f"{e['label']}\n{names[e['start_prediction']]} "
                             f"({100 * e['start_probability']:.1f}%)", fontsize=7)
        m = float(np.abs(delta).max()) or 1.0
        if grey:
            axes[i, 1].imshow(_display(delta), cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            axes[i, 1].imshow((_display(delta) / (2 * m) + 0.5).clip(0, 1))
        axes[i, 1].set_title(f"+ α·d, α = {e['alpha_shown']:.3g}\n‖α d‖∞ = {m:.3g}",
                             fontsize=7)
        axes[i, 2].imshow(_display(x + delta).clip(0, 1), **kw)
        axes[i, 2].set_title(f"= {names[e['prediction_shown']]} "
                             f"({100 * e['probability_shown']:.1f}%)\n"
                             f"p({names[e['target']]}) = "
                             f"{100 * e['target_probability_shown']:.1f}%", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return png(fig)


def _curves(examples: list[dict[str, Any]], names: list[str]) -> bytes:
    fig = figure(6, 3.6)
    ax = fig.subplots()
    for i, e in enumerate(examples):
        color = f"C{i}"
        ax.plot(e["curve"]["alphas"], e["curve"]["target_probability"], color=color,
                label=f"{e['label']} → {names[e['target']]}")
        if e["alpha_min_closed_form"] is not None:
            ax.axvline(e["alpha_min_closed_form"], color=color, ls="--", lw=0.8)
    ax.set_xlabel("α (multiples of the template)")
    ax.set_ylabel("p(target)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


def _comparison(cmp_: Mapping[str, Any]) -> bytes:
    return png(_comparison_figure(cmp_))


def _comparison_figure(cmp_: Mapping[str, Any]) -> Any:
    """Success against eps, one panel per norm; an attack keeps its colour in both panels.

    FGSM runs only under L∞, so colouring by the order within a panel would give PGD
    a different colour in the L2 panel: colours come from the order over all rows.
    """
    fig = figure(10, 3.6)
    axes = fig.subplots(1, 2)
    colours = {name: f"C{i}" for i, name in
               enumerate(dict.fromkeys(r["attack"] for r in cmp_["rows"]))}
    for ax, norm in zip(axes, ("linf", "l2"), strict=True):
        rows = [r for r in cmp_["rows"] if r["norm"] == norm]
        for name in dict.fromkeys(r["attack"] for r in rows):
            pts = [(r["eps"], r["success_rate"]) for r in rows if r["attack"] == name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name,
                    color=colours[name])
        ticks = sorted({r["eps"] for r in rows})
        if ticks:
            ax.set_xscale("log")
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.minorticks_off()
        ax.set_xlabel(f"eps ({'L∞' if norm == 'linf' else 'L2'})")
        ax.set_ylabel("targeted success rate")
        ax.set_ylim(-0.02, 1.02)
        if rows:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

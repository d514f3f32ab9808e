"""The essay's experiments end to end: compute, record as JSON, render figures and pages.

Each ``run_*`` function does one experiment and writes a report folder through
:class:`hoodwink.reports.Report`: ``report.json`` (the record every number is
read from), PNG figures, ``report.md`` and ``report.html``. The CLI
(``hoodwink linear ...``) is a thin shell over these functions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoodwink.attacks import FGSM, PGD
from hoodwink.errors import ConfigError, InputError
from hoodwink.reports import Report, ReportPaths
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
from hoodwink.studies.linear.sanity import (
    EXPLODE_FACTOR,
    INITIAL_LOSS_HIGH,
    INITIAL_LOSS_LOW,
    MIN_REG_SHARE,
)
from hoodwink.studies.linear.study import DimensionStudy, RegularizationStudy
from hoodwink.studies.linear.templates import plot_templates, roughness, template_images
from hoodwink.studies.linear.toy import ToyResult
from hoodwink.studies.linear.train import LinearModel, TrainingLog

__all__ = [
    "run_dimension",
    "run_fool",
    "run_regularization",
    "run_templates",
    "run_toy",
    "run_train",
]

_log = logging.getLogger(__name__)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "never" if v is not None else "–"
    return f"{v:.{digits}g}"


# ---------------------------------------------------------------------------- train
def run_train(model: LinearModel, log: TrainingLog, data: ImageData, out: str | Path
              ) -> ReportPaths:
    """Write the training report: model file, loss curve, templates, sanity flags.

    Files: ``model.safetensors``, ``loss.png``, ``templates.png`` and the report.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.safetensors")
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.asarray([v if math.isfinite(v) else np.nan for v in log.step_losses])
    ax[0].plot(np.arange(1, steps.size + 1), steps, lw=0.6, label="minibatch data loss")
    ax[0].axhline(log.expected_initial_loss, color="grey", ls="--",
                  label=f"expected at init ({log.expected_initial_loss:.3g})")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("loss")
    ax[0].set_yscale("log")
    ax[0].legend(fontsize=7)
    if log.epochs:
        ep = [e["epoch"] for e in log.epochs]
        ax[1].plot(ep, [e["train_accuracy"] for e in log.epochs], label="train")
        if log.epochs[0]["val_accuracy"] is not None:
            ax[1].plot(ep, [e["val_accuracy"] for e in log.epochs], label="validation")
        ax[1].set_xlabel("epoch")
        ax[1].set_ylabel("accuracy")
        ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "loss.png", dpi=110)
    plt.close(fig)
    plot_templates(model, folder / "templates.png")
    rec = log.to_dict()
    last = log.epochs[-1] if log.epochs else {}
    record: dict[str, Any] = {
        "data": data.describe(), "training": rec, "model_file": "model.safetensors",
        "final": {"data_loss": last.get("data_loss"), "reg_loss": last.get("reg_loss"),
                  "train_accuracy": last.get("train_accuracy"),
                  "val_accuracy": last.get("val_accuracy")},
        "thresholds": {"initial_loss_ratio": [INITIAL_LOSS_LOW, INITIAL_LOSS_HIGH],
                       "explode_factor": EXPLODE_FACTOR, "min_reg_share": MIN_REG_SHARE},
    }
    rep = Report("linear.train", f"Linear {model.kind} classifier on {data.source}", record)
    r = rep.full_record()
    tr = r["training"]
    rep.heading("Setup")
    rep.table(["parameter", "value"], [[k, str(v)] for k, v in tr["config"].items()])
    rep.heading("Sanity checks")
    rep.table(
        ["check", "measured", "healthy", "status"],
        [
            ["initial loss", _fmt(tr["initial_loss"]),
             f"{INITIAL_LOSS_LOW:g}–{INITIAL_LOSS_HIGH:g} × {tr['expected_initial_loss']:.3g}",
             _status(tr["flags"], "initial_loss")],
            ["loss explosion", "diverged" if tr["diverged"] else "no",
             f"below {EXPLODE_FACTOR:g} × initial loss", _status(tr["flags"], "exploding_loss")],
            ["regularisation share of final loss", f"{100 * tr['reg_share']:.3g}%",
             f">= {100 * MIN_REG_SHARE:g}%", _status(tr["flags"], "weak_regularization")],
        ],
    )
    for f in tr["flags"]:
        rep.text(f"**{f['warning']}**: {f['message']}")
    rep.heading("Result")
    fin = r["final"]
    rep.text(
        f"After {len(tr['epochs'])} epochs ({tr['time_s']:.2f} s; the loss reached within 1% "
        f"of its final value at epoch {tr['plateau_epoch']}, {_fmt(tr['plateau_time_s'], 3)} s): "
        f"training loss {_fmt(fin['data_loss'])} + regularisation {_fmt(fin['reg_loss'])}, "
        f"train accuracy {_fmt(fin['train_accuracy'])}, validation accuracy "
        f"{_fmt(fin['val_accuracy'])}."
    )
    rep.figure("loss.png", "Minibatch loss per step and accuracy per epoch")
    rep.figure("templates.png", "Class templates (weights reshaped to images)")
    return rep.write(folder)


def _status(flags: list[dict[str, Any]], check: str) -> str:
    return "FLAGGED" if any(f["check"] == check for f in flags) else "ok"


# ---------------------------------------------------------------------------- templates
def run_templates(model: LinearModel, out: str | Path, *, source: str = "") -> ReportPaths:
    """Write the class templates as a grid PNG, with each template's roughness."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    plot_templates(model, folder / "templates.png")
    rough = roughness(model.templates()).tolist()
    w = model.weight.to(torch.float64)
    record = {
        "model": {"kind": model.kind, "input_shape": list(model.input_shape),
                  "num_classes": model.num_classes, "source": source},
        "classes": [
            {"class": model.name(c), "roughness": rough[c],
             "l2_norm": float(w[c].norm()), "l1_norm": float(w[c].abs().sum()),
             "bias": float(model.bias[c])}
            for c in range(model.num_classes)
        ],
        "roughness_definition": "sum of squared differences of neighbouring pixels / sum of "
                                "squares; 0 = flat, about 4 = white noise",
    }
    rep = Report("linear.templates", "Class templates", record)
    rep.text("Each class's score is the dot product of the image with its weight row, so the "
             "weights reshaped to an image are the template the class looks for. Grey-scale "
             "templates are drawn red (positive) and blue (negative), each scaled by its own "
             "largest |weight|; colour templates are min-max scaled per class.")
    rep.figure("templates.png", "Class templates")
    rep.heading("Per class")
    rep.table(["class", "roughness", "‖w‖₂", "‖w‖₁", "bias"],
              [[c["class"], c["roughness"], c["l2_norm"], c["l1_norm"], c["bias"]]
               for c in rep.full_record()["classes"]])
    return rep.write(folder)


# ---------------------------------------------------------------------------- fool
def _norms(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = d.reshape(d.shape[0], -1).to(torch.float64)
    return flat.abs().amax(dim=1), flat.norm(dim=1)


def run_fool(
    model: LinearModel,
    data: ImageData,
    out: str | Path,
    *,
    index: int = 0,
    target: int | None = None,
    noise_seed: int = 0,
    confidence: float = 0.9,
    n_compare: int = 100,
    eps_linf: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.2),
    eps_l2: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    pgd_steps: int = 20,
) -> ReportPaths:
    """Fool the model with its own templates; compare with FGSM and PGD.

    Parameters
    ----------
    model : LinearModel
    data : ImageData
        Validation images are attacked.
    out : path
    index : int, default 0
        The validation image of the example strip.
    target : int, optional
        Its target class; default ``(y + 1) % C``.
    noise_seed : int, default 0
        Seed of the uniform-noise starting image.
    confidence : float, default 0.9
        The strip shows the smallest alpha (on a grid) at which the target
        probability reaches this value, or twice the flipping alpha.
    n_compare : int, default 100
        Validation images in the comparison with FGSM and PGD (targets
        ``(y + 1) % C``).
    eps_linf, eps_l2 : sequences of float
        Budgets of the comparison.
    pgd_steps : int, default 20
    """
    if data.input_shape != model.input_shape:
        raise InputError(
            f"The model takes inputs of shape {model.input_shape} but the data has "
            f"{data.input_shape}: load the data with the size and channels used for training."
        )
    n_val = data.x_val.shape[0]
    if not 0 <= index < n_val:
        raise ConfigError(f"The 'index' parameter must be in 0..{n_val - 1}. Got {index!r}.")
    if not 0 < confidence < 1:
        raise ConfigError(f"The 'confidence' parameter must be in (0, 1). Got {confidence!r}.")
    c = model.num_classes
    x0 = data.x_val[index : index + 1]
    y0 = int(data.y_val[index])
    t0 = (y0 + 1) % c if target is None else int(target)
    if not 0 <= t0 < c or t0 == y0:
        raise ConfigError(f"The 'target' parameter must be a class in 0..{c - 1} other than "
                          f"the image's class {y0}. Got {target!r}.")
    gen = torch.Generator().manual_seed(noise_seed)
    noise = torch.rand((1, *x0.shape[1:]), generator=gen)
    noise_pred = int(model.predict(noise)[0])
    # The noise image gets the same target unless it is already classified as it.
    starts = {"image": (x0, y0, t0),
              "noise": (noise, noise_pred, t0 if noise_pred != t0 else (t0 + 1) % c)}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    examples: list[dict[str, Any]] = []
    strip: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float, int]] = []
    curves: list[tuple[str, Any, float]] = []
    directions: tuple[Direction, ...] = ("target", "difference")
    for start, (xs, ys, tt) in starts.items():
        for direction in directions:
            yt = torch.tensor([ys])
            a_min = float(minimal_alpha(model, xs, tt, yt, direction=direction)[0])
            scale = a_min if math.isfinite(a_min) and a_min > 0 else 1.0 / max(
                float(model.weight.abs().max()), 1e-12)
            a_max = 4.0 * scale
            measured = float(measured_minimal_alpha(model, xs, tt, yt, direction=direction,
                                                    alpha_max=a_max, grid=400)[0])
            curve = alpha_curve(model, xs, tt, torch.linspace(0, a_max, 201), yt,
                                direction=direction)
            a_conf = float(curve.first_alpha_reaching(confidence)[0])
            a_show = a_conf if math.isfinite(a_conf) else (2 * a_min if math.isfinite(a_min)
                                                           else a_max)
            d = template_direction(model, xs, tt, yt, direction=direction)
            x_adv = template_attack(model, xs, tt, a_show, yt, direction=direction)
            linf, l2 = _norms(d)
            p_adv = model.probabilities(x_adv)[0]
            label = f"{start}, d = w_t" if direction == "target" else f"{start}, d = w_t − w_y"
            examples.append({
                "start": start, "direction": direction, "true_or_predicted": ys,
                "target": tt, "alpha_min_closed_form": a_min, "alpha_min_measured": measured,
                "alpha_min_linf": a_min * float(linf[0]), "alpha_min_l2": a_min * float(l2[0]),
                "alpha_shown": a_show, "alpha_confidence": a_conf,
                "target_probability_shown": float(p_adv[tt]),
                "prediction_shown": int(p_adv.argmax()),
                "start_prediction": int(model.predict(xs)[0]),
                "start_target_probability": float(model.probabilities(xs)[0, tt]),
                "curve": {"alphas": curve.alphas.tolist(),
                          "target_probability": curve.target_probability[0].tolist()},
            })
            strip.append((label, xs[0], (a_show * d)[0], x_adv[0], a_show, tt))
            curves.append((f"{label} → {model.name(tt)}", curve, a_min))
    _plot_strip(model, strip, folder / "strip.png")
    _plot_curves(curves, model, folder / "alpha_curve.png")
    comparison = _compare_attacks(model, data, n_compare=n_compare, eps_linf=eps_linf,
                                  eps_l2=eps_l2, pgd_steps=pgd_steps)
    _plot_comparison(comparison, folder / "comparison.png")
    record = {
        "data": data.describe(), "index": index, "target": t0, "true_class": y0,
        "noise_seed": noise_seed, "confidence": confidence, "examples": examples,
        "comparison": comparison,
        "notes": "The template attack is unclipped (as in the essay), so the closed form is "
                 "exact; in the comparison with FGSM and PGD every attack is clipped to [0, 1].",
    }
    rep = Report("linear.fool", "Fooling a linear classifier with its own templates", record)
    r = rep.full_record()
    rep.text(f"Image {index} of the validation set (class {model.name(y0)}) and a uniform-noise "
             f"image are pushed towards class {model.name(t0)} by adding alpha times the "
             "target's template d = w_t, or the difference d = w_t − w_y. The smallest "
             "flipping alpha has a closed form (see hoodwink.studies.linear.fool); the "
             "measured value comes from scanning alpha and bisecting on the model's predictions.")
    rep.table(
        ["start", "direction", "target", "α min (closed form)", "α min (measured)", "‖α d‖∞",
         "‖α d‖₂", f"α for p ≥ {confidence:g}"],
        [[e["start"], e["direction"], model.name(e["target"]), e["alpha_min_closed_form"],
          e["alpha_min_measured"], e["alpha_min_linf"], e["alpha_min_l2"], e["alpha_confidence"]]
         for e in r["examples"]],
    )
    rep.figure("strip.png", "Start image, perturbation (α·d, scaled for display) and result")
    rep.figure("alpha_curve.png", "Target probability against α; dashed: closed-form flip")
    rep.heading(f"Against FGSM and PGD on the same model ({r['comparison']['n']} images)")
    cmp_ = r["comparison"]
    rep.text(
        f"Closed-form flipping perturbation of the template attack, median over images: "
        f"d = w_t needs ‖δ‖∞ = {_fmt(cmp_['template_target']['median_linf'])} "
        f"(‖δ‖₂ = {_fmt(cmp_['template_target']['median_l2'])}); d = w_t − w_y needs "
        f"‖δ‖∞ = {_fmt(cmp_['template_difference']['median_linf'])} "
        f"(‖δ‖₂ = {_fmt(cmp_['template_difference']['median_l2'])}); never reached: "
        f"{_fmt(cmp_['template_target']['never'])} and "
        f"{_fmt(cmp_['template_difference']['never'])}."
    )
    rows = [[row["attack"], row["norm"], row["eps"], row["success_rate"],
             row["mean_target_probability"]] for row in cmp_["rows"]]
    rep.table(["attack", "norm", "eps", "targeted success", "mean p(target)"], rows)
    rep.figure("comparison.png", "Targeted success against the budget")
    return rep.write(folder)


def _display(t: torch.Tensor) -> np.ndarray[Any, Any]:
    a = t.detach().to(torch.float64)
    return a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()


def _plot_strip(model: LinearModel, rows: list[tuple[str, torch.Tensor, torch.Tensor,
                torch.Tensor, float, int]], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 3, figsize=(6.6, 2.3 * len(rows)), squeeze=False)
    for r, (label, x, delta, xa, alpha, target) in enumerate(rows):
        p0 = model.probabilities(x[None])[0]
        p1 = model.probabilities(xa[None])[0]
        k0, k1 = int(p0.argmax()), int(p1.argmax())
        grey = x.shape[0] == 1
        kw: dict[str, Any] = {"cmap": "gray", "vmin": 0, "vmax": 1} if grey else {}
        axes[r, 0].imshow(_display(x).clip(0, 1), **kw)
        axes[r, 0].set_title(f"{label}\n{model.name(k0)} ({100 * float(p0[k0]):.1f}%)",
                             fontsize=7)
        m = float(delta.abs().max()) or 1.0
        if grey:
            axes[r, 1].imshow(_display(delta), cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            axes[r, 1].imshow((_display(delta) / (2 * m) + 0.5).clip(0, 1))
        axes[r, 1].set_title(f"+ α·d, α = {alpha:.3g}\n‖α d‖∞ = {m:.3g}", fontsize=7)
        axes[r, 2].imshow(_display(xa).clip(0, 1), **kw)
        axes[r, 2].set_title(f"= {model.name(k1)} ({100 * float(p1[k1]):.1f}%)\n"
                             f"p({model.name(target)}) = {100 * float(p1[target]):.1f}%",
                             fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_curves(curves: list[tuple[str, Any, float]], model: LinearModel, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (label, curve, a_min) in enumerate(curves):
        color = f"C{i}"
        ax.plot(curve.alphas.numpy(), curve.target_probability[0].numpy(), color=color,
                label=label)
        if math.isfinite(a_min):
            ax.axvline(a_min, color=color, ls="--", lw=0.8)
    ax.set_xlabel("α (multiples of the template)")
    ax.set_ylabel("p(target)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _compare_attacks(model: LinearModel, data: ImageData, *, n_compare: int,
                     eps_linf: Sequence[float], eps_l2: Sequence[float],
                     pgd_steps: int) -> dict[str, Any]:
    n = max(1, min(n_compare, data.x_val.shape[0]))
    x = data.x_val[:n]
    y = data.y_val[:n]
    t = (y + 1) % model.num_classes
    clf = model.as_classifier()
    out: dict[str, Any] = {"n": n, "rows": []}
    directions: tuple[Direction, ...] = ("target", "difference")
    for direction in directions:
        a = minimal_alpha(model, x, t, y, direction=direction)
        d = template_direction(model, x, t, y, direction=direction)
        linf, l2 = _norms(d)
        fin = torch.isfinite(a)
        out[f"template_{direction}"] = {
            "median_linf": float((a * linf)[fin].median()) if bool(fin.any()) else None,
            "median_l2": float((a * l2)[fin].median()) if bool(fin.any()) else None,
            "never": float((~fin).to(torch.float64).mean()),
        }
    rows = []

    def add(name: str, norm: str, eps: float, xa: torch.Tensor) -> None:
        p = model.probabilities(xa)
        rows.append({"attack": name, "norm": norm, "eps": eps,
                     "success_rate": float((p.argmax(dim=1) == t).to(torch.float64).mean()),
                     "mean_target_probability": float(p[torch.arange(n), t].mean())})

    for norm, grid in (("linf", eps_linf), ("l2", eps_l2)):
        for eps in grid:
            for direction in directions:
                d = template_direction(model, x, t, y, direction=direction)
                linf, l2 = _norms(d)
                size = linf if norm == "linf" else l2
                alpha = eps / size.clamp_min(1e-12)
                xa = template_attack(model, x, t, alpha.to(x.dtype), y, direction=direction,
                                     clip=True)
                add(f"template (d = {'w_t' if direction == 'target' else 'w_t − w_y'})",
                    norm, eps, xa)
            if norm == "linf":
                add("FGSM", norm, eps, FGSM(norm="linf")(clf, x, y, target=t, eps=eps).x_adv)
            add(f"PGD-{pgd_steps}", norm, eps,
                PGD(norm="linf" if norm == "linf" else "l2", steps=pgd_steps)(
                    clf, x, y, target=t, eps=eps).x_adv)
    out["rows"] = rows
    dist_l2, _ = minimal_distance(model, x, norm="l2")
    dist_linf, _ = minimal_distance(model, x, norm="linf")
    out["untargeted_minimal_l2_median"] = float(dist_l2.median())
    out["untargeted_minimal_linf_median"] = float(dist_linf.median())
    return out


def _plot_comparison(cmp_: dict[str, Any], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, norm in zip(axes, ("linf", "l2"), strict=True):
        rows = [r for r in cmp_["rows"] if r["norm"] == norm]
        for name in dict.fromkeys(r["attack"] for r in rows):
            pts = [(r["eps"], r["success_rate"]) for r in rows if r["attack"] == name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set_xscale("log")
        ticks = sorted({r["eps"] for r in rows})
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"eps ({'L∞' if norm == 'linf' else 'L2'})")
        ax.set_ylabel("targeted success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- regularisation
def run_regularization(study: RegularizationStudy, out: str | Path) -> ReportPaths:
    """Write the regularisation study: plots, template rows and the essay's verdicts."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rep = Report("linear.regularization", "Regularisation study: smoothness against "
                 "foolability", study.to_dict())
    r = rep.full_record()
    rows = r["rows"]
    plt = _plt()
    wd = [row["weight_decay"] for row in rows]
    panels = [("val_accuracy", "validation accuracy"),
              ("roughness", "template roughness (0 flat, ~4 noise)"),
              ("mean_l2_distance", "mean minimal L2 distance"),
              ("mean_linf_distance", "mean minimal L∞ distance"),
              ("fooling_confidence", f"wrong-class confidence at eps={r['config']['eps']:g}")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(wd, [row[key] for row in rows], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("weight decay")
        ax.set_title(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "measures.png", dpi=110)
    plt.close(fig)
    _plot_template_rows(study, folder / "templates_by_weight_decay.png")
    held = sum(1 for f in r["findings"] if f["holds"])
    rep.text(
        f"{len(rows)} {r['config']['kind']} models on {r['config']['data']['source']} "
        f"({r['config']['epochs']} epochs each), weight decay from {wd[0]:g} to {wd[-1]:g}; "
        f"{r['time_s']:.1f} s in all. Roughness is the sum of squared differences of "
        "neighbouring template pixels over the template's sum of squares (0 for a flat "
        "template, about 4 for white noise), averaged over classes. Minimal distances are "
        "exact (closed form for a linear model, box bounds ignored) and averaged over all "
        "validation images; the wrong-class confidence is the best probability of a wrong "
        f"class after the L∞ perturbation eps·sign(w_t − w_k) with eps = {r['config']['eps']:g}, "
        "clipped to [0, 1]."
    )
    rep.table(
        ["weight decay", "lr used", "val acc", "roughness", "‖W‖", "mean L2 dist",
         "mean L∞ dist", "wrong-class conf.", "fooled at eps", "reg share", "flags"],
        [[row["weight_decay"], row["lr"], row["val_accuracy"], row["roughness"],
          row["weight_norm"], row["mean_l2_distance"], row["mean_linf_distance"],
          row["fooling_confidence"], row["fooled_rate"], row["reg_share"],
          ", ".join(row["flags"]) or "–"] for row in rows],
    )
    rep.heading(f"Do the essay's findings hold? {held} of {len(r['findings'])} do")
    rep.table(
        ["claim", "least regularised", "most regularised", "holds", "Spearman ρ vs log wd",
         "monotone"],
        [[f["claim"], f["low"], f["high"], "yes" if f["holds"] else "NO", f["spearman"],
          "yes" if f["monotone"] else "no"] for f in r["findings"]],
    )
    rep.text("A claim holds when the least and the most regularised models differ in the "
             "stated direction; ρ and 'monotone' say whether the whole sweep agrees.")
    rep.figure("measures.png", "Measures against weight decay")
    rep.figure("templates_by_weight_decay.png",
               "Templates of every model, one row per weight decay (top: least regularised)")
    return rep.write(folder)


def _plot_template_rows(study: RegularizationStudy, path: Path, max_classes: int = 10) -> None:
    plt = _plt()
    k = min(max_classes, study.models[0].num_classes)
    n = len(study.models)
    fig, axes = plt.subplots(n, k, figsize=(1.2 * k, 1.25 * n + 0.3), squeeze=False)
    for i, (model, row) in enumerate(zip(study.models, study.rows, strict=True)):
        imgs = template_images(model)
        for j in range(k):
            ax = axes[i, j]
            if imgs[j].ndim == 3:
                ax.imshow(imgs[j])
            else:
                ax.imshow(imgs[j], cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{row['weight_decay']:.0e}", fontsize=7)
            if i == 0:
                ax.set_title(model.name(j), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------- dimension
def run_dimension(study: DimensionStudy, out: str | Path) -> ReportPaths:
    """Write the dimension study: eps·‖w‖₁ against the input dimension n."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rep = Report("linear.dimension", "Why dimension matters: eps·‖w‖₁ against n",
                 study.to_dict())
    r = rep.full_record()
    rows = r["rows"]
    eps = r["config"]["eps"]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    n = [row["n"] for row in rows]
    axes[0].plot(n, [row["activation_change"] for row in rows], marker="o",
                 label="trained models: ε‖w‖₁ (measured, unclipped)")
    axes[0].plot(n, [row["activation_change_clipped"] for row in rows], marker="s",
                 label="trained models, clipped to [0, 1]")
    axes[0].plot(n, [row["fixed_m_prediction"] for row in rows], ls="--", color="grey",
                 label="ε·n·m with m fixed at the smallest model")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("input dimension n")
    axes[0].set_ylabel(f"score change at ε = {eps:g}")
    axes[0].legend(fontsize=7)
    axes[1].plot(n, [row["mean_linf_distance"] for row in rows], marker="o")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("input dimension n")
    axes[1].set_ylabel("mean minimal L∞ distance to flip")
    fig.tight_layout()
    fig.savefig(folder / "dimension.png", dpi=110)
    plt.close(fig)
    first, last = rows[0], rows[-1]
    growth_n = last["n"] / first["n"]
    growth_change = last["activation_change"] / max(first["activation_change"], 1e-300)
    rep.text(
        f"The same images resized to {', '.join('x'.join(map(str, row['size'])) for row in rows)}"
        f"; one {r['config']['kind']} model per size (weight decay "
        f"{r['config']['weight_decay']:g}). A perturbation eps·sign(w_c) with eps = {eps:g} "
        "changes class c's score by exactly eps·‖w_c‖₁ = eps·n·m (m the mean |weight|), the "
        "essay's ε·n·m. From the smallest to the largest input the dimension grew "
        f"{growth_n:.3g}x and the measured score change {growth_change:.3g}x; with m held at "
        f"the smallest model's value it would have grown {growth_n:.3g}x."
    )
    rep.table(
        ["size", "n", "val acc", "m = mean |w|", "ε‖w‖₁ (measured)", "ε‖w‖₁ clipped",
         "ε·n·m (fixed m)", "mean min L∞ dist"],
        [["x".join(map(str, row["size"])), row["n"], row["val_accuracy"],
          row["mean_abs_weight"], row["activation_change"], row["activation_change_clipped"],
          row["fixed_m_prediction"], row["mean_linf_distance"]] for row in rows],
    )
    rep.figure("dimension.png", "Score change against input dimension; minimal L∞ distance")
    return rep.write(folder)


# ---------------------------------------------------------------------------- toy
def run_toy(result: ToyResult, out: str | Path) -> ReportPaths:
    """Write the toy logistic-regression example as a report with a bar figure."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rep = Report("linear.toy", "Toy example: fooling a 10-dimensional logistic regression",
                 result.to_dict())
    r = rep.full_record()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    idx = np.arange(len(r["x"]))
    ax.bar(idx - 0.2, r["x"], width=0.4, label=f"x (score {r['score']:g})")
    ax.bar(idx + 0.2, r["x_adv"], width=0.4,
           label=f"x + {r['alpha']:g}·w (score {r['score_adv']:g})")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(idx, [f"w={int(v):+d}" for v in r["w"]], fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "toy.png", dpi=110)
    plt.close(fig)
    rep.table(["", "x", f"x + {r['alpha']:g}·w"], [
        ["input", str(r["x"]), str(r["x_adv"])],
        ["score w·x + b", r["score"], r["score_adv"]],
        ["P(class 1)", f"{r['probability']:.4f}", f"{r['probability_adv']:.4f}"],
    ])
    rep.text(f"Every coordinate moved by {r['alpha']:g} in the direction of its weight, so the "
             f"score gained {r['alpha']:g} × ‖w‖₁ = {r['gain']:g}: tiny per-coordinate "
             "changes add up across dimensions.")
    rep.figure("toy.png", "Input before and after the nudge")
    return rep.write(folder)

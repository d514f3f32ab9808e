"""The forests study's page, figures and verdict, drawn from the record alone.

:func:`report` renders a record of :func:`hoodwink.studies.forests.run` (or the
JSON file read back) into a :class:`~hoodwink.studies._record.Rendered`: the
Markdown/HTML page and two figures, ``forests-curves.png`` (success against
query budget) and ``forests-matrix.png`` (success at the largest budget, model
by attack). :func:`verdict` writes the verdict paragraph from the numbers; the
study stores it in the record and docs/forests.md quotes it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from hoodwink.errors import ConfigError, MissingDependencyError
from hoodwink.reports import Report
from hoodwink.stats import SMALL_N, differ, rate_text
from hoodwink.studies._record import Rendered

__all__ = ["CURVES", "MATRIX", "best_cell", "cells", "rate_at", "report", "verdict"]

#: File names of the figures a report links.
CURVES = "forests-curves.png"
MATRIX = "forests-matrix.png"

#: How models and datasets are named in text.
MODEL_LABELS = {
    "forest": "random forest", "boosting": "gradient-boosted trees", "svm": "RBF SVM",
    "knn": "5-NN", "logistic": "logistic regression", "cnn": "ConvNet",
}
DATASET_LABELS = {"digits8": "8x8 digits", "mnist": "MNIST", "breast-cancer": "breast cancer"}
_NORM_LABELS = {"linf": "L∞", "l2": "L2"}
#: The black-box attacks that estimate gradients from scores.
_ESTIMATORS = ("nes", "fd")


# ---------------------------------------------------------------------- reading the record
def cells(record: Mapping[str, Any], **match: Any) -> list[dict[str, Any]]:
    """The record's cells whose fields equal every ``match`` item, in record order."""
    return [c for c in record["cells"] if all(c.get(k) == v for k, v in match.items())]


def rate_at(cell: Mapping[str, Any], budget: int | None = None) -> dict[str, Any] | None:
    """The cell's rate entry at ``budget`` (default: the largest), or None if it did not run."""
    rates = cell.get("rates")
    if not rates:
        return None
    if budget is None:
        return dict(rates[-1])
    for r in rates:
        if r["budget"] == budget:
            return dict(r)
    return None


def _k_n(cell: Mapping[str, Any], budget: int | None = None) -> tuple[int, int] | None:
    r = rate_at(cell, budget)
    return None if r is None else (int(r["k"]), int(r["n"]))


def best_cell(record: Mapping[str, Any], dataset: str, model: str, norm: str, eps: float,
              threats: Sequence[str] = ("scores", "labels")) -> dict[str, Any] | None:
    """The black-box cell with the most successes at the largest budget (first on ties)."""
    best: dict[str, Any] | None = None
    for c in cells(record, dataset=dataset, model=model, norm=norm, eps=eps, status="ok"):
        if c["threat"] not in threats:
            continue
        kn = _k_n(c)
        if kn is None:
            continue
        if best is None or kn[0] > _k_n(best)[0]:  # type: ignore[index]
            best = c
    return best


def _budget(record: Mapping[str, Any], norm: str = "linf") -> int:
    """The largest budget of ``norm`` (the headline norm by default)."""
    per = record["config"].get("norm_budgets", {}).get(norm)
    return int(max(per if per else record["config"]["budgets"]))


def _fmt_eps(e: float) -> str:
    return f"{e:g}"


def _eps_text(record: Mapping[str, Any], dataset: str, norm: str, e: float) -> str:
    if dataset == "digits8":
        return f"{_fmt_eps(e)} of 16"
    if dataset == "breast-cancer":
        return f"{_fmt_eps(e)} of each feature's range"
    return _fmt_eps(e)


def _datasets(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(record["datasets"])


def _models_of(record: Mapping[str, Any], dataset: str) -> list[dict[str, Any]]:
    return [m for m in record["models"] if m["dataset"] == dataset]


def _headline(record: Mapping[str, Any], dataset: Mapping[str, Any]) -> tuple[str, float]:
    """The norm and budget the verdict quotes: the largest L∞ eps (else the first norm's)."""
    eps = dataset["eps"]
    norm = "linf" if "linf" in eps else next(iter(eps))
    return norm, float(max(eps[norm]))


# ---------------------------------------------------------------------- verdict
def verdict(record: Mapping[str, Any]) -> str:
    """The verdict paragraph, generated from the record's numbers.

    Parameters
    ----------
    record : dict
        A forests record (the ``verdict`` field is not read).

    Returns
    -------
    str
        Markdown text: the answer, the best black-box rate of every model at
        the headline budget, and where and why the gradient estimators fail.
        Every rate is written by :func:`hoodwink.stats.rate_text`; a sentence
        saying that one rate is below another is written only when their
        Wilson intervals are disjoint (:func:`hoodwink.stats.differ`).
    """
    budget = _budget(record)
    per_dataset = []
    fooled: list[str] = []
    held_alone: list[str] = []  # a smooth model on the same data was fooled on >= half
    held_with: list[str] = []  # every smooth model on the same data held too
    for d in _datasets(record):
        name = d["name"]
        norm, e = _headline(record, d)
        parts = []
        best_of: dict[str, tuple[int, int]] = {}
        for m in _models_of(record, name):
            best = best_cell(record, name, m["model"], norm, e)
            if best is None:
                continue
            k, n = _k_n(best)  # type: ignore[misc]
            best_of[m["model"]] = (k, n)
            parts.append(f"{MODEL_LABELS[m['model']]} {rate_text(k, n)} ({best['attack']})")
            pgd = cells(record, dataset=name, model=m["model"], attack="pgd", norm=norm, eps=e,
                        status="ok")
            if pgd and _k_n(pgd[0]) is not None:
                parts[-1] += f", white-box PGD {rate_text(*_k_n(pgd[0]))}"  # type: ignore[misc]
        smooth_fooled = any(2 * k >= n for mod, (k, n) in best_of.items()
                            if not _piecewise(record, name, mod))
        for mod, (k, n) in best_of.items():
            if not _piecewise(record, name, mod):
                continue
            label = f"the {MODEL_LABELS[mod]} on {DATASET_LABELS[name]}"
            if 2 * k >= n:
                fooled.append(label)
            else:
                (held_alone if smooth_fooled else held_with).append(label)
        if parts:
            per_dataset.append(
                f"on {DATASET_LABELS[name]} ({_NORM_LABELS[norm]} eps "
                f"{_eps_text(record, name, norm, e)}): " + "; ".join(parts)
            )
    if not per_dataset:
        return "No cell of this record ran, so it answers nothing."
    if not (fooled or held_alone or held_with):
        answer = ["**This record has no piecewise-constant model to judge.**"]
    elif fooled and not (held_alone or held_with):
        answer = [
            "**No: non-differentiable models are not safe from black-box attacks.** Using "
            "only the models' answers to queries, at most "
            f"{budget:,} per input, the best black-box attack fooled every "
            f"{_pc_kinds(record)} of the study on at least half of its inputs."
        ]
    else:
        answer = [
            "**Not safe: black-box attacks fooled " + _join(fooled) + " on at least half of "
            f"their inputs, with at most {budget:,} queries per input and only the models' "
            "answers.**" if fooled else
            f"**Within {budget:,} queries per input, the black-box attacks fooled no "
            "piecewise-constant model of the study on half of its inputs.**"
        ]
        if held_alone:
            answer.append(
                _cap(_join(held_alone)) + (" was" if len(held_alone) == 1 else " were")
                + " fooled on fewer than half of " + ("its" if len(held_alone) == 1
                                                     else "their")
                + " inputs, while a smooth model on the same data was fooled on at least "
                "half."
            )
        if held_with:
            answer.append(
                _cap(_join(held_with)) + (" was" if len(held_with) == 1 else " were")
                + " fooled on fewer than half too, but so was every smooth model on the same "
                "data: that budget is small for every model there."
            )
    text = [*answer, "Best black-box attack per model, at the largest L∞ budget and "
            f"{budget:,} queries: " + ". ".join(_cap(s) for s in per_dataset) + "."]
    text.append(_failure_text(record))
    text.append(_anytime_text(record))
    return " ".join(t for t in text if t)


def _join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pc_kinds(record: Mapping[str, Any], piecewise: bool = True) -> str:
    """The (non-)piecewise-constant model kinds of the record, in words ("random forest and
    5-NN")."""
    names: list[str] = []
    for m in record["models"]:
        if m["piecewise_constant"] == piecewise and MODEL_LABELS[m["model"]] not in names:
            names.append(MODEL_LABELS[m["model"]])
    return _join(names) if names else "model"


def _failure_text(record: Mapping[str, Any]) -> str:
    """Where the gradient estimators fail and why, with the probe and watch counts."""
    budget = _budget(record)
    sentences = []
    probes = record.get("probes", [])
    parts = []
    for est in _ESTIMATORS:
        for d in _datasets(record):
            pc = [p for p in probes if p["estimator"] == est and p["dataset"] == d["name"]
                  and _piecewise(record, p["dataset"], p["model"])]
            if not pc:
                continue
            k = sum(p["zero_estimates"] for p in pc)
            n = sum(p["n"] for p in pc)
            parts.append(f"{est.upper()} {k:,} of {n:,} on {DATASET_LABELS[d['name']]} "
                         f"(sigma {pc[0]['sigma']:.4g})")
    if parts:
        smooth = [p for p in probes if not _piecewise(record, p["dataset"], p["model"])]
        s_k = sum(p["zero_estimates"] for p in smooth)
        s_n = sum(p["n"] for p in smooth)
        sentences.append(
            "Where attacks fail, and why: piecewise-constant scores give zero "
            "finite-difference gradients. One gradient estimate at each clean input of the "
            f"{_pc_kinds(record)} models, probing at the attacks' own distance sigma, was "
            "exactly zero (every probe pair returned identical scores) on: "
            + "; ".join(parts)
            + (f"; against {s_k:,} of {s_n:,} estimates on the smooth models "
               f"({_pc_kinds(record, piecewise=False)})" if s_n else "") + "."
        )
    for est in _ESTIMATORS:
        watched = [c for c in record["cells"] if c.get("status") == "ok"
                   and c["attack"] == est and "unchanged" in c
                   and (c["norm"], c["eps"]) == _headline(record, _dataset(record, c))]
        if watched:
            u = sum(c["unchanged"] for c in watched)
            n = sum(c["n"] for c in watched)
            sentences.append(
                f"In the {_NORM_LABELS['linf']} {est.upper()} attacks on those models, the "
                f"scores of {u:,} of {n:,} attacked inputs never changed in any of up to "
                f"{budget:,} queries."
            )
    # A concrete pair: the estimator against the best search attack on the same cell.
    contrast = _contrast(record)
    if contrast:
        sentences.append(contrast)
    return " ".join(sentences)


def _dataset(record: Mapping[str, Any], cell: Mapping[str, Any]) -> dict[str, Any]:
    return next(d for d in _datasets(record) if d["name"] == cell["dataset"])


def _piecewise(record: Mapping[str, Any], dataset: str, model: str) -> bool:
    for m in record["models"]:
        if m["dataset"] == dataset and m["model"] == model:
            return bool(m["piecewise_constant"])
    return False


def _contrast(record: Mapping[str, Any]) -> str:
    """One sentence per dataset where NES is below the best score attack on the forest."""
    out = []
    for d in _datasets(record):
        norm, e = _headline(record, d)
        nes = cells(record, dataset=d["name"], model="forest", attack="nes", norm=norm,
                    eps=e, status="ok")
        best = best_cell(record, d["name"], "forest", norm, e, threats=("scores",))
        if not nes or best is None or best["attack"] in _ESTIMATORS:
            continue
        a, b = _k_n(nes[0]), _k_n(best)
        if a is None or b is None:
            continue
        if a[0] / a[1] < b[0] / b[1] and differ(a[0], a[1], b[0], b[1]):
            out.append(
                f"On the {DATASET_LABELS[d['name']]} forest, NES reached {rate_text(*a)} "
                f"where {best['attack']}, which searches with steps of the full budget "
                f"instead of estimating a gradient, reached {rate_text(*b)}"
            )
    if not out:
        return ""
    return "; ".join(out) + " (95% intervals disjoint)."


def _anytime_text(record: Mapping[str, Any]) -> str:
    """How well the direct runs at the check budget match the long runs, per attack."""
    totals: dict[str, list[int]] = {}
    budget = None
    for c in record["cells"]:
        for ch in c.get("checks") or []:
            if "agree" in ch:
                t = totals.setdefault(c["attack"], [0, 0])
                t[0] += ch["agree"]
                t[1] += ch["n"]
                budget = int(ch["budget"])
    if budget is None:
        return ""
    exact = [a for a, (k, n) in totals.items() if k == n]
    off = [f"{a} {k:,} of {n:,}" for a, (k, n) in totals.items() if k != n]
    text = (f"Anytime check: a direct run with a budget of {budget:,} queries gave the same "
            f"outcome as the first {budget:,} queries of the long run ")
    if exact:
        text += f"on every input for {', '.join(exact)}"
    if off:
        text += ("; " if exact else "on ") + "; ".join(off) + " inputs"
    return text + "."


# ---------------------------------------------------------------------- figures
def _figure_api() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "The forests figures need matplotlib: pip install 'hoodwink[images]'."
        ) from exc
    return Figure, FigureCanvasAgg


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


#: One colour per attack in every panel (matplotlib's tab10, then grey).
_ATTACK_ORDER = ("nes", "fd", "simba", "simba-dct", "square", "local-search", "hopskipjump",
                 "boundary-walk", "substitute", "pgd")


def _colour(attack: str) -> str:
    if attack in _ATTACK_ORDER:
        return f"C{_ATTACK_ORDER.index(attack)}"
    return "0.5"


def render_curves(record: Mapping[str, Any]) -> bytes:
    """Success rate against query budget, one panel per dataset and model (PNG bytes).

    Each panel shows every attack at the dataset's headline budget (the
    largest L∞ eps) with Wilson 95% error bars.
    """
    figure_cls, canvas_cls = _figure_api()
    datasets = _datasets(record)
    ncols = max((len(_models_of(record, d["name"])) for d in datasets), default=1)
    nrows = max(1, len(datasets))
    fig = figure_cls(figsize=(2.7 * ncols + 1.5, 2.4 * nrows + 0.6), layout="constrained")
    canvas_cls(fig)
    axes = fig.subplots(nrows, max(1, ncols), squeeze=False)
    handles: dict[str, Any] = {}
    for i, d in enumerate(datasets):
        norm, e = _headline(record, d)
        models = _models_of(record, d["name"])
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(models):
                ax.set_axis_off()
                continue
            m = models[j]
            for c in cells(record, dataset=d["name"], model=m["model"], norm=norm, eps=e,
                           status="ok"):
                rates = c.get("rates") or []
                if not rates:
                    continue
                xs = [r["budget"] for r in rates]
                ys = [r["rate"] for r in rates]
                err = [[r["rate"] - r["ci"][0] for r in rates],
                       [r["ci"][1] - r["rate"] for r in rates]]
                (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2,
                                  linestyle="--" if c["threat"] == "labels" else "-",
                                  color=_colour(c["attack"]), label=c["attack"])
                ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=line.get_color(),
                            alpha=0.4, capsize=2)
                handles.setdefault(c["attack"], line)
            ax.set_xscale("log")
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{DATASET_LABELS[d['name']]}: {MODEL_LABELS[m['model']]}\n"
                         f"{_NORM_LABELS[norm]} eps {_fmt_eps(e)}, n={m['n_attacked']}",
                         fontsize=8)
            ax.tick_params(labelsize=7)
            if j == 0:
                ax.set_ylabel("success rate", fontsize=8)
            if i == nrows - 1:
                ax.set_xlabel("queries per input", fontsize=8)
    if handles:
        names = sorted(handles, key=lambda a: (_ATTACK_ORDER + (a,)).index(a))
        fig.legend([handles[a] for a in names], names, loc="outside right center",
                   fontsize=8, title="attack (dashed: labels only)", title_fontsize=8)
    return _png(fig)


def render_matrix(record: Mapping[str, Any]) -> bytes:
    """Success at the largest budget: one heat map per dataset and budget, models by attacks."""
    figure_cls, canvas_cls = _figure_api()
    import numpy as np

    panels = []
    for d in _datasets(record):
        for norm, es in d["eps"].items():
            for e in es:
                panels.append((d, norm, float(e)))
    ncols = 4 if len(panels) >= 4 else max(1, len(panels))
    nrows = max(1, -(-len(panels) // ncols))
    attacks: list[str] = []
    for c in record["cells"]:
        if c["attack"] not in attacks:
            attacks.append(c["attack"])
    fig = figure_cls(figsize=(3.6 * ncols, 2.6 * nrows + 0.5), layout="constrained")
    canvas_cls(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for idx in range(nrows * ncols):
        ax = axes[idx // ncols][idx % ncols]
        if idx >= len(panels):
            ax.set_axis_off()
            continue
        d, norm, e = panels[idx]
        models = [m["model"] for m in _models_of(record, d["name"])]
        mat = np.full((len(models), len(attacks)), np.nan)
        for r, m in enumerate(models):
            for a_i, a in enumerate(attacks):
                found = cells(record, dataset=d["name"], model=m, attack=a, norm=norm, eps=e,
                              status="ok")
                rate = rate_at(found[0]) if found else None
                if rate is not None and rate["rate"] is not None:
                    mat[r, a_i] = rate["rate"]
                    ax.text(a_i, r, f"{rate['rate']:.0%}", ha="center", va="center",
                            fontsize=6, color="black" if rate["rate"] > 0.6 else "white")
        image = ax.imshow(np.ma.masked_invalid(mat), vmin=0, vmax=1, cmap="magma",
                          aspect="auto")
        ax.set_facecolor("#dddddd")
        ax.set_xticks(range(len(attacks)), attacks, fontsize=6, rotation=60, ha="right")
        ax.set_yticks(range(len(models)), models, fontsize=7)
        ax.set_title(f"{DATASET_LABELS[d['name']]}, {_NORM_LABELS[norm]} eps {_fmt_eps(e)}",
                     fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.7, label="success within the largest budget")
    return _png(fig)


# ---------------------------------------------------------------------- the page
def _check(record: Mapping[str, Any]) -> None:
    schema = record.get("schema") if isinstance(record, Mapping) else None
    if not isinstance(schema, str) or not schema.startswith("hoodwink.forests/"):
        raise ConfigError(
            f"forests.report needs a record of the forests study (schema "
            f"'hoodwink.forests/1'); got schema {schema!r}. Pass the dict forests.run "
            "returned, or its JSON file read back."
        )


def _rate_cell(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return "–"
    return rate_text(int(r["k"]), int(r["n"]))


def _norm_cell(r: Mapping[str, Any] | None) -> str:
    if r is None or r.get("median_norm") is None:
        return "–"
    return f"{r['median_norm']:.3g}"


def report(record: Mapping[str, Any]) -> Rendered:
    """The page and figures of a forests record, from the record alone.

    Parameters
    ----------
    record : dict
        From :func:`hoodwink.studies.forests.run`, or its JSON file read back.

    Returns
    -------
    Rendered
        ``.write(folder, stem="forests")`` writes ``forests.json/.md/.html`` and
        the two figures.

    Raises
    ------
    ConfigError
        ``record`` is not a forests record.
    """
    _check(record)
    cfg = record["config"]
    budgets = [int(b) for b in cfg["budgets"]]
    body = {k: v for k, v in record.items()
            if k not in ("schema", "title", "environment", "figures")}
    rep = Report("forests", "Are non-differentiable models safe from black-box attacks?",
                 body)
    rep.text(
        "Random forests, gradient-boosted trees, an RBF SVM, 5-nearest neighbours and a "
        "logistic regression, trained on the 8x8 digits, MNIST and the breast-cancer table "
        "(plus the bundled MNIST ConvNet), attacked with every black-box attack of hoodwink "
        f"at query budgets {', '.join(f'{b:,}' for b in budgets)} per input. "
        f"Profile {record['profile']!r}, seed {cfg['seed']}, {record['time_s']:.0f} s."
    )
    rep.heading("Verdict")
    rep.text(str(record.get("verdict") or verdict(record)))
    rep.heading("Definitions")
    for v in record["definitions"].values():
        rep.text(v)
    rep.text(f"Rates over fewer than {SMALL_N} inputs show their count and Wilson 95% "
             "interval; where two intervals overlap, the data do not tell the rates apart.")
    rep.heading("Data and models")
    rep.table(["dataset", "units", "features", "train", "test", "pool"],
              [[DATASET_LABELS[d["name"]], d["units"], d["features"], d["n_train"],
                d["n_test"], d["pool"]] for d in _datasets(record)])
    rep.table(["dataset", "model", "estimator", "scores", "trained on", "clean accuracy",
               "attacked"],
              [[DATASET_LABELS[m["dataset"]], m["model"], m["description"], m["scores"],
                m["train_n"], rate_text(m["test_correct"], m["test_n"]), m["n_attacked"]]
               for m in record["models"]])
    notes = [f"{m['model']} on {DATASET_LABELS[m['dataset']]}: {n}" for m in record["models"]
             for n in m["notes"]] + list(record.get("notes", []))
    for n in notes:
        rep.text(n)
    rep.heading("Why gradient estimates fail")
    rep.text("One gradient estimate per clean input of the pool, with the attack's own probe "
             "distance sigma and probes; zero: every probe pair returned identical scores, "
             "so the estimate is exactly zero.")
    rep.table(["dataset", "model", "estimator", "sigma", "probe pairs", "zero estimates",
               "identical pairs"],
              [[DATASET_LABELS[p["dataset"]], p["model"], p["estimator"], p["sigma"],
                p["pairs"], rate_text(p["zero_estimates"], p["n"]),
                rate_text(p["identical_pairs"], p["pairs_total"])]
               for p in record.get("probes", [])])
    watched = [c for c in record["cells"] if c.get("status") == "ok" and "unchanged" in c]
    if watched:
        rep.text("Score attacks on piecewise-constant models, watched: inputs whose scores "
                 "never changed in any query, and the share of all queries that returned "
                 "the clean scores.")
        rep.table(["dataset", "model", "attack", "norm", "eps", "unchanged inputs",
                   "queries with clean scores"],
                  [[DATASET_LABELS[c["dataset"]], c["model"], c["attack"], c["norm"],
                    _fmt_eps(c["eps"]), rate_text(c["unchanged"], c["n"]),
                    rate_text(*c["flat_queries"]) if c["flat_queries"][1] else "–"]
                   for c in watched])
    rep.figure(CURVES, "Success rate against queries per input at each dataset's largest L∞ "
                       "budget (error bars: Wilson 95%).")
    rep.figure(MATRIX, "Success within each cell's largest budget ("
                       + ", ".join(f"{_NORM_LABELS.get(k, k)} {_budget(record, k):,}"
                                   for k in cfg.get("norm_budgets", {}))
                       + " queries), every eps: models by attacks (grey: not run).")
    for d in _datasets(record):
        for norm, es in d["eps"].items():
            rep.heading(f"{DATASET_LABELS[d['name']]}, {_NORM_LABELS[norm]}")
            headers = ["model", "attack"]
            for e in es:
                headers += [f"eps {_fmt_eps(e)}, ≤{b:,} q" for b in budgets]
                headers.append(f"eps {_fmt_eps(e)} median norm")
            rows = []
            for m in _models_of(record, d["name"]):
                names = []
                for c in cells(record, dataset=d["name"], model=m["model"], norm=norm):
                    if c["attack"] not in names:
                        names.append(c["attack"])
                for a in names:
                    row: list[Any] = [m["model"], a]
                    for e in es:
                        found = cells(record, dataset=d["name"], model=m["model"], attack=a,
                                      norm=norm, eps=float(e))
                        cell = found[0] if found else None
                        if cell is None or cell.get("status") != "ok":
                            row += ["–"] * len(budgets) + ["–"]
                            continue
                        row += [_rate_cell(rate_at(cell, b)) for b in budgets]
                        row.append(_norm_cell(rate_at(cell)))
                    rows.append(row)
            rep.table(headers, rows)
    checks = [(c, ch) for c in record["cells"] for ch in (c.get("checks") or [])]
    if checks:
        rep.heading("Anytime check")
        rep.text("Each cell run again directly at a smaller budget: successes of that run, "
                 "successes derived from the long run (within its first queries), and the "
                 "inputs on which the two agree.")
        rep.table(["dataset", "model", "attack", "norm", "eps", "budget", "direct",
                   "derived", "agree"],
                  [[DATASET_LABELS[c["dataset"]], c["model"], c["attack"], c["norm"],
                    _fmt_eps(c["eps"]), ch["budget"],
                    ch.get("k", ch.get("error", "–")), ch.get("derived_k", "–"),
                    f"{ch['agree']}/{ch['n']}" if "agree" in ch else "–"]
                   for c, ch in checks])
    skipped = [c for c in record["cells"] if c.get("status") != "ok"]
    if skipped:
        rep.heading("Cells not run")
        rep.table(["dataset", "model", "attack", "norm", "eps", "why"],
                  [[DATASET_LABELS[c["dataset"]], c["model"], c["attack"], c["norm"],
                    _fmt_eps(c["eps"]), c["reason"]] for c in skipped])
    rep.heading("Timings")
    rep.table(["dataset", "model", "fit s", "attacks s"],
              [[DATASET_LABELS[m["dataset"]], m["model"], m["fit_s"], m.get("attack_s", 0.0)]
               for m in record["models"]])
    return Rendered(rep, {CURVES: render_curves(record), MATRIX: render_matrix(record)})

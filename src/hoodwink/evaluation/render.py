"""The evaluation report: one self-contained HTML page, or Markdown, from the JSON record.

An evaluation is saved as ``report.json`` (the versioned record, schema
``"hoodwink.evaluation/1"``) and ``report.safetensors`` beside it (the example
inputs ``x``, their best adversarial ``x_adv`` and their sample ``index``).
Everything on the page is drawn from those two files, so the CLI, a notebook
and CI show the same numbers:

- :func:`to_html` gives one HTML file that needs nothing else: the figures are
  inline PNG (``data:`` URLs), there is no JavaScript and no external URL.
- :func:`to_markdown` gives the same content without pictures (or linking
  figure files, when :func:`write_report` writes them beside the page).
- :func:`write_report` reads a saved record (and its tensors when present)
  and writes either page; ``hoodwink report`` is a thin shell over it.

Every number on the HTML page sits in an element with three attributes, so a
program can compare page and record::

    <span data-key="summary.robust.0.robust_accuracy" data-value="0.9"
          data-format="pct">90.0%</span>

``data-key`` is the number's path in the record (dict keys and list
positions joined by dots); ``data-value`` is the number as JSON, exactly as
the record holds it; ``data-format`` says how the text shows it (``pct``:
percent with one decimal; ``int``: an integer with thousands separators;
``num``: four significant digits; ``bool``: yes or no). Numbers the page
computes rather than reads have keys under ``derived.``: ``derived.clean_ci95.0``
and ``.1`` (Wilson 95% interval of the clean accuracy), ``derived.finite_norms``
and ``derived.no_adversarial`` (clean-correct samples with and without a finite
minimal norm) and, for a record without intervals, ``derived.robust_ci95.<i>.<j>``.
The feature values of non-image examples have keys ``tensors.<name>.<row>.<feature>``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from hoodwink._validation import PathLike, check, check_choice, reject
from hoodwink.attacks._store import check_schema, companion_path, read_json, read_tensors
from hoodwink.errors import InputError
from hoodwink.evaluation import _figures
from hoodwink.evaluation.record import SCHEMA
from hoodwink.reports import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    make_folder,
)
from hoodwink.stats import SMALL_N, wilson

__all__ = [
    "FIGURES",
    "SCHEMA",
    "load_record",
    "render_figures",
    "to_html",
    "to_markdown",
    "write_report",
]

_FAMILY, _, _VERSION = SCHEMA.partition("/")
#: The figures of a report, by name, in page order; :func:`write_report` writes a
#: Markdown page's figures as ``<stem>-<name>.png``.
FIGURES = ("curve", "norms", "examples")
#: Most features of a non-image example shown in its table (the most changed ones).
MAX_FEATURES = 32
#: The documentation page that explains each flag, one anchor per flag code.
FLAG_DOCS = "docs/evaluate.md"

_FIX = "Pass the report.json that Evaluation.save() wrote, unchanged."


# ---------------------------------------------------------------------------- reading
def load_record(path: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read a saved evaluation record and, when present, its example tensors.

    Parameters
    ----------
    path : str or Path
        The ``report.json`` that ``Evaluation.save`` wrote.

    Returns
    -------
    record : dict
        The checked record.
    tensors : dict of str to torch.Tensor, or None
        ``x``, ``x_adv`` and ``index`` from the companion ``.safetensors`` file
        the record names; None when the record names none or the file is gone
        (the page then shows no pictures).

    Raises
    ------
    InputError
        The file is missing or not JSON; its schema is not an evaluation
        record's, or newer than this version of hoodwink reads; a field the
        page needs is missing or malformed; or the tensor file is present but
        does not match the record (changed, or from another run).
    """
    p = check("load_record", "path", path, PathLike())
    if not p.is_file():
        what = "a folder" if p.is_dir() else "does not exist"
        raise InputError(f"No evaluation record at {p}: it {what}. {_FIX}")
    rec = read_json(p, _FIX)
    record = _check_record(rec, str(p))
    return record, _companion(p, record)


def _companion(json_path: Path, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The example tensors the record names, read and checked by the shared store."""
    companion = companion_path(json_path, record)
    if companion is None or not companion.is_file():
        return None
    check_schema(json_path, record, SCHEMA, "Evaluation")
    tensors = read_tensors(json_path, dict(record), "Evaluation")
    # An evaluation saved without example inputs stores only their indices.
    return dict(tensors) if "x" in tensors and "x_adv" in tensors else None


def _version(schema: Any) -> int | None:
    if not isinstance(schema, str):
        return None
    family, _, version = schema.partition("/")
    if family != _FAMILY or not re.fullmatch(r"[0-9]{1,9}", version):
        return None
    return int(version)


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    """``rec`` as a dict after checking the schema and every field the page reads."""
    if not isinstance(rec, Mapping):
        raise InputError(f"{where} is not an evaluation record: it holds a "
                         f"{type(rec).__name__}, not a JSON object. {_FIX}")
    schema = rec.get("schema")
    version = _version(schema)
    if version is None:
        raise InputError(f"{where} is not an evaluation record: its schema is {schema!r}, "
                         f"expected {SCHEMA!r}. {_FIX}")
    if version > int(_VERSION):
        from hoodwink import __version__

        raise InputError(
            f"{where} has schema {schema!r}, newer than this version of hoodwink "
            f"({__version__}) reads ({SCHEMA!r}). Upgrade hoodwink (pip install -U hoodwink) "
            "to render it."
        )
    if version < int(_VERSION):
        raise InputError(f"{where} has schema {schema!r}, which no version of hoodwink "
                         f"wrote; this version reads {SCHEMA!r}. {_FIX}")

    def bad(field: str, what: str) -> InputError:
        return InputError(f"{where} is not a valid {SCHEMA} record: {field!r} {what}. "
                          f"{_FIX}")

    def need(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], field: str,
             kind_text: str) -> Any:
        if key not in obj:
            raise bad(field, "is missing")
        value = obj[key]
        # JSON true/false read back as bool, which Python counts as an int: never a count.
        if isinstance(value, bool) or not isinstance(value, kind):
            raise bad(field, f"must be {kind_text}; got {_short(value)}")
        return value

    for key, kind in (("model", dict), ("data", dict), ("config", dict), ("summary", dict),
                      ("attacks", list), ("samples", list)):
        need(rec, key, kind, key, "a JSON object" if kind is dict else "a list")
    for key, kind in (("curve", list), ("flags", list), ("examples", list),
                      ("timings", dict), ("environment", dict)):
        if rec.get(key) is not None and not isinstance(rec[key], kind):
            raise bad(key, f"must be {'a list' if kind is list else 'a JSON object'}; got "
                           f"{_short(rec[key])}")
    number = (int, float)
    cfg, summary = rec["config"], rec["summary"]
    need(rec["model"], "name", str, "model.name", "a string")
    need(cfg, "norm", str, "config.norm", "a string")
    eps = need(cfg, "eps", list, "config.eps", "a list of budgets")
    if not all(_is_number(e) for e in eps):
        raise bad("config.eps", f"must hold numbers; got {_short(eps)}")
    n = need(summary, "n", int, "summary.n", "an int")
    if n < 1:
        raise bad("summary.n", f"must be at least 1; got {n}")
    k = need(summary, "clean_correct", int, "summary.clean_correct", "an int")
    if not 0 <= k <= n:
        raise bad("summary.clean_correct", f"must be in [0, summary.n] = [0, {n}]; got {k}")
    robust = need(summary, "robust", list, "summary.robust", "a list")
    if len(robust) != len(eps):
        raise bad("summary.robust", f"must have one entry per budget of config.eps "
                                    f"({len(eps)}); got {len(robust)}")
    for i, r in enumerate(robust):
        if not isinstance(r, Mapping):
            raise bad(f"summary.robust.{i}", "must be a JSON object")
        need(r, "eps", number, f"summary.robust.{i}.eps", "a number")
        count = need(r, "robust", int, f"summary.robust.{i}.robust", "an int")
        if not 0 <= count <= n:
            raise bad(f"summary.robust.{i}.robust", f"must be in [0, {n}]; got {count}")
        need(r, "robust_accuracy", number, f"summary.robust.{i}.robust_accuracy", "a number")
        ci = r.get("ci95")
        if ci is not None and (not isinstance(ci, list) or len(ci) != 2
                               or not all(_is_number(c) for c in ci)):
            raise bad(f"summary.robust.{i}.ci95", f"must be [low, high]; got {_short(ci)}")
    for i, pt in enumerate(rec.get("curve") or []):
        if not isinstance(pt, Mapping) or not _is_number(pt.get("eps")) \
                or not _is_number(pt.get("robust_accuracy")):
            raise bad(f"curve.{i}", f"must be {{'eps': number, 'robust_accuracy': number}}; "
                                    f"got {_short(pt)}")
    for i, a in enumerate(rec["attacks"]):
        if not isinstance(a, Mapping) or not isinstance(a.get("name"), str):
            raise bad(f"attacks.{i}", f"must be a JSON object with a 'name'; got {_short(a)}")
    for i, s in enumerate(rec["samples"]):
        if not isinstance(s, Mapping) or not isinstance(s.get("index"), int):
            raise bad(f"samples.{i}", f"must be a JSON object with an int 'index'; "
                                      f"got {_short(s)}")
        mn = s.get("min_norm")
        if mn is not None and not _is_number(mn):
            raise bad(f"samples.{i}.min_norm", f"must be a number or null; got {_short(mn)}")
    for i, f in enumerate(rec.get("flags") or []):
        if not isinstance(f, Mapping) or not isinstance(f.get("code"), str):
            raise bad(f"flags.{i}", f"must be a JSON object with a 'code'; got {_short(f)}")
    return dict(rec)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_record(record: Any, owner: str) -> tuple[dict[str, Any], Any]:
    """The checked record dict of an Evaluation or a dict, and the Evaluation's tensors."""
    tensors: Any = None
    if isinstance(record, Mapping):
        data: Any = record
    elif callable(getattr(record, "to_dict", None)):
        # An Evaluation: its example tensors, when it holds them, follow its examples list.
        data = record.to_dict()
        x = getattr(record, "x_examples", None)
        if x is not None:
            x_adv = getattr(record, "x_adv_examples", None)
            tensors = {"x": x, "x_adv": x if x_adv is None else x_adv,
                       "index": np.asarray(data.get("examples") or [], dtype=np.int64)}
    else:
        reject(owner, "record", record, "an Evaluation or its record (a dict, e.g. read "
               "from report.json)")
    return _check_record(data, "the record"), tensors


# ---------------------------------------------------------------------------- page model
@dataclass(frozen=True)
class _Num:
    """A number from the record (or derived from it), shown in a machine-checkable element."""

    key: str
    value: Any
    fmt: Literal["pct", "int", "num", "bool"] = "num"


@dataclass(frozen=True)
class _Link:
    """A link to the documentation (a relative path with an anchor)."""

    text: str
    href: str


@dataclass(frozen=True)
class _Code:
    """Inline code (an attack's repr)."""

    text: str


_Inline = str | _Num | _Link | _Code
_Cell = list[_Inline]


@dataclass(frozen=True)
class _Block:
    kind: Literal["h2", "p", "table", "figure"]
    parts: tuple[Any, ...]


def _fmt(n: _Num) -> str:
    v = n.value
    if v is None:
        return "–"
    if n.fmt == "bool":
        return "yes" if v else "no"
    if n.fmt == "int":
        return f"{int(v):,}"
    f = float(v)
    if not math.isfinite(f):
        return str(f)
    if n.fmt == "pct":
        return f"{f * 100:.1f}%"
    return f"{f:.4g}"


def _num(key: str, value: Any, fmt: Literal["pct", "int", "num", "bool"] | None = None) -> _Num:
    if fmt is None:
        fmt = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "num"
    return _Num(key, value, fmt)


#: Most elements of a list shown in the set-up table (1,000 ImageNet class names are not).
_MAX_LIST = 20


def _value(key: str, value: Any) -> _Cell:
    """Any JSON value as inline parts: numbers keyed, lists element by element."""
    if isinstance(value, bool | int | float):
        return [_num(key, value)]
    if value is None:
        return ["–"]
    if isinstance(value, list):
        out: _Cell = ["["]
        for i, v in enumerate(value[:_MAX_LIST]):
            if i:
                out.append(", ")
            out += _value(f"{key}.{i}", v)
        if len(value) > _MAX_LIST:
            out.append(f", … {len(value) - _MAX_LIST} more")
        return [*out, "]"]
    if isinstance(value, Mapping):
        out = []
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append("; ")
            out += [f"{k}: ", *_value(f"{key}.{k}", v)]
        return out
    return [str(value)]


def _eps_cell(key: str, eps: Any, record: Mapping[str, Any]) -> _Cell:
    """A budget, with its 8-bit fraction (``8/255``) for models on the [0, 1] 8-bit grid."""
    if eps is None:
        return ["all (minimum norm)"]
    cell: _Cell = [_num(key, eps, "num")]
    model = record["model"]
    if (record["config"]["norm"] == "linf" and model.get("levels") == 256
            and model.get("bounds") == [0.0, 1.0] and _is_number(eps) and eps > 0):
        steps = float(eps) * 255
        if abs(steps - round(steps)) < 1e-6 * max(1.0, steps):
            cell.append(f" ({round(steps)}/255)")
    return cell


def _label(record: Mapping[str, Any], key: str, label: Any) -> _Cell:
    """A class index, with the model's class name when it has names."""
    if label is None:
        return ["–"]
    cell: _Cell = [_num(key, label)]
    names = record["model"].get("class_names")
    if isinstance(names, list) and isinstance(label, int) and 0 <= label < len(names):
        cell.append(f" ({names[label]})")
    return cell


# ---------------------------------------------------------------------------- content
def _blocks(record: Mapping[str, Any], figures: Collection[str],
            arrays: Mapping[str, npt.NDArray[Any]] | None) -> list[_Block]:
    """The page, section by section; rendered to HTML and Markdown alike."""
    rec = record
    model, data, cfg, summary = rec["model"], rec["data"], rec["config"], rec["summary"]
    n = int(summary["n"])
    norm = str(cfg["norm"])
    out: list[_Block] = []

    def h2(anchor: str, text: str) -> None:
        out.append(_Block("h2", (anchor, text)))

    def p(*parts: _Inline) -> None:
        out.append(_Block("p", tuple(parts)))

    def table(headers: Sequence[str], rows: Sequence[Sequence[Sequence[_Inline]]]) -> None:
        out.append(_Block("table", (tuple(headers), tuple(tuple(r) for r in rows))))

    def figure(name: str, caption: str) -> None:
        if name in figures:
            out.append(_Block("figure", (name, caption)))

    attack_names = ", ".join(str(a.get("name")) for a in cfg.get("attacks") or [])
    p("Model ", str(model["name"]), " on ", str(data.get("name", "?")),
      ", ", _num("summary.n", n), " samples, ", _figures.norm_label(norm), " budgets; attacks "
      "in run order: ", attack_names or "–", "; seed ", _num("config.seed", cfg.get("seed")),
      ". Created ", str(rec.get("created", "–")),
      " with hoodwink ", str(rec.get("hoodwink_version", "–")), ".")

    # -------------------------------------------------------------- headline
    h2("robust-accuracy", "Robust accuracy")
    clean_k = int(summary["clean_correct"])
    clean_lo, clean_hi = wilson(clean_k, n)
    rows: list[list[_Cell]] = [[
        ["clean"], [_num("summary.clean_correct", clean_k)], [_num("summary.n", n)],
        [_num("summary.clean_accuracy", summary.get("clean_accuracy"), "pct")],
        [_num("derived.clean_ci95.0", clean_lo, "pct"), "–",
         _num("derived.clean_ci95.1", clean_hi, "pct")],
    ]]
    for i, r in enumerate(summary["robust"]):
        key = f"summary.robust.{i}"
        ci = r.get("ci95")
        if ci is not None:
            ci_cell: _Cell = [_num(f"{key}.ci95.0", ci[0], "pct"), "–",
                              _num(f"{key}.ci95.1", ci[1], "pct")]
        else:
            lo, hi = wilson(int(r["robust"]), n)
            ci_cell = [_num(f"derived.robust_ci95.{i}.0", lo, "pct"), "–",
                       _num(f"derived.robust_ci95.{i}.1", hi, "pct")]
        rows.append([["eps ", *_eps_cell(f"{key}.eps", r["eps"], rec)],
                     [_num(f"{key}.robust", r["robust"])], [_num("summary.n", n)],
                     [_num(f"{key}.robust_accuracy", r["robust_accuracy"], "pct")], ci_cell])
    table(["budget", "correct", "of n", "accuracy", "95% interval (Wilson)"], rows)
    p("Robust accuracy at eps: the fraction of all ", _num("summary.n", n), " samples still "
      "classified correctly by the model after every attack at that budget (samples already "
      "wrong count as errors). It is an upper bound on the true robust accuracy: a stronger "
      "attack can only lower it.")
    if n < SMALL_N:
        p(f"Fewer than {SMALL_N} samples: read the intervals, not the point estimates; two "
          "rates whose intervals overlap are not shown to differ.")
    med = summary.get("median_min_norm")
    p("Median minimal adversarial norm over the clean-correct samples where one was found: ",
      _num("summary.median_min_norm", med, "num"), ". Total time ",
      _num("summary.time_s", summary.get("time_s"), "num"), " s.")

    # -------------------------------------------------------------- flags
    flags = list(rec.get("flags") or [])
    h2("flags", "Flags")
    if flags:
        frows: list[list[_Cell]] = []
        for i, f in enumerate(flags):
            code = str(f["code"])
            frows.append([
                [str(f.get("severity", "–"))],
                [_Link(code, _doc_href(f))],
                [str(f.get("title", ""))],
                [str(f.get("message", ""))],
                _value(f"flags.{i}.evidence", f.get("evidence")) if f.get("evidence")
                else ["–"],
            ])
        table(["severity", "code", "flag", "message", "evidence"], frows)
        p("Each flag is a sign that the attacks may have been too weak for this model, so "
          "the robust accuracy above may overstate its robustness; the code links to what "
          "it means and what to do.")
    else:
        p("No sanity check fired.")

    # -------------------------------------------------------------- curve
    h2("curve", "Robust accuracy against eps")
    curve = list(rec.get("curve") or [])
    figure("curve", "Robust accuracy against eps. Line: from the per-sample minimal norms "
                    "(a sample counts as robust at eps while its minimal norm exceeds eps). "
                    "Squares: every attack at the grid budgets, with Wilson 95% intervals.")
    if not curve:
        p("The record has no dense curve (no minimum-norm attack ran); the grid budgets "
          "are in the table above.")
    else:
        p("The dense curve has ", _num("derived.curve_points", len(curve)), " points, from "
          "eps ", _num("curve.0.eps", curve[0]["eps"]), " to ",
          _num(f"curve.{len(curve) - 1}.eps", curve[-1]["eps"]), ".")

    # -------------------------------------------------------------- norms
    h2("norms", "Minimal adversarial norms")
    finite, missing = _norm_counts(rec)
    figure("norms", "Histogram of the minimal adversarial norm of each clean-correct sample "
                    "where one was found; dashed lines: the grid budgets.")
    p("Of the ", _num("summary.clean_correct", clean_k), " clean-correct samples, ",
      _num("derived.finite_norms", finite), " have an adversarial example with a finite "
      "minimal norm and ", _num("derived.no_adversarial", missing), " have none that any "
      "attack found.")

    # -------------------------------------------------------------- examples
    h2("examples", "Examples")
    out.extend(_examples(rec, figures, arrays))

    # -------------------------------------------------------------- stages
    h2("attacks", "Attack stages")
    srows: list[list[_Cell]] = []
    for i, a in enumerate(rec["attacks"]):
        key = f"attacks.{i}"
        srows.append([[str(i + 1)], [str(a["name"])], [str(a.get("threat", "–"))],
                      _eps_cell(f"{key}.eps", a.get("eps"), rec),
                      [_num(f"{key}.attacked", a.get("attacked"), "int")],
                      [_num(f"{key}.broke", a.get("broke"), "int")],
                      [_num(f"{key}.robust_after", a.get("robust_after"), "int")],
                      [_num(f"{key}.time_s", a.get("time_s"), "num")],
                      [_num(f"{key}.queries", a.get("queries"), "int")],
                      [_probe_text(a.get("probe"))]])
    table(["stage", "attack", "threat", "eps", "attacked", "broke", "robust after",
           "time (s)", "queries", "probe"], srows)
    p("One row per attack and budget, in run order. attacked: samples still robust when the "
      "stage began; broke: samples this stage newly broke at that budget (its marginal "
      "contribution); robust after: samples still robust after it; probe: whether a probed "
      "stage went on to the rest of its budget, and why (docs/evaluate.md#probes).")

    # -------------------------------------------------------------- timings
    h2("timings", "Timings")
    timings = rec.get("timings") or {}
    table(["phase", "seconds"], [[[str(k).removesuffix("_s").replace("_", " ")],
                                  _value(f"timings.{k}", v)] for k, v in timings.items()])

    # -------------------------------------------------------------- setup
    h2("setup", "Model, data, configuration and versions")
    setup: list[list[_Cell]] = []
    for section in ("model", "data"):
        for k, v in rec[section].items():
            setup.append([[f"{section}.{k}"], _value(f"{section}.{k}", v)])
    for k, v in cfg.items():
        if k == "attacks":
            continue
        setup.append([[f"config.{k}"], _value(f"config.{k}", v)])
    table(["setting", "value"], setup)
    arows: list[list[_Cell]] = []
    for i, a in enumerate(cfg.get("attacks") or []):
        if not isinstance(a, Mapping):
            continue
        arows.append([[str(i + 1)], [str(a.get("name", "–"))], [str(a.get("threat", "–"))],
                      _value(f"config.attacks.{i}.minimum_norm", a.get("minimum_norm")),
                      [_Code(str(a.get("repr", "")))]])
    if arows:
        table(["#", "attack", "threat", "minimum norm", "configuration"], arows)
    versions = {"hoodwink": rec.get("hoodwink_version")}
    versions.update(rec.get("environment") or {})
    table(["software", "version"], [[[str(k)], _value(f"environment.{k}", v)
                                     if k != "hoodwink" else [str(v)]]
                                    for k, v in versions.items()])
    return out


def _doc_href(flag: Mapping[str, Any]) -> str:
    """The flag's documentation link: the record's relative ``doc`` path, never a URL."""
    doc = flag.get("doc")
    if isinstance(doc, str) and re.fullmatch(r"[A-Za-z0-9_./-]+(#[A-Za-z0-9_.-]+)?", doc) \
            and not doc.startswith("/") and ".." not in doc:
        return doc
    return f"{FLAG_DOCS}#{quote(str(flag['code']), safe='')}"


def _norm_counts(rec: Mapping[str, Any]) -> tuple[int, int]:
    """Clean-correct samples with a finite minimal norm, and with none."""
    finite = missing = 0
    for s in rec["samples"]:
        if not s.get("clean_correct"):
            continue
        mn = s.get("min_norm")
        if mn is not None and math.isfinite(float(mn)):
            finite += 1
        else:
            missing += 1
    return finite, missing


def _finite_norms(rec: Mapping[str, Any]) -> list[float]:
    return [float(s["min_norm"]) for s in rec["samples"]
            if s.get("clean_correct") and s.get("min_norm") is not None
            and math.isfinite(float(s["min_norm"]))]


def _positions(rec: Mapping[str, Any]) -> dict[int, int]:
    """Sample index → position in ``samples``."""
    return {int(s["index"]): i for i, s in enumerate(rec["samples"])}


def _example_rows(rec: Mapping[str, Any], indices: Sequence[int]) -> list[list[_Cell]]:
    pos = _positions(rec)
    rows: list[list[_Cell]] = []
    for idx in indices:
        i = pos.get(int(idx))
        if i is None:
            rows.append([[str(idx)], ["not in samples"], ["–"], ["–"], ["–"], ["–"]])
            continue
        s = rec["samples"][i]
        key = f"samples.{i}"
        rows.append([[_num(f"{key}.index", s["index"])],
                     _label(rec, f"{key}.label", s.get("label")),
                     _label(rec, f"{key}.pred_clean", s.get("pred_clean")),
                     _label(rec, f"{key}.pred_adv", s.get("pred_adv")),
                     [_num(f"{key}.min_norm", s.get("min_norm"), "num")],
                     [str(s["broken_by"]) if s.get("broken_by") is not None else "–"]])
    return rows


_EXAMPLE_HEADERS = ("sample", "label", "clean prediction", "adversarial prediction",
                    "minimal norm", "broken by")


def _examples(rec: Mapping[str, Any], figures: Collection[str],
              arrays: Mapping[str, npt.NDArray[Any]] | None) -> list[_Block]:
    """The examples: a figure of triptychs, or each example's features, and a table."""
    if arrays is not None:
        indices = [int(i) for i in arrays["index"].reshape(-1).tolist()]
    else:
        indices = [int(i) for i in rec.get("examples") or [] if isinstance(i, int)]
    if not indices:
        return [_Block("p", ("The record holds no examples.",))]
    out: list[_Block] = []
    if "examples" in figures:
        shown = min(len(indices), _figures.MAX_EXAMPLES)
        out.append(_Block("figure", ("examples", (
            f"Examples: original, adversarial, and the perturbation amplified so that its "
            f"largest change spans black or white (mid-grey: no change). {shown} of "
            f"{len(indices)} examples shown."))))
    elif arrays is None:
        out.append(_Block("p", ("The example tensors (report.safetensors) were not available, "
                                "so the examples are listed without their inputs.",)))
    else:
        out.append(_Block("p", ("The inputs are not images (C, H, W with C in 1 or 3), so "
                                "each example's features are listed below the table: "
                                "original, adversarial and the change.",)))
    out.append(_Block("table", (_EXAMPLE_HEADERS, tuple(map(tuple, _example_rows(
        rec, indices))))))
    if arrays is not None and "examples" not in figures:
        out.extend(_feature_tables(arrays, indices))
    return out


def _feature_tables(arrays: Mapping[str, npt.NDArray[Any]],
                    indices: Sequence[int]) -> list[_Block]:
    """One table per non-image example: its features before and after, and the change."""
    out: list[_Block] = []
    x = arrays["x"].reshape(len(indices), -1)
    xa = arrays["x_adv"].reshape(len(indices), -1)
    for row, idx in enumerate(indices):
        delta = xa[row] - x[row]
        feats = np.arange(x.shape[1])
        note = ""
        if feats.size > MAX_FEATURES:
            # The most changed features (the first on ties), shown in feature order.
            feats = np.sort(np.argsort(-np.abs(delta), kind="stable")[:MAX_FEATURES])
            note = f" ({MAX_FEATURES} most changed of {x.shape[1]} features)"
        out.append(_Block("p", (f"Sample {idx}{note}:",)))
        rows = tuple(
            ([str(int(f))],
             [_num(f"tensors.x.{row}.{int(f)}", float(x[row, f]), "num")],
             [_num(f"tensors.x_adv.{row}.{int(f)}", float(xa[row, f]), "num")],
             [_num(f"derived.change.{row}.{int(f)}", float(delta[f]), "num")])
            for f in feats)
        out.append(_Block("table", (("feature", "original", "adversarial", "change"), rows)))
    return out


# ---------------------------------------------------------------------------- figures
def _arrays(tensors: Any) -> dict[str, npt.NDArray[Any]] | None:
    """The example tensors as numpy arrays, checked against each other."""
    if tensors is None:
        return None
    if not isinstance(tensors, Mapping):
        reject("to_html", "tensors", tensors, "a dict with 'x', 'x_adv' and 'index' "
               "(e.g. read from report.safetensors) or None")
    missing = [k for k in ("x", "x_adv", "index") if k not in tensors]
    if missing:
        reject("to_html", "tensors", sorted(tensors), "a dict with 'x', 'x_adv' and 'index'",
               hint=f"Missing: {', '.join(missing)}.")
    out: dict[str, npt.NDArray[Any]] = {}
    for k in ("x", "x_adv", "index"):
        v = tensors[k]
        if hasattr(v, "detach"):
            v = v.detach().cpu()
            if str(getattr(v, "dtype", "")) == "torch.bfloat16":
                v = v.float()
            v = v.numpy()
        out[k] = np.asarray(v)
    out["x"] = out["x"].astype(np.float64)
    out["x_adv"] = out["x_adv"].astype(np.float64)
    count = out["index"].reshape(-1).shape[0]
    if out["x"].shape != out["x_adv"].shape or out["x"].ndim < 1 \
            or out["x"].shape[0] != count:
        raise InputError(
            f"The example tensors do not fit together: x has shape {out['x'].shape}, x_adv "
            f"{out['x_adv'].shape} and index {out['index'].shape}; x and x_adv must have the "
            "same shape (k, ...) with k the length of index. Save the evaluation again."
        )
    return out


def render_figures(record: Any, *, tensors: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """The report's figures as PNG bytes, by name (see :data:`FIGURES`).

    Parameters
    ----------
    record : Evaluation or dict
        The evaluation, or its record (``Evaluation.to_dict()`` or report.json read back).
    tensors : dict, optional
        ``x``, ``x_adv`` (shape (k, ...)) and ``index`` (shape (k,)): the example
        inputs and their best adversarial, as torch tensors or numpy arrays.

    Returns
    -------
    dict of str to bytes
        ``"curve"`` and ``"norms"`` when the record has data for them, and
        ``"examples"`` (triptychs) when ``tensors`` are given and the inputs are
        images (C, H, W) with C in {1, 3}.
    """
    rec, held = _as_record(record, "render_figures")
    return _render_figures(rec, _arrays(tensors if tensors is not None else held))


def _render_figures(rec: Mapping[str, Any],
                    arrays: Mapping[str, npt.NDArray[Any]] | None) -> dict[str, bytes]:
    cfg, summary = rec["config"], rec["summary"]
    norm, n = str(cfg["norm"]), int(summary["n"])
    grid = []
    for r in summary["robust"]:
        ci = r.get("ci95") or list(wilson(int(r["robust"]), n))
        grid.append({"eps": r["eps"], "robust_accuracy": r["robust_accuracy"], "ci95": ci})
    figs: dict[str, bytes] = {}
    curve = _figures.curve_png(list(rec.get("curve") or []), grid, norm, n)
    if curve is not None:
        figs["curve"] = curve
    norms = _figures.norms_png(_finite_norms(rec), [float(e) for e in cfg["eps"]], norm)
    if norms is not None:
        figs["norms"] = norms
    if arrays is not None and len(arrays["index"].reshape(-1)) > 0 \
            and _figures.is_image_shape(arrays["x"].shape[1:]):
        titles = _titles(rec, [int(i) for i in arrays["index"].reshape(-1).tolist()])
        bounds = rec["model"].get("bounds")
        b = (float(bounds[0]), float(bounds[1])) if isinstance(bounds, list) \
            and len(bounds) == 2 and all(_is_number(v) for v in bounds) else None
        figs["examples"] = _figures.examples_png(arrays["x"], arrays["x_adv"], titles, b)
    return figs


def _titles(rec: Mapping[str, Any], indices: Sequence[int]) -> list[str]:
    pos = _positions(rec)
    names = rec["model"].get("class_names")

    def name(c: Any) -> str:
        if c is None:
            return "–"
        if isinstance(names, list) and isinstance(c, int) and 0 <= c < len(names):
            return str(names[c])[:20]
        return str(c)

    out = []
    for idx in indices:
        i = pos.get(idx)
        if i is None:
            out.append(f"sample {idx}")
            continue
        s = rec["samples"][i]
        out.append(f"sample {idx}: {name(s.get('label'))} → {name(s.get('pred_adv'))}")
    return out


# ---------------------------------------------------------------------------- HTML
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.4}h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px "
    "solid #ddd}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;"
    "padding:.2em .6em;vertical-align:top}th{background:#f4f4f4;text-align:left}"
    "td.n{text-align:right;white-space:nowrap}img{max-width:100%;height:auto}"
    "figure{margin:1em 0}figcaption{font-size:.9em;color:#555}code{font-size:.9em}"
    ".sev-error{color:#b00020;font-weight:bold}.sev-warning{color:#a15c00;font-weight:bold}"
    ".sev-info{color:#555}"
)


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(part: _Inline) -> str:
    if isinstance(part, _Num):
        return (f'<span data-key="{_h(part.key)}" data-value="{_h(_json(part.value))}" '
                f'data-format="{part.fmt}">{_h(_fmt(part))}</span>')
    if isinstance(part, _Link):
        return f'<a href="{_h(part.href)}">{_h(part.text)}</a>'
    if isinstance(part, _Code):
        return f"<code>{_h(part.text)}</code>"
    return _h(part)


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _is_numeric(cell: Sequence[Any]) -> bool:
    return bool(cell) and isinstance(cell[0], _Num)


def _html_body(blocks: Sequence[_Block], images: Mapping[str, bytes]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h2":
            anchor, text = b.parts
            out.append(f'<h2 id="{_h(anchor)}">{_h(text)}</h2>')
        elif b.kind == "p":
            out.append("<p>" + "".join(_html_inline(x) for x in b.parts) + "</p>")
        elif b.kind == "table":
            headers, rows = b.parts
            head = "".join(f"<th>{_h(h)}</th>" for h in headers)
            body = []
            for r in rows:
                tds = []
                for i, cell in enumerate(r):
                    # Numbers right-aligned, except in the mixed set-up tables.
                    cls = ' class="n"' if _is_numeric(cell) and headers[i] != "value" else ""
                    if headers[i] == "severity" and cell and isinstance(cell[0], str):
                        sev = cell[0] if cell[0] in ("error", "warning", "info") else "other"
                        cls = f' class="sev-{sev}"'
                    tds.append(f"<td{cls}>" + "".join(_html_inline(x) for x in cell) + "</td>")
                body.append("<tr>" + "".join(tds) + "</tr>")
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
                       "</tbody></table>")
        elif b.kind == "figure":
            name, caption = b.parts
            data = base64.b64encode(images[name]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_h(caption)}" '
                       f'data-figure="{_h(name)}"><figcaption>{_h(caption)}</figcaption>'
                       "</figure>")
    return "\n".join(out)


def _title(rec: Mapping[str, Any]) -> str:
    return (f"Robustness of {rec['model']['name']} on {rec['data'].get('name', '?')} "
            f"({_figures.norm_label(str(rec['config']['norm']))})")


def to_html(record: Any, *, tensors: Mapping[str, Any] | None = None) -> str:
    """The evaluation report as one self-contained HTML page.

    Parameters
    ----------
    record : Evaluation or dict
        The evaluation, or its record (``Evaluation.to_dict()``, or report.json
        read back).
    tensors : dict, optional
        The example inputs: ``x`` and ``x_adv`` of shape (k, ...) and ``index``
        of shape (k,), torch tensors or numpy arrays (what report.safetensors
        holds). Image inputs (C, H, W with C in {1, 3}) are drawn as triptychs,
        other inputs listed as tables. Without them, the examples are listed
        from the record alone. An Evaluation's own ``x_examples`` and
        ``x_adv_examples`` are used when it has them and none are given.

    Returns
    -------
    str
        The page: figures as inline PNG, no JavaScript, no external URL. Every
        number sits in an element with ``data-key``, ``data-value`` and
        ``data-format`` (see the module docstring); every string from the record
        is escaped.

    Raises
    ------
    InputError
        The record's schema is not ``"hoodwink.evaluation/1"``, a field the page
        needs is missing or malformed, or the tensors do not fit together.
    ConfigError
        ``record`` is neither an Evaluation nor a dict, or ``tensors`` is not a
        dict with ``x``, ``x_adv`` and ``index``.

    Examples
    --------
    >>> page = to_html(record)                                  # doctest: +SKIP
    >>> Path("report.html").write_text(page, encoding="utf-8")  # doctest: +SKIP
    """
    rec, held = _as_record(record, "to_html")
    arrays = _arrays(tensors if tensors is not None else held)
    images = _render_figures(rec, arrays)
    blocks = _blocks(rec, set(images), arrays)
    title = _title(rec)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{_h(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body data-schema=\"{_h(str(rec['schema']))}\">\n<h1>{_h(title)}</h1>\n"
        f"{_html_body(blocks, images)}\n</body></html>\n"
    )


# ---------------------------------------------------------------------------- Markdown
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+!|~$])")


def _probe_text(probe: Any) -> str:
    """The probe column of a stage row: "–" (no probe), "stopped", or "went on: why"."""
    if not isinstance(probe, Mapping):
        return "–"
    if not probe.get("went_on"):
        return f"stopped (probe broke {probe.get('broke', 0)})"
    return "went on: " + "; ".join(str(w) for w in probe.get("why") or [])


def _md(text: str) -> str:
    """Plain text for Markdown: punctuation that could format or inject is escaped."""
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _md_inline(part: _Inline) -> str:
    if isinstance(part, _Num):
        return _md(_fmt(part))
    if isinstance(part, _Link):
        return f"[{_md(part.text)}]({part.href})"
    if isinstance(part, _Code):
        ticks = "``" if "`" in part.text else "`"
        return f"{ticks} {part.text.replace(chr(10), ' ')} {ticks}".replace("|", "\\|")
    return _md(part)


def _md_body(blocks: Sequence[_Block], links: Mapping[str, str]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h2":
            out += [f"## {_md(b.parts[1])}", ""]
        elif b.kind == "p":
            out += ["".join(_md_inline(x) for x in b.parts), ""]
        elif b.kind == "table":
            headers, rows = b.parts
            out.append("| " + " | ".join(_md(h) for h in headers) + " |")
            out.append("|" + "|".join("---:" if rows and _is_numeric(rows[0][i]) else "---"
                                      for i in range(len(headers))) + "|")
            for r in rows:
                out.append("| " + " | ".join("".join(_md_inline(x) for x in cell) or " "
                                             for cell in r) + " |")
            out.append("")
        elif b.kind == "figure":
            name, caption = b.parts
            if name in links:
                out += [f"![{_md(caption)}]({links[name]})", "", f"*{_md(caption)}*", ""]
    return "\n".join(out)


def to_markdown(record: Any, *, tensors: Mapping[str, Any] | None = None,
                figures: Mapping[str, str] | None = None) -> str:
    """The evaluation report as Markdown: the HTML page's content without images.

    Parameters
    ----------
    record : Evaluation or dict
        The evaluation, or its record.
    tensors : dict, optional
        The example tensors, as for :func:`to_html`: non-image examples are
        listed feature by feature.
    figures : dict of str to str, optional
        Figure name (``"curve"``, ``"norms"``, ``"examples"``) → relative path of
        its PNG file, linked where the HTML page shows the image;
        :func:`write_report` passes the files it writes beside the page.
        Without it, the page links no figure.

    Returns
    -------
    str
        Markdown with every string from the record escaped.

    Raises
    ------
    InputError
        As :func:`to_html`.
    ConfigError
        ``figures`` names an unknown figure, or a path with spaces,
        parentheses or a URL scheme.
    """
    rec, held = _as_record(record, "to_markdown")
    links = dict(figures or {})
    for name, link in links.items():
        if name not in FIGURES or not isinstance(link, str) or "://" in link \
                or re.search(r"[\s()<>]", link) or not link:
            reject("to_markdown", "figures", {name: link}, "a dict of figure names "
                   f"({', '.join(FIGURES)}) to relative file paths without spaces or "
                   "parentheses")
    arrays = _arrays(tensors if tensors is not None else held)
    return _markdown(rec, arrays, links)


def _markdown(rec: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]] | None,
              links: Mapping[str, str]) -> str:
    blocks = _blocks(rec, set(links), arrays)
    return f"# {_md(_title(rec))}\n\n{_md_body(blocks, links)}"


# ---------------------------------------------------------------------------- writing
def write_report(path: str | Path, format: Literal["html", "md"] = "html",
                 out: str | Path | None = None) -> Path:
    """Render a saved evaluation (report.json, and report.safetensors when present).

    Parameters
    ----------
    path : str or Path
        The ``report.json`` that ``Evaluation.save`` wrote.
    format : {"html", "md"}, default "html"
        ``"html"``: one self-contained page. ``"md"``: Markdown, with its figures
        written beside it as ``<stem>-curve.png``, ``<stem>-norms.png`` and
        ``<stem>-examples.png`` and linked relatively.
    out : str or Path, optional
        The page to write; default beside the record, ``<stem>.html`` or
        ``<stem>.md`` (``report.html`` for ``report.json``).

    Returns
    -------
    Path
        The page written (atomically: never half written).

    Raises
    ------
    InputError
        As :func:`load_record`.
    ConfigError
        ``format`` is not ``"html"`` or ``"md"``; ``out`` is the record itself,
        a folder, or cannot be written.
    """
    fmt = check_choice("write_report", "format", format, ("html", "md"))
    src = check("write_report", "path", path, PathLike())
    target: Path = src.with_suffix(f".{fmt}") if out is None else \
        check("write_report", "out", out, PathLike())
    if target.exists() and src.exists() and target.resolve() == src.resolve():
        reject("write_report", "out", str(out if out is not None else target),
               "a file other than the record", hint="Give another --out.")
    check_output_path(target, kind="file")
    record, tensors = load_record(src)
    make_folder(target.parent)  # only now: a bad record leaves no folder behind
    if fmt == "html":
        atomic_write_text(target, to_html(record, tensors=tensors))
        return target
    arrays = _arrays(tensors)
    images = _render_figures(record, arrays)
    links: dict[str, str] = {}
    for name, data in images.items():
        fig_path = target.with_name(f"{target.stem}-{name}.png")
        check_output_path(fig_path, kind="file")
        atomic_write_bytes(fig_path, data)
        links[name] = quote(fig_path.name)
    atomic_write_text(target, _markdown(record, arrays, links))
    return target

"""Every benchmark figure quoted in README.md is re-read from its committed JSON record.

The README's benchmark section quotes numbers that ``bench/*.py`` wrote into
``bench/results/*.json``. Each quoted figure is rebuilt here from the record
with the README's rounding, and must appear in the README exactly, so a rerun
of a benchmark without updating the README (or the reverse) fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BENCH = README[README.index("## Benchmarks"):README.index("## Errors")]


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "bench" / "results" / f"{name}.json").read_text())
    return data


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 0.1 else f"{s * 1000:.0f} ms"


def _overhead_rows() -> list[str]:
    rows = []
    for r in _load("overhead")["results"]:
        t, m = r["time"], r["memory"]
        rows.append(f"| {t['median_s']['floor']:.2f} s | {t['median_s']['pgd']:.2f} s "
                    f"| **{t['ratio']:.2f}** | **{m['ratio']:.2f}** |")
    return rows


def _small_step_rows() -> list[str]:
    rows = []
    for r in _load("small_steps")["conv"]:
        t, m = r["time"], r["memory"]
        rows.append(f"| {r['batch']} | {_ms(t['median_s']['floor'])} | {_ms(t['median_s']['pgd'])} "
                    f"| **{t['ratio']:.2f}** | {m['median_bytes']['floor'] / 2**20:.2f} → "
                    f"{m['median_bytes']['pgd'] / 2**20:.2f} MiB |")
    return rows


def _linear_rows() -> list[str]:
    lin = _load("small_steps")["linear"]
    rows = []
    for key, label in (("hoodwink_no_grid", "no grid (levels=None)"),
                       ("hoodwink_zoo_levels256", "the zoo model's 8-bit grid (levels=256)")):
        r = lin[key]
        rows.append(f"| {label} | {_ms(r['median_s'][key])} | {_ms(r['median_s']['torchattacks'])} "
                    f"| **{r['ratio']:.2f}** |")
    return rows


def _fool_figures() -> list[str]:
    f = _load("fool_e2e")
    med, split = f["wall_s_median"], f["fool_timings_s_median"]
    figures = [f"**{med['fool']:.2f} s**", f"`--version` {med['--version']:.2f} s",
               f"`--help` {med['--help']:.2f} s"]
    figures += [f"{k.replace('_', ' ')} {split[k]:.2f} s"
                for k in ("startup", "model_load", "attack", "png_roundtrip", "figure")]
    return figures


def _blackbox_figures() -> list[str]:
    """The black-box tables and sentences, rebuilt from bench/results/blackbox.json."""
    d = _load("blackbox")
    figures = []
    for pe in d["square"]["per_eps"]:
        cells = [f"{v['robust_accuracy']:.2f} / {v['queries_mean']:.1f} / "
                 f"{v['time_per_query_ms']:.3f} ms / {v['overhead_ratio']:.2f}"
                 for v in (pe["libraries"][lib] for lib in ("hoodwink", "torchattacks", "art"))]
        figures.append(f"| eps {pe['eps']} | " + " | ".join(cells) + " |")
        if pe["eps"] == 0.1:
            g = pe["libraries"]["torchattacks(eps on 8-bit grid)"]
            figures.append(f"leaves {g['robust_accuracy']:.2f} at {g['queries_mean']:.1f} queries")
    t = d["targets"]
    h1, h5 = (t[f"hsj_median_l2_{b}"]["median_l2_common"] for b in (1000, 5000))
    figures.append(f"| 1,000 | **{h1['hoodwink']:.3f}** | {h1['foolbox']:.3f} | {h1['art']:.3f} |")
    figures.append(f"| 5,000 | {h5['hoodwink']:.3f} | **{h5['foolbox']:.3f}** | {h5['art']:.3f} |")
    figures.append(f"{100 * (h5['hoodwink'] / h5['foolbox'] - 1):.1f}% above foolbox (not met)")
    figures.append(f"over the {t['hsj_median_l2_1000']['images_solved_by_all']} digits")
    im = d["imagenet"]
    figures.append(f"**{im['failures']} failures**, mean {im['queries_mean']:.1f} queries, "
                   f"median {im['queries_median']}")
    return figures


def test_blackbox_targets_quoted_as_met_are_met() -> None:
    """The README says which targets are met: the record must agree."""
    t = _load("blackbox")["targets"]
    assert t["square_robust_accuracy_eps_0.2"]["pass"] and t["hsj_median_l2_1000"]["pass"]
    assert not t["hsj_median_l2_5000"]["pass"] and "(not met)" in BENCH
    assert all(t[f"square_overhead_eps_{e}"]["pass"] for e in ("0.1", "0.2"))
    assert all(t[f"square_queries_exact_eps_{e}"]["pass"] for e in ("0.1", "0.2"))
    assert t["imagenet_no_failures"]["pass"]


@pytest.mark.parametrize("figure", _overhead_rows() + _small_step_rows() + _linear_rows()
                         + _fool_figures() + _blackbox_figures())
def test_benchmark_figure_is_in_the_readme(figure: str) -> None:
    assert figure in BENCH, f"README's benchmark section lacks {figure!r} (from bench/results)"


def test_fgsm_passes_match_the_record() -> None:
    fgsm = _load("small_steps")["fgsm"]
    assert fgsm["passes_with_samples"] == 2 and set(fgsm["queries_per_sample"]) == {2}
    assert "FGSM makes **2** model passes" in BENCH


def test_early_stop_figures_match_the_record() -> None:
    r = _load("overhead")["results"][0]["time"]
    assert (f"{r['median_s']['pgd_early_stop']:.2f} s, {r['early_stop_mean_queries']:.1f} passes"
            in BENCH)

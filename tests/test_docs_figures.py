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


@pytest.mark.parametrize("figure", _overhead_rows() + _small_step_rows() + _linear_rows()
                         + _fool_figures())
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

"""Census of the generated-input suite: run N generated cases and count the outcomes.

Same generators and oracle as tests/fuzz. Each case ends as one of: ok, documented
error (HoodwinkError), crash outside the tree (keyed by exception type and top
frame), wrong/meaningless result, hang (per-case timeout). Writes
bench/results/fuzz_census.json and prints a table.

    .venv/bin/python bench/fuzz_census.py --n 25000            # the issue's size
    .venv/bin/python bench/fuzz_census.py --n 2000 --seed 1    # a quick look
    .venv/bin/python bench/fuzz_census.py --n 500 --area attack_call
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

#: area -> (weight in the N cases, strategy factory). CLI cases cost ~0.7 s each.
def _areas() -> dict[str, tuple[float, Any]]:
    from fuzz import _gen_adapter as ad
    from fuzz import _gen_attacks as at
    from fuzz import _gen_blackbox as bb
    from fuzz import _gen_cli as cl
    from fuzz import _gen_files as fi
    from fuzz import _gen_studies as su

    return {
        "attack_call": (0.40, at.attack_calls),
        "attack_construction": (0.10, at.attack_constructions),
        "classifier": (0.07, ad.classifier_constructions),
        "normalize": (0.04, ad.normalize_constructions),
        "load_model": (0.05, ad.model_loads),
        "load_dataset": (0.05, fi.dataset_loads),
        "result_load": (0.07, fi.result_loads),
        "load_image": (0.05, fi.image_loads),
        "png": (0.05, fi.png_roundtrips),
        "studies": (0.09, su.studies),
        "cli": (0.03, cl.cli_calls),
        "blackbox_call": (0.20, bb.blackbox_calls),
        "blackbox_construction": (0.06, bb.blackbox_constructions),
        "adapter_numpy": (0.06, ad.numpy_adapters),
        "cli_blackbox": (0.01, cl.blackbox_cli_calls),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=25_000, help="total generated cases")
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed (reproducible)")
    ap.add_argument("--area", action="append", help="only these areas (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz_census.json")
    ap.add_argument("--examples", type=int, default=3, help="reproducers kept per class")
    args = ap.parse_args(argv)

    import torch
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from fuzz._oracle import judge

    torch.set_num_threads(1)
    areas = _areas()
    if args.area:
        areas = {k: v for k, v in areas.items() if k in args.area}
    total_w = sum(w for w, _ in areas.values())
    counts: collections.Counter[str] = collections.Counter()
    by_area: dict[str, collections.Counter[str]] = {}
    classes: dict[tuple[str, str], dict[str, Any]] = {}
    t0 = time.perf_counter()
    running = [""]  # the area being run, read by run() below
    for name, (w, factory) in areas.items():
        running[0] = name
        n = max(1, round(args.n * w / total_w))
        area_counts: collections.Counter[str] = collections.Counter()
        by_area[name] = area_counts

        @seed(args.seed)
        @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(factory())
        def run(case: Any) -> None:
            out = judge(case)
            counts[out.kind] += 1
            # An area's own cases name their area; anything else counts where it ran.
            by_area[out.area if out.area in by_area else running[0]][out.kind] += 1
            if out.kind not in ("ok", "documented"):
                c = classes.setdefault((out.kind, f"{out.area}: {out.key}"),
                                       {"count": 0, "examples": []})
                c["count"] += 1
                if len(c["examples"]) < args.examples:
                    c["examples"].append({"detail": out.detail, "repro": out.repro})

        ta = time.perf_counter()
        run()
        print(f"{name:22s} {sum(area_counts.values()):6d} cases {time.perf_counter() - ta:7.1f} s",
              file=sys.stderr, flush=True)
    total = sum(counts.values())
    record = {
        "schema": "hoodwink.fuzz_census/1",
        "n_requested": args.n, "n": total, "seed": args.seed,
        "time_s": round(time.perf_counter() - t0, 1),
        "outcomes": dict(counts), "by_area": {k: dict(v) for k, v in by_area.items()},
        "classes": sorted(({"kind": k, "class": c, **v} for (k, c), v in classes.items()),
                          key=lambda r: -r["count"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\n{'outcome':12s} {'count':>7s} {'share':>7s}")
    for k in ("ok", "documented", "crash", "wrong", "hang"):
        print(f"{k:12s} {counts[k]:7d} {100 * counts[k] / max(total, 1):6.2f}%")
    print(f"{'total':12s} {total:7d}   ({record['time_s']} s)\n")
    print(f"{'area':22s} " + " ".join(f"{k:>10s}" for k in ("ok", "documented", "crash", "wrong",
                                                          "hang")))
    for a, c in by_area.items():
        print(f"{a:22s} " + " ".join(f"{c[k]:10d}" for k in ("ok", "documented", "crash",
                                                             "wrong", "hang")))
    print("\ntop failure classes:")
    for r in record["classes"][:25]:
        print(f"{r['count']:6d}  {r['kind']:6s} {r['class']}")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Do fooled photos survive real JPEG and real edits? Robust (EOT) ``fool`` against plain.

On the bundled photos (``examples/images/*.jpg``) and the scikit-image /
scikit-learn photos of ``hoodwink.data.photos`` that are not already bundled
(``rocket``, ``astronaut``, ``motorcycle``, ``china``, ``flower``), each with
``--targets`` random target classes (seeded; never the photo's own class),
``hoodwink.studies.fool.fool_image`` runs on EfficientNet-Lite0 at each budget
of ``--eps``, in two modes on the same (photo, target, eps):

``plain``
    targeted PGD, 40 steps (the default ``hoodwink fool``);
``robust``
    expectation over transformation (``robust=True``).

Each saved PNG is then measured by ``hoodwink.survival.survival`` with the
real operations (Pillow's JPEG codec and resampling, never the differentiable
approximation the attack trained on) on the same held-out draws for both
modes (``--draws`` draws from a seed the attack never used), plus real JPEG at
qualities 95, 75 and 50. A failed attack (``BudgetExhaustedError``) counts as
not kept everywhere. Independently of the library's own checks, this script
reads every PNG back with Pillow and checks its size, that no pixel moved by
more than eps·255 levels, and that the model classifies it as the target.

Reported, per mode and budget, with counts and Wilson 95% intervals: target
kept after real JPEG-75 (runs), kept over the held-out draws (draws pooled
over runs), and seconds per run (the whole ``fool_image`` call). Targets:
robust keeps the target after JPEG-75 on >= 95% of runs at 8/255 and >= 80%
at 4/255, on >= 90% of held-out draws at 8/255, each run <= 60 s on one
thread.

Usage::

    OMP_NUM_THREADS=1 python bench/survival.py [--eps 4,8] [--targets 3] [--draws 50]
        [--steps N] [--eot-samples N] [--seed 0] [--photos chelsea,rocket]
        [--modes plain,robust] [--out bench/results/survival.json]
    python bench/survival.py --markdown     # the tables of README.md and docs/survival.md

Writes the JSON after every run (a rerun with the same options resumes) and
prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import machine_facts  # noqa: E402

from hoodwink.stats import rate_text, wilson  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ("chelsea", "coffee")
EXTRA = ("rocket", "astronaut", "motorcycle", "china", "flower")


def photo_paths(folder: Path, wanted: list[str] | None) -> dict[str, Path]:
    """Bundled JPEGs as they are; the package photos saved as PNG in ``folder``."""
    from PIL import Image

    from hoodwink.data.photos import natural_photos

    out: dict[str, Path] = {}
    for name in BUNDLED:
        if wanted is None or name in wanted:
            out[name] = ROOT / "examples" / "images" / f"{name}.jpg"
    extra = [p for p in EXTRA if wanted is None or p in wanted]
    if extra:
        for name, t in natural_photos(extra).items():
            arr = (t[0].permute(1, 2, 0) * 255).round().byte().numpy()
            path = folder / f"{name}.png"
            Image.fromarray(arr).save(path)
            out[name] = path
    return out


def check_png(clf: Any, src: Path, png: Path, eps: float, target: int) -> dict[str, Any]:
    """Read the PNG back with Pillow and check it without hoodwink's fool code."""
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        orig = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.int16)
    with Image.open(png) as im:
        adv = np.asarray(im.convert("RGB"), dtype=np.int16)
    same_size = orig.shape == adv.shape
    max_change = int(np.abs(orig - adv).max()) if same_size else -1
    x = torch.from_numpy(adv.astype(np.float32) / 255).permute(2, 0, 1)[None]
    pred = int(clf.predict(x)[0])
    return {"size_ok": same_size, "max_change_255": max_change,
            "eps_ok": same_size and max_change <= round(eps * 255),
            "reread_pred": pred, "reread_is_target": pred == target}


def summarise(rows: list[dict[str, Any]], modes: list[str], eps_list: list[float]
              ) -> list[dict[str, Any]]:
    out = []
    for mode in modes:
        for e in eps_list:
            rs = [r for r in rows if r["mode"] == mode and r["eps_255"] == round(e * 255, 4)]
            if not rs:
                continue
            n = len(rs)
            k75 = sum(bool(r["kept"].get("jpeg-75")) for r in rs)
            k_ok = sum(bool(r["success"]) for r in rs)
            kd = sum(r["draws_kept"] for r in rs)
            nd = sum(r["draws_n"] for r in rs)
            secs = [r["seconds"] for r in rs]

            def rate(k: int, m: int) -> dict[str, Any]:
                lo, hi = wilson(k, m) if m else (0.0, 1.0)
                return {"kept": k, "n": m, "rate": k / m if m else None,
                        "ci95": [round(lo, 4), round(hi, 4)], "text": rate_text(k, m)}

            out.append({
                "mode": mode, "eps_255": round(e * 255, 4), "runs": n,
                "success_png": rate(k_ok, n),
                "jpeg75": rate(k75, n),
                "jpeg95": rate(sum(bool(r["kept"].get("jpeg-95")) for r in rs), n),
                "jpeg50": rate(sum(bool(r["kept"].get("jpeg-50")) for r in rs), n),
                "heldout_draws": rate(kd, nd),
                "seconds_median": round(statistics.median(secs), 2),
                "seconds_max": round(max(secs), 2),
                "runs_over_60s": sum(s > 60 for s in secs),
            })
    return out


FAMILIES = (("jpeg", "JPEG alone"), ("rescale+jpeg", "resize"), ("rotate+jpeg", "rotate"),
            ("crop+jpeg", "crop"), ("blur+jpeg", "blur"), ("brightness+jpeg", "brightness"),
            ("contrast+jpeg", "contrast"))


def _pct(k: int, n: int, v: float) -> str:
    """``v`` (a fraction) as a percentage: whole points under 100 samples, one decimal above."""
    d = 0 if n < 100 else 1
    text = f"{v * 100:.{d}f}"
    if float(text) == 100 and v < 1:
        text = f"{v * 100:.{d + 1}f}"
    return text


def _cell(r: dict[str, Any]) -> str:
    k, n = r["kept"], r["n"]
    lo, hi = r["ci95"]
    return (f"**{k}/{n}** ({_pct(k, n, k / n)}%, CI {_pct(k, n, lo)}–{_pct(k, n, hi)}%)"
            if n else "—")


def _eps_text(e: float) -> str:
    return f"{e:g}/255"


def markdown(rec: dict[str, Any]) -> str:
    """The record's two tables in Markdown: per mode and budget, then per family of draws.

    README.md and docs/survival.md carry these tables verbatim; a test renders
    them from ``bench/results/survival.json`` and compares.
    """
    lines = ["| mode | eps | target on the PNG | kept after real JPEG-95 | JPEG-75 | JPEG-50 | "
             "held-out draws (edit + JPEG 50–95) | seconds per run, median (max) |",
             "|---|---|---|---|---|---|---|---|"]
    order = sorted(rec["summary"], key=lambda r: (r["eps_255"], r["mode"] != "plain"))
    for r in order:
        lines.append(
            f"| {r['mode']} | {_eps_text(r['eps_255'])} | {r['success_png']['kept']}/"
            f"{r['success_png']['n']} | {r['jpeg95']['kept']}/{r['jpeg95']['n']} | "
            f"{_cell(r['jpeg75'])} | {r['jpeg50']['kept']}/{r['jpeg50']['n']} | "
            f"{_cell(r['heldout_draws'])} | {r['seconds_median']:.1f} ({r['seconds_max']:.1f}) |")
    lines += ["", "Held-out draws by family (kept / measured, all runs pooled):", "",
              "| mode, eps | " + " | ".join(h for _, h in FAMILIES) + " |",
              "|---|" + "---|" * len(FAMILIES)]
    for r in order:
        cells = []
        for fam, _ in FAMILIES:
            k = n = 0
            for row in rec["rows"]:
                if row["mode"] == r["mode"] and row["eps_255"] == r["eps_255"]:
                    for t in row["table"]:
                        if t["family"] == fam:
                            k += t["kept"]
                            n += t["n"]
            cells.append(f"{k}/{n}")
        lines.append(f"| {r['mode']} {_eps_text(r['eps_255'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eps", default="4,8", help="budgets in 8-bit levels, comma-separated")
    ap.add_argument("--targets", type=int, default=3, help="random targets per photo")
    ap.add_argument("--draws", type=int, default=50, help="held-out draws per run")
    ap.add_argument("--steps", type=int, default=None, help="robust steps (default EOT_STEPS)")
    ap.add_argument("--eot-samples", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", default=None, help="comma-separated subset")
    ap.add_argument("--modes", default="plain,robust")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "survival.json")
    ap.add_argument("--markdown", action="store_true",
                    help="print the tables of the --out record (as README.md and "
                         "docs/survival.md carry them) and exit")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    torch.set_num_threads(args.threads)

    from hoodwink import zoo
    from hoodwink.errors import BudgetExhaustedError
    from hoodwink.studies.fool import EOT_SAMPLES, EOT_STEPS, fool_image

    eps_list = [float(v) / 255 for v in args.eps.split(",")]
    modes = args.modes.split(",")
    eot_samples = args.eot_samples or EOT_SAMPLES
    steps = args.steps or EOT_STEPS
    config = {"eps_255": [round(e * 255, 4) for e in eps_list], "targets": args.targets,
              "draws": args.draws, "steps_robust": steps, "steps_plain": 40,
              "eot_samples": eot_samples, "seed": args.seed, "model": "efficientnet-lite0"}
    rows: list[dict[str, Any]] = []
    if args.out.exists():
        old = json.loads(args.out.read_text())
        if old.get("config") == config:
            rows = old["rows"]
    done = {(r["photo"], r["target"], r["eps_255"], r["mode"]) for r in rows}
    clf = zoo.load("efficientnet-lite0")
    names = clf.class_names or []
    rng = np.random.default_rng(args.seed)
    facts = machine_facts(args, torch.device("cpu"))
    command = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " python " + \
        " ".join(shlex.quote(a) for a in sys.argv)

    def write() -> None:
        rec = {"schema": "hoodwink.bench.survival/1", "command": command, "machine": facts,
               "config": config, "summary": summarise(rows, modes, eps_list), "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1) + "\n")
        tmp.replace(args.out)

    with tempfile.TemporaryDirectory() as tmpdir:
        folder = Path(tmpdir)
        wanted = args.photos.split(",") if args.photos else None
        photos = photo_paths(folder, wanted)
        plan = []
        for name, path in photos.items():
            from hoodwink.imaging import load_image

            y0 = int(clf.predict(load_image(path))[0])
            choices = [c for c in range(len(names)) if c != y0]
            for t in rng.choice(choices, size=args.targets, replace=False).tolist():
                plan.append((name, path, y0, int(t)))
        for name, path, y0, t in plan:
            for e in eps_list:
                for mode in modes:
                    key = (name, t, round(e * 255, 4), mode)
                    if key in done:
                        continue
                    robust = mode == "robust"
                    out = folder / f"{name}-{t}-{round(e * 255)}-{mode}.png"
                    t0 = time.perf_counter()
                    row: dict[str, Any] = {"photo": name, "original": y0,
                                           "original_name": names[y0], "target": t,
                                           "target_name": names[t], "eps_255": key[2],
                                           "mode": mode}
                    try:
                        res = fool_image(clf, path, target=t, eps=e, out=out, figure=False,
                                         robust=robust, eot_samples=eot_samples,
                                         steps=steps if robust else None,
                                         survival_draws=args.draws, seed=args.seed)
                        row["seconds"] = round(time.perf_counter() - t0, 2)
                        surv = res.survival or {}
                        row["success"] = True
                        row["check"] = check_png(clf, path, out, e, t)
                        row["kept"] = {r["family"]: r["kept"] for r in surv["table"]
                                       if r["family"] in ("png", "jpeg-95", "jpeg-75",
                                                          "jpeg-50")}
                        row["kept"] = {k: v == 1 for k, v in row["kept"].items()}
                        alld = [r for r in surv["table"] if r["family"] == "all draws"]
                        row["draws_kept"] = alld[0]["kept"] if alld else 0
                        row["draws_n"] = alld[0]["n"] if alld else 0
                        row["table"] = [{k: r[k] for k in ("family", "kept", "n")}
                                        for r in surv["table"]]
                    except BudgetExhaustedError:
                        row["seconds"] = round(time.perf_counter() - t0, 2)
                        row.update(success=False, check=None, kept={}, draws_kept=0,
                                   draws_n=args.draws, table=[])
                    rows.append(row)
                    write()
                    print(f"{name:<11} {names[t][:18]:<18} {key[2]:>2g}/255 {mode:<6} "
                          f"ok={row['success']!s:<5} jpeg75={row['kept'].get('jpeg-75')!s:<5} "
                          f"draws {row['draws_kept']}/{row['draws_n']} {row['seconds']:.1f}s",
                          flush=True)
    write()
    for s in summarise(rows, modes, eps_list):
        print(f"{s['mode']:<6} eps {s['eps_255']:g}/255: JPEG-75 {s['jpeg75']['text']}; "
              f"held-out draws {s['heldout_draws']['text']}; "
              f"{s['seconds_median']:.1f} s median, {s['seconds_max']:.1f} s max")


if __name__ == "__main__":
    main()

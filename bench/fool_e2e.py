"""`hoodwink fool` end to end, and `hoodwink --version` / `--help`, in fresh processes.

Each run is a new process started the way a user starts it (the ``hoodwink``
console script of this interpreter's environment), timed from outside with
``time.perf_counter()`` around ``subprocess.run``. For ``fool`` the JSON record
also gives the split measured inside the process (``timings_s``: start-up
including imports, model load, attack, PNG round trip, figure, total up to
writing the record); the rest of the wall time is printing and interpreter exit.

Runs alternate between the commands, and medians over ``--repeats`` runs are
reported. Targets: ``fool`` ≤ 3 s, ``--version`` and ``--help`` < 0.3 s.

Usage::

    python bench/fool_e2e.py [--repeats 5] [--image examples/images/chelsea.jpg]

Writes ``bench/results/fool_e2e.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fool_e2e.json"
FOOL_TARGET_S = 3.0
STARTUP_TARGET_S = 0.3
PHASES = ("startup", "model_load", "attack", "png_roundtrip", "figure", "total")


def _run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0, proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="runs per command (median)")
    p.add_argument("--image", type=Path, default=ROOT / "examples" / "images" / "chelsea.jpg")
    p.add_argument("--target", default="goldfish")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    exe = Path(sys.executable).with_name("hoodwink")
    if not exe.exists():
        p.error(f"{exe} not found: install hoodwink into this environment first")
    walls: dict[str, list[float]] = {"fool": [], "--version": [], "--help": []}
    phases: dict[str, list[float]] = {k: [] for k in PHASES}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fool = [str(exe), "--quiet", "fool", str(args.image.resolve()), "--target", args.target,
                "--json"]
        for i in range(args.repeats):
            order = ["fool", "--version", "--help"]
            for name in order if i % 2 == 0 else order[::-1]:
                cmd = fool if name == "fool" else [str(exe), name]
                wall, proc = _run(cmd, work)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
                walls[name].append(wall)
                if name == "fool":
                    rec = json.loads(proc.stdout)
                    for k in PHASES:
                        phases[k].append(float(rec["timings_s"][k]))
        outputs = sorted(str(q.relative_to(work)) for q in work.rglob("*") if q.is_file())
    med = {k: statistics.median(v) for k, v in walls.items()}
    phase_med = {k: statistics.median(v) for k, v in phases.items()}
    record: dict[str, Any] = {
        "format_version": 1,
        "benchmark": "fool_e2e",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/fool_e2e.py", *(argv or sys.argv[1:])]),
        "fool_command": " ".join(["hoodwink", *fool[1:]]),
        "config": {"repeats": args.repeats, "OMP_NUM_THREADS": 1,
                   "targets_s": {"fool": FOOL_TARGET_S, "version_help": STARTUP_TARGET_S}},
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "wall_s": {k: [round(t, 3) for t in v] for k, v in walls.items()},
        "wall_s_median": {k: round(v, 3) for k, v in med.items()},
        "fool_timings_s": {k: [round(t, 3) for t in v] for k, v in phases.items()},
        "fool_timings_s_median": {k: round(v, 3) for k, v in phase_med.items()},
        "fool_outputs_in_cwd": outputs,
        "meets_targets": {"fool": med["fool"] <= FOOL_TARGET_S,
                          "version": med["--version"] < STARTUP_TARGET_S,
                          "help": med["--help"] < STARTUP_TARGET_S},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"hoodwink fool (median of {args.repeats}): {med['fool']:.2f} s wall; inside: "
          + ", ".join(f"{k} {v:.2f}" for k, v in phase_med.items()))
    print(f"hoodwink --version: {med['--version']:.3f} s; --help: {med['--help']:.3f} s")
    print(f"outputs (in the working folder): {outputs}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

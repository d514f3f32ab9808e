"""The minimum-norm table of docs/attacks.md: CW and DeepFool on the bundled MNIST models.

On the first 100 held-out digits (``load_mnist("test")[:100]``), for ``mnist-linear``
and ``mnist-cnn`` as loaded from the zoo (8-bit grid included), each row runs one
attack with ``eps`` = the box's diameter (a minimum-norm attack: eps only bounds
what counts as success) and records the digits it fooled among those the model
classifies correctly, the median L2 or L∞ norm over them, and the wall time.

The last row is CW as the reference runs it: ``warm_start=False`` and tanh-space
shrink 0.999999 (the module constant ``hoodwink.attacks.cw._SHRINK`` set by this
script for that row only; hoodwink's default is 0.999).

Usage::

    OMP_NUM_THREADS=1 python bench/minnorm_table.py [--out bench/results/minnorm_table.json]
    python bench/minnorm_table.py --markdown     # the table docs/attacks.md carries
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "minnorm_table.json"
N = 100

#: (model, label shown in the table, constructor, keyword arguments, shrink override)
ROWS: list[tuple[str, str, str, dict[str, Any], float | None]] = [
    ("mnist-linear", '`DeepFool(norm="l2")`', "DeepFool", {"norm": "l2"}, None),
    ("mnist-linear", '`DeepFool(norm="linf")`', "DeepFool", {"norm": "linf"}, None),
    ("mnist-linear", "`CarliniWagner(steps=200, binary_search_steps=5, initial_const=0.1, "
                     "stepsize=0.05)`", "CarliniWagner",
     {"steps": 200, "binary_search_steps": 5, "initial_const": 0.1, "stepsize": 0.05}, None),
    ("mnist-cnn", '`DeepFool(norm="l2")`', "DeepFool", {"norm": "l2"}, None),
    ("mnist-cnn", '`DeepFool(norm="linf")`', "DeepFool", {"norm": "linf"}, None),
    ("mnist-cnn", "`CarliniWagner(steps=200, binary_search_steps=5, initial_const=0.1, "
                  "stepsize=0.05)`", "CarliniWagner",
     {"steps": 200, "binary_search_steps": 5, "initial_const": 0.1, "stepsize": 0.05}, None),
    ("mnist-cnn", "`CarliniWagner(steps=100)` (`bench/peers.py`'s)", "CarliniWagner",
     {"steps": 100, "binary_search_steps": 9, "stepsize": 0.01}, None),
    ("mnist-cnn", "`CarliniWagner(steps=100, warm_start=False)`, shrink 0.999999 (the "
                  "reference's)", "CarliniWagner",
     {"steps": 100, "binary_search_steps": 9, "stepsize": 0.01, "warm_start": False}, 0.999999),
]


def run() -> dict[str, Any]:
    import torch

    import hoodwink.attacks.cw as cw_module
    from hoodwink import zoo
    from hoodwink.attacks.cw import CarliniWagner
    from hoodwink.attacks.deepfool import DeepFool
    from hoodwink.data import load_mnist

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    x, y = load_mnist("test")
    x, y = x[:N].contiguous(), y[:N].contiguous()
    classes = {"DeepFool": DeepFool, "CarliniWagner": CarliniWagner}
    rows = []
    for model_name, label, cls, kwargs, shrink in ROWS:
        clf = zoo.load(model_name)
        correct = clf.predict(x) == y
        norm = kwargs.get("norm", "l2")
        attack = classes[cls](seed=0, **kwargs)
        saved = cw_module._SHRINK
        if shrink is not None:
            cw_module._SHRINK = shrink
        try:
            t0 = time.perf_counter()
            res = attack(clf, x, y, eps=math.sqrt(x[0].numel()) if norm == "l2" else 1.0)
            wall = time.perf_counter() - t0
        finally:
            cw_module._SHRINK = saved
        d = (res.x_adv - x).flatten(1)
        size = d.norm(dim=1) if norm == "l2" else d.abs().amax(dim=1)
        # Verified here: fooled on re-classification, among the correctly classified digits.
        fooled = correct & (clf.predict(res.x_adv) != y) & res.success
        norms = [float(size[i]) for i in range(N) if bool(fooled[i])]
        rows.append({"model": model_name, "label": label, "attack": repr(attack),
                     "norm": norm, "shrink": shrink if shrink is not None else saved,
                     "correct": int(correct.sum()), "fooled": int(fooled.sum()),
                     "median": statistics.median(norms) if norms else None,
                     "wall_s": round(wall, 2)})
        print(f"{model_name:12s} {label}: {rows[-1]['fooled']}/{rows[-1]['correct']}, "
              f"median {norm} {rows[-1]['median']}, {wall:.1f} s", flush=True)
    return {"schema": "hoodwink.bench.minnorm_table/1",
            "command": "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " python "
                       + " ".join(shlex.quote(a) for a in sys.argv),
            "n": N, "rows": rows}


def _time(s: float) -> str:
    return f"{s:.2f} s" if s < 0.1 else f"{s:.1f} s" if s < 1 else f"{s:.0f} s"


def markdown(rec: dict[str, Any]) -> str:
    """The table of docs/attacks.md, from the record."""
    lines = ["| model (100 test digits, 1 CPU thread) | attack | success | median L2 | "
             "median L∞ | time |", "|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        med = r["median"]
        if r["norm"] == "l2":
            cells = f"{med:.3f}" + (f" (of {r['fooled']})" if r["fooled"] < r["correct"] else "")
            l2, linf = cells, ""
        else:
            l2, linf = "", f"{med:.3f} ({round(med * 255)}/255)"
        lines.append(f"| `{r['model']}` | {r['label']} | {r['fooled']}/{r['correct']} | {l2} | "
                     f"{linf} | {_time(r['wall_s'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--markdown", action="store_true",
                    help="print the table of the --out record and exit")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    rec = run()
    args.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(markdown(rec), end="")


if __name__ == "__main__":
    main()

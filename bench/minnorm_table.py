"""The minimum-norm table of docs/attacks.md: CW and DeepFool on the bundled MNIST models.

On the first 100 held-out digits (``load_mnist("test")[:100]``), for ``mnist-linear``
and ``mnist-cnn`` as loaded from the zoo (8-bit grid included), each row runs one
attack with ``eps`` = the box's diameter (a minimum-norm attack: eps only bounds
what counts as success) and records the digits it fooled among those the model
classifies correctly, the median L2 or L∞ norm over them, and the wall time.

The last row is CW as the reference runs it: ``warm_start=False`` and tanh-space
shrink 0.999999 (the module constant ``hoodwink.attacks.cw._SHRINK`` set by this
script for that row only; hoodwink's default is 0.999).

The same run measures the other figures of docs/attacks.md, each in its own
section of the record:

- ``fmn_rows``: ``FMN(norm=..., steps=100)`` (defaults otherwise) on the same
  100 digits and both models, in L∞, L2 and L1, with ``eps`` the box's diameter
  in that norm (1, 28, 784), counted like the rows above.
- ``fmn_linear``: FMN's norm against the closed-form distance
  ``margin / ‖w_y − w_j‖_dual`` on the seeded linear models of
  ``tests/test_fmn.py`` (20 features, inputs in [-1, 1], bounds ±100 that never
  bind; 2 classes and 16 samples, 5 classes and 32 samples).
- ``fmn_held``: FMN without its first departure from the paper
  (``hold_bounds=False``: a feature that the gradient pushes against a bound is
  kept in the step and the estimate), ``mnist-linear`` in L2.
- ``apgd``: ``APGD()`` against ``PGD(steps=100)`` on ``mnist-cnn`` and the 100
  digits at L∞ eps 0.1: digits left robust (correct and not fooled).

Usage::

    OMP_NUM_THREADS=1 python bench/minnorm_table.py [--out bench/results/minnorm_table.json]
    python bench/minnorm_table.py --markdown     # the tables docs/attacks.md carries
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
import warnings
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

#: The FMN table: models, then norms, in the order docs/attacks.md shows them.
FMN_MODELS = ("mnist-cnn", "mnist-linear")
FMN_NORMS = ("linf", "l2", "l1")
FMN_STEPS = 100
NORM_NAMES = {"linf": "L∞", "l2": "L2", "l1": "L1"}
#: The seeded linear models of tests/test_fmn.py: (classes, samples).
LINEAR_CASES = ((2, 16), (5, 32))
LINEAR_FEATURES = 20
#: The APGD-against-PGD comparison: L∞ eps on mnist-cnn.
APGD_EPS = 0.1


def _diameter(x: Any, norm: str) -> float:
    """The [0, 1] box's diameter in ``norm``: 1 in L∞, √d in L2, d in L1."""
    d = x[0].numel()
    return {"linf": 1.0, "l2": math.sqrt(d), "l1": float(d)}[norm]


def _count(clf: Any, x: Any, y: Any, res: Any, norm: str) -> dict[str, Any]:
    """Correct, fooled (re-classified, among the correct) and the fooled digits' median norm."""
    from hoodwink.attacks._norms import norms

    correct = clf.predict(x) == y
    fooled = correct & (clf.predict(res.x_adv) != y) & res.success
    size = norms(res.x_adv - x, norm)
    norms = [float(size[i]) for i in range(len(y)) if bool(fooled[i])]
    return {"correct": int(correct.sum()), "fooled": int(fooled.sum()),
            "median": statistics.median(norms) if norms else None}


def _minnorm_rows(x: Any, y: Any) -> list[dict[str, Any]]:
    import hoodwink.attacks.cw as cw_module
    from hoodwink import zoo
    from hoodwink.attacks.cw import CarliniWagner
    from hoodwink.attacks.deepfool import DeepFool

    classes = {"DeepFool": DeepFool, "CarliniWagner": CarliniWagner}
    rows = []
    for model_name, label, cls, kwargs, shrink in ROWS:
        clf = zoo.load(model_name)
        norm = kwargs.get("norm", "l2")
        attack = classes[cls](seed=0, **kwargs)
        saved = cw_module._SHRINK
        if shrink is not None:
            cw_module._SHRINK = shrink
        try:
            t0 = time.perf_counter()
            res = attack(clf, x, y, eps=_diameter(x, norm))
            wall = time.perf_counter() - t0
        finally:
            cw_module._SHRINK = saved
        rows.append({"model": model_name, "label": label, "attack": repr(attack),
                     "norm": norm, "shrink": shrink if shrink is not None else saved,
                     **_count(clf, x, y, res, norm), "wall_s": round(wall, 2)})
        print(f"{model_name:12s} {label}: {rows[-1]['fooled']}/{rows[-1]['correct']}, "
              f"median {norm} {rows[-1]['median']}, {wall:.1f} s", flush=True)
    return rows


def _fmn_rows(x: Any, y: Any) -> list[dict[str, Any]]:
    from hoodwink import zoo
    from hoodwink.attacks.fmn import FMN

    rows = []
    for model_name in FMN_MODELS:
        clf = zoo.load(model_name)
        for norm in FMN_NORMS:
            attack = FMN(norm=norm, steps=FMN_STEPS)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            res = attack(clf, x, y, eps=_diameter(x, norm))
            wall = time.perf_counter() - t0
            rows.append({"model": model_name, "attack": repr(attack), "norm": norm,
                         "levels": clf.levels, **_count(clf, x, y, res, norm),
                         "wall_s": round(wall, 2)})
            print(f"{model_name:12s} FMN {norm}: {rows[-1]['fooled']}/{rows[-1]['correct']}, "
                  f"median {rows[-1]['median']}, {wall:.1f} s", flush=True)
    return rows


def _fmn_held(x: Any, y: Any) -> dict[str, Any]:
    from hoodwink import zoo

    clf = zoo.load("mnist-linear")
    from hoodwink.attacks.fmn import FMN

    attack = FMN(norm="l2", steps=FMN_STEPS, hold_bounds=False)
    res = attack(clf, x, y, eps=_diameter(x, "l2"))
    out = {"model": "mnist-linear", "attack": repr(attack), "norm": "l2",
           **_count(clf, x, y, res, "l2")}
    print(f"FMN without held features, mnist-linear l2: {out['fooled']}/{out['correct']}",
          flush=True)
    return out


def _fmn_linear() -> list[dict[str, Any]]:
    """FMN against the closed form on tests/test_fmn.py's seeded linear models."""
    import torch

    from hoodwink import TorchClassifier
    from hoodwink.attacks.fmn import FMN
    from hoodwink.errors import EpsScaleWarning

    dual = {"l2": lambda t: t.norm(dim=-1), "linf": lambda t: t.abs().sum(dim=-1),
            "l1": lambda t: t.abs().amax(dim=-1)}
    out = []
    for c, n in LINEAR_CASES:
        g = torch.Generator().manual_seed(0)
        net = torch.nn.Linear(LINEAR_FEATURES, c)
        with torch.no_grad():
            net.weight.copy_(torch.randn(c, LINEAR_FEATURES, generator=g))
            net.bias.copy_(torch.randn(c, generator=g))
        net.eval()
        g = torch.Generator().manual_seed(1)
        x = torch.rand(n, LINEAR_FEATURES, generator=g) * 2 - 1
        with torch.no_grad():
            y = net(x).argmax(dim=1)
        w, b = net.weight.detach().double(), net.bias.detach().double()
        z = x.double() @ w.T + b
        model = TorchClassifier(net, bounds=(-100, 100))
        for norm in FMN_NORMS:
            # Each class's hyperplane distance, margin / ‖w_y − w_j‖_dual; inf for j = y.
            gaps = (z.gather(1, y[:, None]) - z).abs() / dual[norm](w[y][:, None, :] - w[None])
            gaps[torch.arange(n), y] = math.inf
            with warnings.catch_warnings():  # eps 1000 exceeds the box on purpose
                warnings.simplefilter("ignore", EpsScaleWarning)
                res = FMN(norm=norm)(model, x, y, eps=1000.0)  # type: ignore[arg-type]
            reached = res.perturbation_norm.double()
            ratio = reached / gaps.min(dim=1).values
            crossed = reached / gaps.gather(1, res.pred_adv[:, None])[:, 0]
            out.append({"classes": c, "samples": n, "features": LINEAR_FEATURES, "norm": norm,
                        "fooled": int(res.success.sum()),
                        "median_ratio": float(ratio.median()),
                        "min_ratio": float(ratio.min()), "max_ratio": float(ratio.max()),
                        "max_crossed_ratio": float(crossed.max()),
                        "nearest": int((res.pred_adv == gaps.argmin(dim=1)).sum())})
            print(f"linear {c} classes {norm}: median ratio {out[-1]['median_ratio']:.6f}, "
                  f"nearest {out[-1]['nearest']}/{n}", flush=True)
    return out


def _apgd(x: Any, y: Any) -> dict[str, Any]:
    from hoodwink import zoo
    from hoodwink.attacks.apgd import APGD
    from hoodwink.attacks.pgd import PGD

    clf = zoo.load("mnist-cnn")
    out: dict[str, Any] = {"model": "mnist-cnn", "norm": "linf", "eps": APGD_EPS,
                           "n": len(y)}
    robust = {}
    for key, attack in (("apgd", APGD()), ("pgd", PGD(steps=100))):
        t0 = time.perf_counter()
        res = attack(clf, x, y, eps=APGD_EPS)
        wall = time.perf_counter() - t0
        robust[key] = res.clean_correct & ~res.success
        out[key] = {"attack": repr(attack), "correct": int(res.clean_correct.sum()),
                    "robust": int(robust[key].sum()), "wall_s": round(wall, 2)}
        print(f"mnist-cnn {key} linf {APGD_EPS}: {out[key]['robust']} robust, {wall:.1f} s",
              flush=True)
    out["apgd_only"] = int((robust["pgd"] & ~robust["apgd"]).sum())  # fooled by APGD alone
    out["pgd_only"] = int((robust["apgd"] & ~robust["pgd"]).sum())
    return out


def run() -> dict[str, Any]:
    import torch

    from hoodwink.data import load_mnist

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    x, y = load_mnist("test")
    x, y = x[:N].contiguous(), y[:N].contiguous()
    return {"schema": "hoodwink.bench.minnorm_table/2",
            "command": "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "") + " python "
                       + " ".join(shlex.quote(a) for a in sys.argv),
            "n": N, "rows": _minnorm_rows(x, y), "fmn_rows": _fmn_rows(x, y),
            "fmn_linear": _fmn_linear(), "fmn_held": _fmn_held(x, y), "apgd": _apgd(x, y)}


def _time(s: float) -> str:
    return f"{s:.2f} s" if s < 0.1 else f"{s:.1f} s" if s < 1 else f"{s:.0f} s"


def markdown(rec: dict[str, Any]) -> str:
    """The minimum-norm table of docs/attacks.md (CW and DeepFool), from the record."""
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


def fmn_markdown(rec: dict[str, Any]) -> str:
    """The FMN table of docs/attacks.md, from the record."""
    lines = ["| model | norm | fooled (of correct) | median norm | time |", "|---|---|---|---|---|"]
    for r in rec["fmn_rows"]:
        med = r["median"]
        cell = f"{med:.3f} ({round(med * 255)}/255)" if r["norm"] == "linf" else f"{med:.2f}"
        if r["fooled"] < r["correct"]:
            cell += f" (of {r['fooled']})"
        lines.append(f"| `{r['model']}` | {NORM_NAMES[r['norm']]} | {r['fooled']}/{r['correct']} "
                     f"| {cell} | {_time(r['wall_s'])} |")
    return "\n".join(lines) + "\n"


def within(ratio: float) -> str:
    """``ratio - 1`` as a percentage, rounded up to one significant digit ("0.0007")."""
    pct = max((ratio - 1) * 100, 0.0)
    if pct == 0:
        return "0"
    k = math.floor(math.log10(pct))
    digit = math.ceil(round(pct / 10.0**k, 9))
    if digit == 10:
        digit, k = 1, k + 1
    return f"{digit * 10.0**k:.{max(0, -k)}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--markdown", action="store_true",
                    help="print the tables of the --out record and exit")
    args = ap.parse_args()
    rec = json.loads(args.out.read_text()) if args.markdown else run()
    if not args.markdown:
        args.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(markdown(rec) + "\n" + fmn_markdown(rec), end="")


if __name__ == "__main__":
    main()

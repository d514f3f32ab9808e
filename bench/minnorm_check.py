"""hoodwink's CW and DeepFool against the peers' per-sample norms in bench/results/peers.json.

A quick check of the ``minnorm`` part of ``bench/peers.py`` without rerunning the
peers (25 minutes): hoodwink's ``CarliniWagner`` and ``DeepFool`` run here with the
bench's configuration on the same digits (``load_mnist('test')[:100]``, the zoo's
``mnist-cnn``, with and without its 8-bit grid), and their per-sample norms are set
against the peers' stored ``per_sample_l2`` / ``per_sample_linf``. Each line gives the
digits solved (verified by the bare network, as the bench does), the median over the
digits every library solved (the bench's ``median_*_common``, hoodwink included) and the
median over all digits (unsolved ones count as infinite).

Usage::

    OMP_NUM_THREADS=1 python bench/minnorm_check.py [--methods cw-l2,deepfool-l2,deepfool-linf]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hoodwink import TorchClassifier, zoo
from hoodwink.attacks.base import Attack
from hoodwink.attacks.cw import CarliniWagner
from hoodwink.attacks.deepfool import DeepFool
from hoodwink.data import load_mnist

RESULTS = Path(__file__).resolve().parent / "results" / "peers.json"
PEERS = ("torchattacks", "foolbox", "art")
METHODS = ("cw-l2", "deepfool-l2", "deepfool-linf")
N = 100


def make_attack(method: str) -> Attack:
    """The attack ``bench/peers.py`` runs for ``method``, with its configuration."""
    if method == "cw-l2":
        return CarliniWagner(norm="l2", binary_search_steps=9, steps=100, stepsize=0.01,
                             confidence=0.0, seed=0)
    return DeepFool(norm="l2" if method.endswith("l2") else "linf", steps=50, overshoot=0.02,
                    seed=0)


def measure(method: str, net: nn.Module, clf: TorchClassifier, x: torch.Tensor,
            y: torch.Tensor, peers: dict[str, Any], grid: bool) -> dict[str, Any]:
    """One run of hoodwink's attack, verified by ``net`` and compared with ``peers``."""
    norm = "l2" if method.endswith("l2") else "linf"
    model = TorchClassifier(net, bounds=clf.bounds, levels=clf.levels if grid else None,
                            batch_size=clf.batch_size, input_shape=tuple(x.shape[1:]))
    attack = make_attack(method)
    start = time.perf_counter()
    res = attack(model, x, y, eps=math.sqrt(x[0].numel()) if norm == "l2" else 1.0)
    wall = time.perf_counter() - start
    with torch.no_grad():
        clean, pred = net(x).argmax(dim=1), net(res.x_adv).argmax(dim=1)
    d = (res.x_adv - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(dim=1)
    real = [bool(clean[i] == y[i] and pred[i] != y[i] and d[i].abs().max() > 0)
            for i in range(len(y))]
    mine = [float(size[i]) if real[i] else math.inf for i in range(len(y))]
    common = [i for i in range(len(y)) if real[i] and all(p["real"][i] for p in peers.values())]
    out: dict[str, Any] = {
        "attack": repr(attack), "grid": grid, "solved": sum(real), "wall_s": round(wall, 1),
        "mean_queries": round(float(res.queries.double().mean()), 1), "common": len(common),
        "hoodwink": (statistics.median(mine[i] for i in common), statistics.median(mine))}
    for name, p in peers.items():
        theirs = [float(v) for v in p[f"per_sample_{norm}"]]  # JSON stores inf as "inf"
        out[name] = (statistics.median(theirs[i] for i in common), statistics.median(theirs))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated, of {', '.join(METHODS)}")
    args = p.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    record = json.loads(RESULTS.read_text(encoding="utf-8"))["minnorm"]["mnist-cnn"]
    clf = zoo.load("mnist-cnn")
    net: nn.Module = clf.module
    if clf.preprocessing is not None:
        net = nn.Sequential(clf.preprocessing, clf.module)  # type: ignore[arg-type]
    net.eval()
    x, y = load_mnist("test")
    x, y = x[:N].contiguous(), y[:N].contiguous()
    for method in methods:
        peers = {k: v for k, v in record.get(method, {}).items() if k in PEERS and "real" in v}
        for grid in (True, False):
            r = measure(method, net, clf, x, y, peers, grid)
            print(f"{method} {'grid' if grid else 'no grid'}: {r['attack']}")
            print(f"  solved {r['solved']}, {r['wall_s']} s, {r['mean_queries']} queries/digit; "
                  f"median over the {r['common']} common digits / over all:")
            for name in ("hoodwink", *peers):
                common, everything = r[name]
                print(f"    {name:13s} {common:.6f} / {everything:.6f}")


if __name__ == "__main__":
    main()

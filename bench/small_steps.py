"""What a small attack step costs: PGD against its bare passes, against torchattacks, FGSM's passes.

Three measurements, each in one process with the runs alternating, so that the
reported figure is a same-run ratio (see bench/README.md):

``conv``
    PGD-40 (L∞, ``early_stop=False``, random start) on a small untrained
    3-layer conv net (3×32×32 inputs, 10 classes) at batch 1, 8 and 64, against
    the floor: 40 bare forward+backward passes with a sign step, as in
    bench/overhead.py. Each batch size is timed in a fresh process. Target at
    batch 1: ratio ≤ 1.15.
``linear``
    PGD-40 on the bundled ``mnist-linear`` model at batch 500, early stopping
    off, against torchattacks' PGD with the same eps, step size, steps and
    random start, on the same module. Two hoodwink cases: the zoo classifier
    (``levels=256``, so every iterate is snapped to the 8-bit grid, work that
    torchattacks does not do) and the same module without a grid. Target:
    ratio ≤ 1.0. Needs the development-only ``torchattacks`` (see README).
``fgsm``
    The number of forward passes FGSM makes per call, counted by a forward hook
    on the module, and ``result.queries``. Target: 2.

Peak memory of the ``conv`` runs is measured in fresh subprocesses (VmHWM after a
``/proc/self/clear_refs`` reset), with the helpers of bench/overhead.py.

Usage::

    python bench/small_steps.py [--repeats 15] [--threads 1] [--only conv,linear,fgsm]

Writes ``bench/results/small_steps.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import MALLOC_ENV, _peak_rss, _reset_peak_rss, machine_facts  # noqa: E402

from hoodwink import FGSM, PGD, TorchClassifier  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "small_steps.json"
STEPS = 40
CONV_EPS = 8 / 255
CONV_TARGET = 1.15
LINEAR_EPS = 0.1
LINEAR_TARGET = 1.0
TINY = 1e-3


def small_conv_net() -> nn.Module:
    """Three 3×3 conv layers (16, 32, 32 channels), global average pool, linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ).eval()


def conv_batch(net: nn.Module, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images labelled with the net's own predictions (nothing starts adversarial)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 32, 32, generator=g)
    with torch.no_grad():
        y = net(x).argmax(1)
    return x, y


def floor(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """``steps`` bare forward+backward passes with a sign step (parameters frozen)."""
    params = list(net.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            loss = F.cross_entropy(net(x), y, reduction="none").sum()
            (g,) = torch.autograd.grad(loss, x)
            x = (x + TINY * g.sign()).clamp(0, 1).detach()
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def alternate(runs: dict[str, Callable[[], Any]], repeats: int, num: str,
              den: str) -> dict[str, Any]:
    """Time every run once per round, the order reversed every other round.

    Returns the per-run samples and medians, and the median over rounds of the
    within-round ratio ``num / den`` (wall and CPU time).
    """
    names = list(runs)
    for name in names:  # warm-up: allocator, kernel choice, first calls
        runs[name]()
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    ratios, cpu_ratios = [], []
    for i in range(repeats):
        got = {}
        for name in names if i % 2 == 0 else names[::-1]:
            got[name] = timed(runs[name])
            wall[name].append(got[name][0])
            cpu[name].append(got[name][1])
        ratios.append(got[num][0] / got[den][0])
        cpu_ratios.append(got[num][1] / got[den][1])
    return {
        "times_s": wall, "median_s": {k: statistics.median(v) for k, v in wall.items()},
        "cpu_times_s": cpu, "cpu_median_s": {k: statistics.median(v) for k, v in cpu.items()},
        "ratio": statistics.median(ratios), "pair_ratios": ratios,
        "cpu_ratio": statistics.median(cpu_ratios), "cpu_pair_ratios": cpu_ratios,
    }


# --------------------------------------------------------------------------- conv
def conv_runs(batch: int) -> dict[str, Callable[[], Any]]:
    net = small_conv_net()
    x, y = conv_batch(net, batch)
    model = TorchClassifier(net, bounds=(0.0, 1.0))
    pgd = PGD(norm="linf", steps=STEPS, early_stop=False)

    def run_pgd() -> None:
        r = pgd(model, x, y, eps=CONV_EPS)
        # Fixed work: 40 steps + final iterate + clean + verification pass, every sample.
        if not bool((r.queries == STEPS + 3).all()):
            raise RuntimeError(f"PGD made {r.queries.unique().tolist()} passes per sample")

    return {"pgd": run_pgd, "floor": lambda: floor(net, x, y, STEPS)}


def conv_memory_child(batch: int, run: str) -> dict[str, Any]:
    runs = conv_runs(batch)
    conv_runs(2)[run]()  # lazy set-up lands in the baseline
    if not _reset_peak_rss():
        return {"delta": None, "unit": "unavailable (no /proc/self/clear_refs)"}
    base = _peak_rss()
    runs[run]()
    return {"delta": _peak_rss() - base, "unit": "bytes (VmHWM after a clear_refs reset)"}


def conv_memory(batch: int, repeats: int, threads: int) -> dict[str, Any]:
    env = {**os.environ, **MALLOC_ENV}
    got: dict[str, list[int]] = {"floor": [], "pgd": []}
    for _ in range(repeats):
        for run in ("floor", "pgd"):
            cmd = [sys.executable, __file__, "--child", f"{batch}:{run}",
                   "--threads", str(threads)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child failed:\n{proc.stderr}")
            got[run].append(json.loads(proc.stdout.strip().splitlines()[-1])["delta"])
    med = {k: statistics.median(v) for k, v in got.items()}
    return {"deltas_bytes": got, "median_bytes": med,
            "ratio": med["pgd"] / max(med["floor"], 1)}


def conv_time(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """The alternating timing of one batch size, in a fresh process of its own, so
    that one case's allocations and kernel choices cannot colour the next."""
    cmd = [sys.executable, __file__, "--child-time", str(batch), "--repeats", str(args.repeats),
           "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"timing child failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_conv(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for batch in (1, 8, 64):
        t = conv_time(batch, args)
        mem = conv_memory(batch, args.memory_repeats, args.threads)
        rows.append({"batch": batch, "time": t, "memory": mem,
                     "meets_target": t["ratio"] <= CONV_TARGET if batch == 1 else None})
        print(f"conv batch {batch:3d}: floor {t['median_s']['floor'] * 1e3:8.2f} ms  "
              f"PGD {t['median_s']['pgd'] * 1e3:8.2f} ms  ratio {t['ratio']:.3f} "
              f"(CPU {t['cpu_ratio']:.3f})  peak MiB floor "
              f"{mem['median_bytes']['floor'] / 2**20:.2f} PGD "
              f"{mem['median_bytes']['pgd'] / 2**20:.2f}", flush=True)
    return rows


# --------------------------------------------------------------------------- linear
def load_torchattacks_pgd() -> Any:
    """torchattacks' PGD class. Its package imports torchvision-free here; if a future
    version needs torchvision, fall back to loading the one module file."""
    try:
        from torchattacks.attacks.pgd import PGD as TaPGD
    except ImportError:
        import importlib.util

        spec = importlib.util.find_spec("torchattacks")
        if spec is None or spec.origin is None:
            raise
        path = Path(spec.origin).parent / "attacks" / "pgd.py"
        mod_spec = importlib.util.spec_from_file_location("_ta_pgd", path)
        assert mod_spec is not None and mod_spec.loader is not None
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        TaPGD = mod.PGD  # noqa: N806
    return TaPGD


def bench_linear(args: argparse.Namespace) -> dict[str, Any]:
    from hoodwink import zoo
    from hoodwink.data import load_mnist

    try:
        TaPGD = load_torchattacks_pgd()  # noqa: N806
    except ImportError:
        return {"skipped": "torchattacks is not installed (pip install --no-deps torchattacks)"}
    zoo_model = zoo.load("mnist-linear")
    net = zoo_model.module
    # One chunk, as torchattacks sends the batch (the zoo model's batch_size is 1000).
    plain = TorchClassifier(net, bounds=(0.0, 1.0), batch_size=500)
    x, y = load_mnist("test")
    x, y = x[:500].contiguous(), y[:500]
    stepsize = 2.5 * LINEAR_EPS / STEPS
    ours = PGD(norm="linf", steps=STEPS, stepsize=stepsize, early_stop=False)
    theirs = TaPGD(net, eps=LINEAR_EPS, alpha=stepsize, steps=STEPS, random_start=True)
    runs = {
        "hoodwink_zoo_levels256": lambda: ours(zoo_model, x, y, eps=LINEAR_EPS),
        "hoodwink_no_grid": lambda: ours(plain, x, y, eps=LINEAR_EPS),
        "torchattacks": lambda: theirs(x, y),
    }
    out: dict[str, Any] = {"batch": 500, "eps": LINEAR_EPS, "stepsize": stepsize,
                           "steps": STEPS}
    for case in ("hoodwink_zoo_levels256", "hoodwink_no_grid"):
        t = alternate({case: runs[case], "torchattacks": runs["torchattacks"]},
                      args.repeats, case, "torchattacks")
        t["meets_target"] = t["ratio"] <= LINEAR_TARGET
        out[case] = t
        print(f"mnist-linear b500 {case:24s}: {t['median_s'][case] * 1e3:7.1f} ms vs "
              f"torchattacks {t['median_s']['torchattacks'] * 1e3:7.1f} ms  "
              f"ratio {t['ratio']:.3f} (CPU {t['cpu_ratio']:.3f})", flush=True)
    r_ours = ours(zoo_model, x, y, eps=LINEAR_EPS)
    r_theirs = theirs(x, y)
    with torch.no_grad():
        out["robust_accuracy"] = {
            "hoodwink_zoo_levels256": float((~r_ours.success).float().mean()),
            "torchattacks": float((net(r_theirs).argmax(1) == y).float().mean()),
        }
    return out


# --------------------------------------------------------------------------- fgsm
def bench_fgsm() -> dict[str, Any]:
    net = small_conv_net()
    x, y = conv_batch(net, 8)
    model = TorchClassifier(net, bounds=(0.0, 1.0))
    batches: list[int] = []  # samples in each forward call of the module
    handle = net.register_forward_hook(lambda m, i, o: batches.append(int(i[0].shape[0])))
    try:
        r = FGSM()(model, x, y, eps=CONV_EPS)
        first = list(batches)
        batches.clear()
        FGSM()(model, x, y, eps=CONV_EPS)  # a second call: the model knows its classes now
    finally:
        handle.remove()
    passes = [b for b in first if b > 0]
    out = {"forward_calls_first_call": first, "forward_calls_second_call": list(batches),
           "passes_with_samples": len(passes), "queries_per_sample": r.queries.tolist(),
           "note": "a TorchClassifier that does not know num_classes yet learns it from one "
                   "empty-batch call (0 samples, no query) on its first attack",
           "meets_target": len(passes) == 2 and bool((r.queries == 2).all())}
    print(f"FGSM: forward calls (samples each) {first}, then {batches}; queries "
          f"{sorted(set(r.queries.tolist()))}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (median)")
    p.add_argument("--memory-repeats", type=int, default=3, help="fresh subprocesses per run")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--only", default="conv,linear,fgsm", help="subset of conv,linear,fgsm")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-time", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if args.child:
        batch, run = args.child.split(":")
        print(json.dumps(conv_memory_child(int(batch), run)))
        return 0
    if args.child_time:
        print(json.dumps(alternate(conv_runs(args.child_time), args.repeats, "pgd", "floor")))
        return 0
    parts = args.only.split(",")
    facts = machine_facts(args, torch.device("cpu"))
    record: dict[str, Any] = {
        "format_version": 1,
        "benchmark": "small_steps",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/small_steps.py", *(argv or sys.argv[1:])]),
        "config": {"steps": STEPS, "repeats": args.repeats, "threads": args.threads,
                   "conv_eps": CONV_EPS, "linear_eps": LINEAR_EPS,
                   "targets": {"conv_batch1_ratio": CONV_TARGET,
                               "linear_vs_torchattacks": LINEAR_TARGET, "fgsm_passes": 2}},
        "machine": facts,
    }
    if "conv" in parts:
        record["conv"] = bench_conv(args)
    if "linear" in parts:
        record["linear"] = bench_linear(args)
    if "fgsm" in parts:
        record["fgsm"] = bench_fgsm()
    facts["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

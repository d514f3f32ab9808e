"""How much does hoodwink's PGD cost over the forward+backward passes it cannot avoid?

For each model, PGD (L∞, ``steps`` steps, ``early_stop=False`` so every sample
runs every step) is timed against a bare loop of ``steps`` forward+backward
passes of the same network on the same batch, in the same process::

    x.requires_grad_(True); loss = CE(net(x), y).sum()
    (g,) = autograd.grad(loss, x); x = (x + tiny * g.sign()).clamp(0, 1).detach()

That loop is the floor: the work a PGD step cannot avoid. Everything PGD adds
on top (input validation, the clean and verification forward passes, the final
logits pass, best-iterate bookkeeping, projection, adapter checks) is overhead.
Floor and PGD runs alternate, and the reported ratio is the median over repeats
of each adjacent (floor, PGD) pair, so slow drifts in machine load cancel.

Peak memory is measured per run in a fresh subprocess (see bench/README.md):
on CPU the growth of the peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` once the model and data are loaded) with glibc's mmap
threshold pinned, so that freed tensors go back to the OS and the high-water
mark tracks live memory; on CUDA ``torch.cuda.max_memory_allocated`` over
``memory_allocated`` at the baseline.

The default, early-stopping PGD is also timed, as extra information, together
with the number of passes it actually made.

Usage::

    python bench/overhead.py [--device cpu|cuda] [--repeats 7] [--steps 40] [--threads 1]

Writes ``bench/results/overhead.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import hoodwink
from hoodwink import PGD, TorchClassifier
from hoodwink.data import load_mnist
from hoodwink.errors import HoodwinkError
from hoodwink.zoo.mnist import DeepMnistCNN, MnistCNN, load_mnist_cnn

RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"
TIME_TARGET = 1.10
MEMORY_TARGET = 1.30
EPS = 0.3  # the usual MNIST L∞ budget; with early_stop=False it does not change the work
TINY = 1e-3  # floor step: the update must exist, its size does not matter
# Pinned so that every tensor above 64 KiB is mmap'd and unmapped on free: RSS then
# follows live memory instead of glibc's cached heap, in both measured runs alike.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
RUNS = ("floor", "pgd", "pgd_early_stop")


@dataclass(frozen=True)
class Case:
    """One benchmarked model and batch."""

    key: str
    title: str
    batch: int


CASES = (
    Case("mnist_cnn", "MnistCNN (bundled weights)", 256),
    Case("deep_mnist_cnn", "DeepMnistCNN (depth 8, width 64)", 16),
)


# --------------------------------------------------------------------------- set-up
def build(case: Case, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor, str]:
    """The network (eval mode, parameters as the user has them), batch, labels, notes.

    Labels are chosen so that no sample is misclassified at the start: PGD skips
    samples that are already adversarial, and the comparison needs PGD to do the
    full ``steps`` passes on every sample, as the floor does.
    """
    notes = ""
    if case.key == "mnist_cnn":
        try:
            net: nn.Module = load_mnist_cnn()
        except HoodwinkError as exc:
            net = MnistCNN().eval()
            notes = f"bundled weights unavailable ({type(exc).__name__}); random init"
    else:
        torch.manual_seed(0)
        net = DeepMnistCNN(depth=8, width=64).eval()
        notes = "random init; labels are the model's own predictions"
    x_all, y_all = load_mnist("test")
    with torch.no_grad():
        pred = torch.cat([net(c) for c in x_all.split(250)]).argmax(1)
    correct = (pred == y_all).nonzero()[:, 0]
    if case.key == "mnist_cnn" and correct.numel() >= case.batch:
        idx = correct[: case.batch]
        x, y = x_all[idx], y_all[idx]
        notes = notes or "first correctly classified load_mnist('test') images"
    else:
        x, y = x_all[: case.batch], pred[: case.batch]
    return net.to(device), x.to(device).contiguous(), y.to(device), notes


def floor(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` bare forward+backward passes with a sign step: the unavoidable work."""
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(net(x), y, reduction="none").sum()
        (g,) = torch.autograd.grad(loss, x)
        x = (x + TINY * g.sign()).clamp(0, 1).detach()
    return x


class Runner:
    """Callables for the three measured runs on one case."""

    def __init__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        self.net, self.x, self.y, self.steps = net, x, y, steps
        self.model = TorchClassifier(net, bounds=(0.0, 1.0), batch_size=256)
        self.pgd = PGD(norm="linf", steps=steps, early_stop=False)
        self.pgd_es = PGD(norm="linf", steps=steps)
        self.last_queries: torch.Tensor | None = None

    def floor(self) -> None:
        # Frozen parameters: autograd then saves nothing for weight gradients. The
        # freeze costs microseconds; the user's flags are restored for the PGD runs.
        params = list(self.net.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            floor(self.net, self.x, self.y, self.steps)
        finally:
            for p, f in zip(params, flags, strict=True):
                p.requires_grad_(f)

    def pgd_full(self) -> None:
        res = self.pgd(self.model, self.x, self.y, eps=EPS)
        self.last_queries = res.queries

    def pgd_early_stop(self) -> None:
        res = self.pgd_es(self.model, self.x, self.y, eps=EPS)
        self.last_queries = res.queries

    def get(self, run: str) -> Callable[[], None]:
        return {"floor": self.floor, "pgd": self.pgd_full, "pgd_early_stop": self.pgd_early_stop}[
            run
        ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call."""
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


# --------------------------------------------------------------------------- memory
def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); False if impossible.

    Needed because the lifetime peak (``ru_maxrss``) includes set-up (loading data,
    predicting on the whole test set) and, after ``exec``, the parent's RSS.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _peak_rss() > 0
    except OSError:
        return False


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child_memory(case_key: str, run: str, device: torch.device, steps: int) -> dict[str, Any]:
    """Run one thing once in this (fresh) process; report its peak over a baseline."""
    case = next(c for c in CASES if c.key == case_key)
    net, x, y, _ = build(case, device)
    runner = Runner(net, x, y, steps)
    # Warm the code path on two samples (lazy library set-up, kernel selection) so
    # one-off costs land in the baseline, not in the measured run.
    Runner(net, x[:2], y[:2], 1).get(run)()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        runner.get(run)()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        unit = "bytes (torch.cuda.max_memory_allocated)"
    elif _reset_peak_rss():
        base = _peak_rss()
        runner.get(run)()
        peak = _peak_rss()
        unit = "bytes (VmHWM after a clear_refs reset)"
    else:  # no /proc: the process-lifetime high-water mark, which includes set-up
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        runner.get(run)()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        unit = "bytes (ru_maxrss; set-up peaks may hide the run's)"
    out = {"baseline": base, "peak": peak, "delta": peak - base, "unit": unit}
    if runner.last_queries is not None:
        out["mean_queries"] = float(runner.last_queries.float().mean())
    return out


def measure_memory(case: Case, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Median over ``memory_repeats`` fresh subprocesses per run, the runs interleaved."""
    env = {**os.environ, **MALLOC_ENV}
    samples: dict[str, list[dict[str, Any]]] = {run: [] for run in RUNS}
    for _ in range(args.memory_repeats):
        for run in RUNS:
            cmd = [
                sys.executable, __file__, "--child", f"{case.key}:{run}", "--device",
                args.device, "--steps", str(args.steps), "--threads", str(args.threads),
            ] + (["--flush-denormal"] if args.flush_denormal else [])
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child {case.key}:{run} failed:\n{proc.stderr}")
            samples[run].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {}
    for run, got in samples.items():
        med = sorted(got, key=lambda s: s["delta"])[len(got) // 2]
        out[run] = {**med, "deltas": [s["delta"] for s in got]}
    return out


# --------------------------------------------------------------------------- timing
def measure_time(case: Case, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    net, x, y, notes = build(case, device)
    runner = Runner(net, x, y, args.steps)
    warm = Runner(net, x, y, 2)
    for run in RUNS:  # warm-up on the full batch: allocator, kernel choice, first calls
        warm.get(run)()
    times: dict[str, list[float]] = {r: [] for r in RUNS}
    cpu: dict[str, list[float]] = {r: [] for r in RUNS}
    pair_ratios: list[float] = []
    cpu_pair_ratios: list[float] = []
    es_queries: list[float] = []
    for i in range(args.repeats):
        order = list(RUNS) if i % 2 == 0 else ["pgd", "floor", "pgd_early_stop"]
        got: dict[str, tuple[float, float]] = {}
        for run in order:
            got[run] = timed(runner.get(run), device)
            times[run].append(got[run][0])
            cpu[run].append(got[run][1])
            q = runner.last_queries
            if run == "pgd":
                assert q is not None
                if not bool((q == args.steps + 3).all()):
                    raise RuntimeError(
                        f"PGD with early_stop=False made {q.unique().tolist()} passes per "
                        f"sample, expected {args.steps + 3}: the work is not fixed."
                    )
            if run == "pgd_early_stop":
                assert q is not None
                es_queries.append(float(q.float().mean()))
        pair_ratios.append(got["pgd"][0] / got["floor"][0])
        cpu_pair_ratios.append(got["pgd"][1] / got["floor"][1])
    med = {r: statistics.median(v) for r, v in times.items()}
    cpu_med = {r: statistics.median(v) for r, v in cpu.items()}
    return {
        "notes": notes,
        "times_s": times,
        "median_s": med,
        "ratio": statistics.median(pair_ratios),
        "ratio_of_medians": med["pgd"] / med["floor"],
        "pair_ratios": pair_ratios,
        "cpu_times_s": cpu,
        "cpu_median_s": cpu_med,
        "cpu_ratio": statistics.median(cpu_pair_ratios),
        "cpu_pair_ratios": cpu_pair_ratios,
        "early_stop_mean_queries": statistics.median(es_queries),
        "early_stop_ratio": med["pgd_early_stop"] / med["floor"],
    }


# --------------------------------------------------------------------------- report
def machine_facts(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "hoodwink_version": hoodwink.__version__ if hasattr(hoodwink, "__version__") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        facts["cuda_device"] = torch.cuda.get_device_name(device)
    return facts


def _mib(b: float) -> float:
    return b / 2**20


def print_table(rows: list[dict[str, Any]], steps: int) -> None:
    headers = [
        "model", "batch", f"floor: {steps} f+b (s)", "PGD (s)", "time ratio", "CPU-time ratio",
        "floor peak (MiB)", "PGD peak (MiB)", "mem ratio", "early-stop PGD (s)",
        "its passes/sample",
    ]
    body = []
    for r in rows:
        t, m = r["time"], r["memory"]
        body.append([
            r["model"], str(r["batch"]), f"{t['median_s']['floor']:.3f}",
            f"{t['median_s']['pgd']:.3f}",
            f"{t['ratio']:.3f} {'ok' if t['ratio'] <= TIME_TARGET else 'OVER'}",
            f"{t['cpu_ratio']:.3f}",
            f"{_mib(m['floor']['delta']):.1f}", f"{_mib(m['pgd']['delta']):.1f}",
            f"{m['ratio']:.2f} {'ok' if m['ratio'] <= MEMORY_TARGET else 'OVER'}",
            f"{t['median_s']['pgd_early_stop']:.3f}",
            f"{t['early_stop_mean_queries']:.1f}",
        ])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for b in body:
            print("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)))
        return
    table = Table(title=f"PGD overhead over bare forward+backward (targets: time ≤ "
                        f"{TIME_TARGET}, memory ≤ {MEMORY_TARGET}×)")
    for h in headers:
        table.add_column(h, justify="left" if h == "model" else "right")
    for b in body:
        table.add_row(*b)
    Console(width=max(150, Console().width)).print(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per model (median)")
    p.add_argument("--steps", type=int, default=40, help="PGD steps = floor passes")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--memory-repeats", type=int, default=3,
                   help="fresh subprocesses per memory measurement (median)")
    p.add_argument("--models", default=",".join(c.key for c in CASES),
                   help="comma-separated subset of: " + ", ".join(c.key for c in CASES))
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON record to write")
    p.add_argument("--flush-denormal", action="store_true",
                   help="flush subnormal floats to zero (torch.set_flush_denormal) in both "
                        "the floor and PGD, to separate the model's subnormal arithmetic at "
                        "adversarial iterates from hoodwink's own overhead")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    warnings.simplefilter("ignore")  # e.g. EpsScaleWarning is irrelevant here

    if args.child:
        case_key, run = args.child.split(":")
        print(json.dumps(child_memory(case_key, run, device, args.steps)))
        return 0

    cases = [c for c in CASES if c.key in args.models.split(",")]
    facts = machine_facts(args, device)
    rows = []
    for case in cases:
        mem = measure_memory(case, args)
        mem_ratio = mem["pgd"]["delta"] / max(mem["floor"]["delta"], 1)
        t = measure_time(case, args, device)
        rows.append({
            "model": case.key, "title": case.title, "batch": case.batch,
            "time": t,
            "memory": {
                "method": ("fresh subprocess per run; peak RSS (VmHWM) during the run minus "
                           "RSS after model+data load and a 2-sample warm-up (peak reset via "
                           f"/proc/self/clear_refs); env {MALLOC_ENV}")
                if device.type == "cpu" else
                "fresh subprocess per run; torch.cuda.max_memory_allocated minus "
                "memory_allocated after model+data load and a 2-sample warm-up",
                **mem, "ratio": mem_ratio,
            },
            "meets_targets": {"time": t["ratio"] <= TIME_TARGET,
                              "memory": mem_ratio <= MEMORY_TARGET},
        })
    facts["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    record = {
        "format_version": 1,
        "benchmark": "pgd_overhead",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/overhead.py", *(argv or sys.argv[1:])]),
        "config": {"steps": args.steps, "repeats": args.repeats, "eps": EPS, "norm": "linf",
                   "memory_repeats": args.memory_repeats, "floor_step": TINY,
                   "flush_denormal": bool(args.flush_denormal),
                   "targets": {"time_ratio": TIME_TARGET, "memory_ratio": MEMORY_TARGET}},
        "machine": facts,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print_table(rows, args.steps)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

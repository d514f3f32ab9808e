"""Train the two bundled MNIST models that tell strong attacks from weak ones.

* ``mnist_cnn_adv``: :class:`~hoodwink.zoo.mnist.MnistCNN` adversarially trained
  with :func:`hoodwink.training.adversarial_train` at L∞ eps 0.3 (Madry et al.,
  ICLR 2018), on the 4,000-digit ``"train"`` split of
  :func:`hoodwink.data.load_mnist`. Genuinely robust: PGD with cross-entropy and
  PGD with the logit margin agree.
* ``mnist_cnn_distilled``: defensive distillation (Papernot et al., IEEE S&P
  2016) at temperature T = 100: a teacher MnistCNN trained on softmax(logits/T),
  a student trained on the teacher's soft labels at T, deployed at T = 1 (raw
  logits). Its logits are huge, the softmax saturates, and the cross-entropy
  input gradient is exactly zero in float32 for most correctly classified
  digits: **deliberately gradient-masked**. PGD with cross-entropy is stuck;
  PGD with the logit margin (Carlini and Wagner, 2017) breaks it.

Both are evaluated on the 1,000 held-out ``"test"`` digits (PGD-40, seed 0),
and everything is written to::

    src/hoodwink/zoo/weights/mnist_cnn_adv.safetensors
    src/hoodwink/zoo/weights/mnist_cnn_distilled.safetensors
    src/hoodwink/zoo/weights/robust_mnist_metrics.json

Deterministic: fixed seeds, local generators, ``torch.use_deterministic_algorithms``
and a fixed thread count (the float summation order depends on it). One thread by
default: on the shared two-core machine that made the bundled files, two threads
stalled under load (about 1 s per training batch against 0.3 s with one thread).
About 10 minutes of adversarial training, 3 of distillation and 5 of evaluation
there.

Usage::

    PYTHONPATH=src python scripts/train_robust_mnist.py [--out DIR] [--threads N]
        [--models adv,distilled]

(``--threads 2`` is faster on an idle machine but gives other weights.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

# The same augmentation as the plain models (this script's folder is on sys.path when run).
from train_mnist import random_shift

import hoodwink
from hoodwink.data import load_mnist
from hoodwink.training import adversarial_train
from hoodwink.zoo.mnist import MnistCNN, load_mnist_cnn

SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "hoodwink" / "zoo" / "weights"
METRICS = "robust_mnist_metrics.json"
#: PGD of every evaluation: Madry et al.'s 40 steps, stepsize 2.5 * eps / 40, one random start.
EVAL_STEPS = 40
#: The first this many held-out digits get their own figures, for fast tests.
SMALL_N = 100

ADV_CONFIG: dict[str, Any] = {
    "eps": 0.3, "norm": "linf", "steps": 7, "epochs": 30, "batch_size": 64, "lr": 1e-3,
    "lr_schedule": "cosine", "eps_warmup_epochs": 10, "levels": 256, "seed": SEED,
}
DISTILL_CONFIG: dict[str, Any] = {
    "temperature": 100.0, "epochs": 20, "lr": 3e-3, "batch_size": 64, "max_shift": 2,
    "optimizer": "Adam, one-cycle",
}


def log(message: str) -> None:
    """Progress on stdout, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wrap(net: nn.Module) -> hoodwink.TorchClassifier:
    """The zoo's adapter for an MNIST network: bounds (0, 1), 8-bit grid."""
    return hoodwink.TorchClassifier(net.eval(), bounds=(0, 1), levels=256,
                                    class_names=tuple(str(i) for i in range(10)),
                                    input_shape=(1, 28, 28))


def accuracy(clf: hoodwink.TorchClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` classified as ``y``."""
    return float((clf.predict(x) == y).double().mean())


def robust(clf: hoodwink.TorchClassifier, x: torch.Tensor, y: torch.Tensor, eps: float,
           loss: str = "ce") -> float:
    """PGD-40 robust accuracy (seed 0): the fraction still correct after the attack."""
    attack = hoodwink.PGD(steps=EVAL_STEPS, loss=loss, seed=SEED)  # type: ignore[arg-type]
    return attack(clf, x, y, eps=eps).robust_accuracy()


def zero_gradient_fraction(clf: hoodwink.TorchClassifier, x: torch.Tensor,
                           y: torch.Tensor) -> tuple[float, int]:
    """Among correctly classified digits, the fraction whose CE input gradient is exactly 0."""
    keep = clf.predict(x) == y
    _, _, grad = clf.loss_gradient(x[keep], y[keep], loss="ce")
    zero = (grad.flatten(1) == 0).all(dim=1)
    return float(zero.double().mean()), int(keep.sum())


def save(net: nn.Module, path: Path) -> None:
    """The network's weights as safetensors, tagged with this script."""
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"source": "scripts/train_robust_mnist.py"})


# ------------------------------------------------------------------ adversarial training
def train_adv(x: torch.Tensor, y: torch.Tensor, out: Path) -> tuple[nn.Module, dict[str, Any]]:
    """MnistCNN adversarially trained at L∞ 0.3; its weights and training record."""
    torch.manual_seed(SEED)
    net = MnistCNN()
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            log(f"mnist_cnn_adv {done}/{total}: {message}")

    result = adversarial_train(net, x, y, progress=progress, **ADV_CONFIG)
    save(result.module, out / "mnist_cnn_adv.safetensors")
    record = result.to_dict()
    return result.module, {"config": record["config"], "history": record["history"],
                           "train_time_s": round(result.time_s, 1)}


def evaluate_adv(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Clean and PGD-robust accuracy on the held-out digits, CE and margin loss."""
    clf = wrap(net)
    metrics: dict[str, Any] = {"test_accuracy": accuracy(clf, x, y)}
    for loss in ("ce", "margin"):
        key = "pgd_robust_accuracy" if loss == "ce" else "pgd_margin_robust_accuracy"
        epsilons = (0.1, 0.2, 0.3) if loss == "ce" else (0.3,)
        metrics[key] = {}
        for e in epsilons:
            metrics[key][str(e)] = robust(clf, x, y, e, loss)
            log(f"mnist_cnn_adv PGD-{EVAL_STEPS} {loss} eps {e}: {metrics[key][str(e)]:.3f}")
    xs, ys = x[:SMALL_N], y[:SMALL_N]
    metrics[f"first_{SMALL_N}"] = {
        "test_accuracy": accuracy(clf, xs, ys),
        "pgd_robust_accuracy": {"0.3": robust(clf, xs, ys, 0.3)},
    }
    return metrics


# ------------------------------------------------------------------ defensive distillation
def train_at_temperature(net: nn.Module, x: torch.Tensor, targets: torch.Tensor | nn.Module,
                         y: torch.Tensor) -> None:
    """Train ``net`` on softmax(logits / T): hard labels ``y``, or a teacher's soft labels.

    ``targets`` is either the labels themselves (the teacher) or the teacher
    network, whose softmax(logits / T) on the same augmented batch is the target
    distribution (the student).
    """
    cfg = DISTILL_CONFIG
    temperature = float(cfg["temperature"])
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    steps_per_epoch = -(-len(x) // cfg["batch_size"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch)
    for _ in range(cfg["epochs"]):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), cfg["batch_size"]):
            index = order[start : start + cfg["batch_size"]]
            xb = random_shift(x[index], cfg["max_shift"], generator)
            logits = net(xb) / temperature
            if isinstance(targets, nn.Module):
                with torch.no_grad():
                    soft = F.softmax(targets(xb) / temperature, dim=1)
                loss = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            else:
                loss = F.cross_entropy(logits, y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()


def train_distilled(x: torch.Tensor, y: torch.Tensor, out: Path) -> nn.Module:
    """Teacher at T, student on its soft labels at T; the student is deployed at T = 1."""
    torch.manual_seed(SEED)
    teacher = MnistCNN()
    train_at_temperature(teacher, x, y, y)
    log("teacher trained")
    torch.manual_seed(SEED + 1)
    student = MnistCNN()
    train_at_temperature(student, x, teacher.eval(), y)
    log("student trained")
    save(student, out / "mnist_cnn_distilled.safetensors")
    return student


def evaluate_distilled(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Clean accuracy, PGD with CE against PGD with the margin, the zero gradients."""
    clf = wrap(net)
    plain = wrap(load_mnist_cnn())
    logits = clf.logits(x)
    top2 = logits.topk(2, dim=1).values
    metrics: dict[str, Any] = {
        "test_accuracy": accuracy(clf, x, y),
        "median_top_logit_margin": float((top2[:, 0] - top2[:, 1]).median()),
        "median_top_logit_margin_mnist_cnn": float(
            (lambda t: (t[:, 0] - t[:, 1]).median())(plain.logits(x).topk(2, dim=1).values)),
    }
    zero, n_correct = zero_gradient_fraction(clf, x, y)
    metrics["ce_zero_gradient_fraction"] = zero
    metrics["ce_zero_gradient_of"] = n_correct
    log(f"mnist_cnn_distilled: CE gradient exactly zero on {zero:.3f} of {n_correct}")
    for key, model, loss in (("pgd_robust_accuracy", clf, "ce"),
                             ("pgd_margin_robust_accuracy", clf, "margin"),
                             ("mnist_cnn_pgd_robust_accuracy", plain, "ce")):
        metrics[key] = {}
        for e in (0.1, 0.2):
            metrics[key][str(e)] = robust(model, x, y, e, loss)
            log(f"{key} eps {e}: {metrics[key][str(e)]:.3f}")
    xs, ys = x[:SMALL_N], y[:SMALL_N]
    metrics[f"first_{SMALL_N}"] = {
        "test_accuracy": accuracy(clf, xs, ys),
        "ce_zero_gradient_fraction": zero_gradient_fraction(clf, xs, ys)[0],
        "pgd_robust_accuracy": {"0.2": robust(clf, xs, ys, 0.2, "ce")},
        "pgd_margin_robust_accuracy": {"0.2": robust(clf, xs, ys, 0.2, "margin")},
    }
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--models", default="adv,distilled",
                        help="which to (re)train: adv, distilled or both (the metrics of the "
                             "other are kept from the existing file)")
    args = parser.parse_args()
    chosen = {m.strip() for m in args.models.split(",") if m.strip()}
    if not chosen or chosen - {"adv", "distilled"}:
        parser.error(f"--models takes adv, distilled or both; got {args.models!r}")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / METRICS
    old: dict[str, Any] = (json.loads(path.read_text(encoding="utf-8"))["models"]
                           if path.is_file() else {})
    models: dict[str, Any] = {}
    if "adv" in chosen:
        start = time.perf_counter()
        net, training = train_adv(x_train, y_train, args.out)
        log(f"mnist_cnn_adv trained in {time.perf_counter() - start:.0f} s")
        models["mnist_cnn_adv"] = {"training": training, **evaluate_adv(net, x_test, y_test)}
    else:
        models["mnist_cnn_adv"] = old["mnist_cnn_adv"]
    if "distilled" in chosen:
        start = time.perf_counter()
        student = train_distilled(x_train, y_train, args.out)
        seconds = round(time.perf_counter() - start, 1)
        models["mnist_cnn_distilled"] = {"training": {**DISTILL_CONFIG, "train_time_s": seconds},
                                         **evaluate_distilled(student, x_test, y_test)}
    else:
        models["mnist_cnn_distilled"] = old["mnist_cnn_distilled"]
    record = {
        "format_version": 1,
        "dataset": "hoodwink.data.load_mnist",
        "train_samples": len(x_train),
        "test_samples": len(x_test),
        "small_n": SMALL_N,
        "evaluation": f"hoodwink.PGD(steps={EVAL_STEPS}, seed={SEED}), one random start; "
                      "robust accuracy = fraction of all test digits still correct",
        "threads": args.threads,
        "torch_version": torch.__version__.split("+")[0],
        "models": models,
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Train the bundled MNIST models and write their weights and held-out accuracy.

Trains :class:`~hoodwink.zoo.mnist.MnistCNN` and
:class:`~hoodwink.zoo.mnist.MnistLinear` on the 4,000-image ``"train"`` split of
:func:`hoodwink.data.load_mnist` (raw pixels in [0, 1], no normalisation), then
evaluates them on the 1,000 held-out ``"test"`` images and writes::

    src/hoodwink/zoo/weights/mnist_cnn.safetensors
    src/hoodwink/zoo/weights/mnist_linear.safetensors
    src/hoodwink/zoo/weights/mnist_metrics.json

Deterministic: fixed seeds, a local generator for shuffling and augmentation,
and ``torch.use_deterministic_algorithms``. Takes about a minute on two CPU cores.

Usage::

    PYTHONPATH=src python scripts/train_mnist.py [--out DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from hoodwink.data import load_mnist
from hoodwink.zoo.mnist import MnistCNN, MnistLinear

SEED = 0
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "hoodwink" / "zoo" / "weights"


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero fill), drawn from ``generator``."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(
        n, 1, h, w + 2 * max_shift
    )
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return shifted.gather(3, cols)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` that ``net`` (in eval mode) classifies as ``y``."""
    net.eval()
    pred = torch.cat([net(xb).argmax(1) for xb in x.split(500)])
    return float((pred == y).float().mean())


def train(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_shift: int,
    seed: int,
) -> None:
    """Adam with a one-cycle schedule; shuffling and augmentation from a local generator."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            xb, yb = x[index], y[index]
            if max_shift > 0:
                xb = random_shift(xb, max_shift, generator)
            loss = F.cross_entropy(net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    # One thread by default: on small shared CPUs a second thread often stalls
    # (slower, not faster), and one thread keeps the float summation order fixed.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")

    configs: dict[str, dict[str, float | int]] = {
        "mnist_cnn": {
            "epochs": 20,
            "lr": 3e-3,
            "weight_decay": 0.0,
            "batch_size": 64,
            "max_shift": 2,
        },
        "mnist_linear": {
            "epochs": 30,
            "lr": 1e-2,
            "weight_decay": 1e-4,
            "batch_size": 64,
            "max_shift": 0,
        },
    }
    builders = {"mnist_cnn": MnistCNN, "mnist_linear": MnistLinear}

    record: dict[str, object] = {
        "format_version": 1,
        "dataset": "hoodwink.data.load_mnist",
        "train_samples": len(x_train),
        "test_samples": len(x_test),
        "seed": SEED,
        "torch_version": torch.__version__.split("+")[0],
    }
    models: dict[str, dict[str, object]] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, config in configs.items():
        torch.manual_seed(SEED)
        net = builders[name]()
        start = time.perf_counter()
        train(
            net,
            x_train,
            y_train,
            epochs=int(config["epochs"]),
            lr=float(config["lr"]),
            weight_decay=float(config["weight_decay"]),
            batch_size=int(config["batch_size"]),
            max_shift=int(config["max_shift"]),
            seed=SEED,
        )
        seconds = time.perf_counter() - start
        train_acc = accuracy(net, x_train, y_train)
        test_acc = accuracy(net, x_test, y_test)
        print(f"{name}: train {train_acc:.4f}  held-out {test_acc:.4f}  ({seconds:.1f} s)")
        state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        save_file(
            state,
            str(args.out / f"{name}.safetensors"),
            metadata={"source": "scripts/train_mnist.py"},
        )
        models[name] = {
            "test_accuracy": round(test_acc, 4),
            "train_accuracy": round(train_acc, 4),
            "optimizer": "Adam, one-cycle",
            **config,
        }
    record["models"] = models
    (args.out / "mnist_metrics.json").write_text(
        json.dumps(record, indent=2) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()

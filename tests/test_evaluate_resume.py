"""Resumable evaluations: the SQLite run store, crashes (SIGKILL) and resumption.

A run killed after k committed units and started again must give the record an
uninterrupted run gives (robust numbers, minimal norms, per-sample results),
computing only the units that were missing: each unit row records which
process (run 1, 2, ...) computed it, and a unit computed twice would violate
the table's primary key.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hoodwink.errors import ConfigError
from hoodwink.evaluation import Evaluation, evaluate
from hoodwink.evaluation.store import RunStore
from test_evaluate import NET_SRC, cli_app, figures, linear_data, linear_model

ATTACKS = ["pgd", "fgsm", "square"]
GRID = [0.03, 0.06, 0.12]


def units(db: Path) -> list[tuple[str, int]]:
    """(key, run) of every stored unit, in commit order."""
    con = sqlite3.connect(db)
    try:
        return [(k, r) for k, r in con.execute("SELECT key, run FROM units ORDER BY seq, rowid")]
    finally:
        con.close()


class Crash(Exception):
    """Raised by :class:`_Crashing` to interrupt a run in the test's own process."""


class _Crashing(torch.nn.Module):
    """Wraps a network; raises Crash on the first forward once the store holds k units."""

    def __init__(self, net: torch.nn.Module, db: Path, k: int | None) -> None:
        super().__init__()
        self.net, self.db, self.k = net, db, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.k is not None and self.db.exists():
            try:
                n = len(units(self.db))
            except sqlite3.Error:
                n = -1
            if n >= self.k:
                raise Crash(n)
        return self.net(x)


def _run(db: Path, k: int | None = None, **kw: Any) -> Evaluation:
    from hoodwink import TorchClassifier

    base = linear_model()
    model = TorchClassifier(_Crashing(base.module, db, k).eval(), bounds=(-10, 10),
                            num_classes=4)
    x, y = linear_data(30)
    args: dict[str, Any] = {"eps": GRID, "attacks": ATTACKS, "batch_size": 8,
                            "max_queries": 60, "store": db, "model_name": "Linear", **kw}
    return evaluate(model, x, y, **args)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], int]:
    """An uninterrupted run's figures and its number of units."""
    db = tmp_path_factory.mktemp("ref") / "run.sqlite"
    ev = _run(db)
    return figures(ev), len(units(db))


# ---------------------------------------------------------------------------- in-process
def test_a_finished_run_is_read_back_not_recomputed(tmp_path: Path,
                                                   reference: tuple[dict[str, Any], int]
                                                   ) -> None:
    db = tmp_path / "run.sqlite"
    first = _run(db)
    second = _run(db)
    assert figures(first) == figures(second) == reference[0]
    assert torch.equal(first.x_adv_examples, second.x_adv_examples)  # type: ignore[arg-type]
    stored = units(db)
    assert len(stored) == reference[1] > 10
    assert {r for _, r in stored} == {1}  # run 2 computed nothing
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT value FROM meta WHERE key = 'runs'").fetchone()[0] == "2"
    con.close()


def test_no_store_same_numbers_as_with_one(tmp_path: Path,
                                          reference: tuple[dict[str, Any], int]) -> None:
    x, y = linear_data(30)
    ev = evaluate(linear_model(), x, y, eps=GRID, attacks=ATTACKS, batch_size=8,
                  max_queries=60)
    assert figures(ev) == reference[0]


@pytest.mark.parametrize("k", [0, 1, 7, "last"])
def test_crash_after_k_units_then_resume(tmp_path: Path, k: int | str,
                                         reference: tuple[dict[str, Any], int]) -> None:
    total = reference[1]
    kk = total - 1 if k == "last" else int(k)
    db = tmp_path / "run.sqlite"
    with pytest.raises(Crash):
        _run(db, kk)
    assert len(units(db)) == kk
    ev = _run(db)
    assert figures(ev) == reference[0]
    stored = units(db)
    assert len(stored) == total == len({key for key, _ in stored})
    assert sum(r == 1 for _, r in stored) == kk
    assert sum(r == 2 for _, r in stored) == total - kk


# ---------------------------------------------------------------------------- configuration
def test_another_configuration_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "run.sqlite"
    x, y = linear_data(20)
    evaluate(linear_model(), x, y, eps=[0.05], attacks=["fgsm"], store=db)
    with pytest.raises(ConfigError) as err:
        evaluate(linear_model(), x, y, eps=[0.05, 0.1], attacks=["pgd"], seed=1, store=db)
    text = str(err.value)
    assert "eps (stored [0.05], now [0.05, 0.1])" in text
    assert "seed (stored 0, now 1)" in text and "attacks" in text
    assert "norm" not in text.split("differ:")[1].split(".")[0]
    assert "another --store path" in text and f"delete {db}" in text
    with pytest.raises(ConfigError, match=r"data \(another data"):
        evaluate(linear_model(), x + 0.01, y, eps=[0.05], attacks=["fgsm"], store=db)
    other = linear_model()
    with torch.no_grad():
        other.module.fc.bias[0] += 1e-3  # type: ignore[union-attr, index, operator]
    with pytest.raises(ConfigError, match=r"model \(another model"):
        evaluate(other, x, y, eps=[0.05], attacks=["fgsm"], store=db)
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate(linear_model(), x, y, eps=[0.05], attacks=["fgsm"], store=db, batch_size=3)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="not a hoodwink run store"):
        RunStore(junk, {"a": 1})
    with pytest.raises(ConfigError, match="is a folder"):
        RunStore(tmp_path, {"a": 1})


# ---------------------------------------------------------------------------- SIGKILL
KILLING_NET_SRC = NET_SRC.replace("    def forward(self, x):\n", '''    def forward(self, x):
        import os, signal, sqlite3
        k, db = os.environ.get("KILL_AFTER_UNITS"), os.environ.get("KILL_DB", "")
        if k is not None and os.path.exists(db):
            try:
                con = sqlite3.connect(db)
                n = con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = -1
            if n >= int(k):
                os.kill(os.getpid(), signal.SIGKILL)
''')

WRAPPER_SRC = '''
import typer
from hoodwink.cli.evaluate import register
app = typer.Typer()
register(app)


@app.callback()
def _root():
    pass


app()
'''


def _command(tmp_path: Path) -> list[str]:
    """The real entry point once `evaluate` is mounted in hoodwink.cli.main, else a shim."""
    from hoodwink.cli import main

    if any(c.name == "evaluate" for c in main.app.registered_commands):
        return [sys.executable, "-m", "hoodwink.cli.main"]
    shim = tmp_path / "shim.py"
    shim.write_text(WRAPPER_SRC)
    return [sys.executable, str(shim)]


def _cli_args(tmp_path: Path, report: Path) -> list[str]:
    (tmp_path / "killnet.py").write_text(KILLING_NET_SRC)
    x, y = linear_data(30)
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    return ["evaluate", "--model", f"{tmp_path / 'killnet.py'}:factory", "--bounds=-10,10",
            "--data", str(tmp_path / "data.npz"), "--eps", ",".join(map(str, GRID)),
            "--attacks", ",".join(ATTACKS), "--batch-size", "8", "--max-queries", "60",
            "--report", str(report)]


def _kill_and_resume(tmp_path: Path, k: int) -> None:
    report = tmp_path / "rep"
    args = _cli_args(tmp_path, report)
    # The uninterrupted run, in this process through the same command.
    ref_dir = tmp_path / "ref"
    res = CliRunner().invoke(cli_app(), args[:-1] + [str(ref_dir)])
    assert res.exit_code in (0, 3), res.output  # 3: finished with sanity flags
    reference = Evaluation.load(ref_dir / "report.json")
    total = len(units(ref_dir / "run.sqlite"))
    assert k < total
    db = report / "run.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AFTER_UNITS": str(k), "KILL_DB": str(db)}
    cmd = _command(tmp_path) + args
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(units(db)) == k
    assert not (report / "report.json").exists()
    env.pop("KILL_AFTER_UNITS")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == res.exit_code, done.stderr
    ev = Evaluation.load(report / "report.json")
    assert figures(ev) == figures(reference)
    assert ev.min_norms == reference.min_norms
    assert torch.equal(ev.x_adv_examples, reference.x_adv_examples)  # type: ignore[arg-type]
    stored = units(db)
    assert len(stored) == total == len({key for key, _ in stored})
    assert sum(r == 1 for _, r in stored) == k  # the killed process's units, kept
    assert sum(r == 2 for _, r in stored) == total - k  # only the missing ones computed


@pytest.mark.slow
def test_sigkill_midway_then_resume(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, 5)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1])
def test_sigkill_early_then_resume(tmp_path: Path, k: int) -> None:
    _kill_and_resume(tmp_path, k)


def test_killed_after_the_last_unit_before_the_record(tmp_path: Path) -> None:
    """All units committed, no record written: the state a kill right after the last commit
    leaves (no model call follows the last unit, so the killing model cannot stop it there).
    The next run computes nothing and writes the same record."""
    report = tmp_path / "rep"
    args = _cli_args(tmp_path, report)
    code = CliRunner().invoke(cli_app(), args).exit_code
    assert code in (0, 3)
    first = Evaluation.load(report / "report.json")
    (report / "report.json").unlink()
    (report / "report.safetensors").unlink()
    before = units(report / "run.sqlite")
    res = CliRunner().invoke(cli_app(), args)
    assert res.exit_code == code, res.output
    assert units(report / "run.sqlite") == before  # nothing computed again
    assert figures(Evaluation.load(report / "report.json")) == figures(first)


def test_a_read_back_run_keeps_the_late_huge_eps_flag(tmp_path: Path) -> None:
    """The huge-eps check runs after the white-box stages; a run read back from its store
    (checks cached) must still raise it, with the same evidence, and still act on it."""
    import warnings

    model = linear_model(scale=1e4)  # saturated logits: the flag fires
    x, y = linear_data(60)
    kw: dict[str, Any] = dict(eps=[0.05, 0.1], attacks=["apgd", "square"], max_queries=300,
                              store=tmp_path / "run.sqlite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = evaluate(model, x, y, **kw)
        again = evaluate(model, x, y, **kw)
    assert "not-zero-at-huge-eps" in [f["code"] for f in first.flags]
    assert again.flags == first.flags
    assert again.attacks == first.attacks

"""The progress callback contract and the CLI reporter: bars on a TTY, throttled lines if piped."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from hoodwink.cli._common import DEFAULT_OUT_ROOT, output_dir, output_file
from hoodwink.cli._progress import PipedProgress, progress_reporter
from hoodwink.errors import ConfigError
from hoodwink.progress import as_callback, scaled
from hoodwink.reports import atomic_write_text


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_as_callback_none_is_a_silent_no_op() -> None:
    assert as_callback(None)(3, 10, "x") is None


def test_as_callback_rejects_a_non_callable() -> None:
    with pytest.raises(ConfigError, match="'progress' parameter"):
        as_callback("bar")  # type: ignore[arg-type]


def test_scaled_maps_a_sub_task_onto_its_share_of_the_whole() -> None:
    seen: list[tuple[int, int, str]] = []
    second = scaled(lambda d, t, m: seen.append((d, t, m)), offset=10, span=10, total=30)
    second(0, 4, "a")
    second(2, 4, "b")
    second(4, 4, "c")
    assert seen == [(10, 30, "a"), (15, 30, "b"), (20, 30, "c")]


def test_piped_lines_are_throttled_to_the_interval_and_the_end_is_always_said() -> None:
    clock = _Clock()
    out = io.StringIO()
    report = PipedProgress("PGD", out, interval=10.0, clock=clock)
    for i in range(1, 31):  # one update a second for 30 s
        clock.t = float(i)
        report(i, 30, f"step {i}")
    lines = out.getvalue().splitlines()
    assert lines == [
        "PGD: 33% (10/30) eta 20s, 10s elapsed - step 10",
        "PGD: 67% (20/30) eta 10s, 20s elapsed - step 20",
        "PGD: 100% (30/30), 30s elapsed - step 30",
    ]
    report(30, 30, "again")  # the final line is written once
    assert len(out.getvalue().splitlines()) == 3


def test_reporter_writes_lines_when_piped_and_nothing_when_quiet() -> None:
    piped = io.StringIO()  # StringIO.isatty() is False: the piped path
    with progress_reporter("job", stream=piped) as cb:
        cb(5, 5, "done")
    assert piped.getvalue().startswith("job: 100% (5/5)")
    quiet = io.StringIO()
    with progress_reporter("job", quiet=True, stream=quiet) as cb:
        cb(5, 5, "done")
    assert quiet.getvalue() == ""


def test_output_rule_defaults_under_out_command_and_creates_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = output_dir(None, "dream")
    assert folder == DEFAULT_OUT_ROOT / "dream" and (tmp_path / "out" / "dream").is_dir()
    f = output_file(None, "fool", "cat-adv.png")
    assert f == Path("out/fool/cat-adv.png") and (tmp_path / "out" / "fool").is_dir()
    given = output_file(tmp_path / "a" / "b" / "r.json", "attack", "ignored.json")
    assert given == tmp_path / "a" / "b" / "r.json" and given.parent.is_dir()


def test_output_rule_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="file is in the way"):
        output_dir(tmp_path / "f" / "sub", "dream")


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_are_written_with_the_users_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "r.json").stat().st_mode)
    assert mode == 0o666 & ~mask

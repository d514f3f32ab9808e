"""Reports are data first: a versioned JSON record, rendered to Markdown and HTML.

A study builds a :class:`Report` (its JSON record plus an ordered list of
blocks: headings, paragraphs, tables, figures) and calls :meth:`Report.write`.
The Markdown and HTML pages are rendered from the same blocks, and every
number in the blocks should be read from the record, so the CLI, a notebook
and CI all show the same figures.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Report",
    "ReportPaths",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "to_jsonable",
]


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written."""

    folder: Path
    json: Path
    markdown: Path
    html: Path


@dataclass
class Report:
    """A report under construction.

    Parameters
    ----------
    kind : str
        Record type, e.g. ``"linear.regularization"``; the JSON ``schema``
        field is ``"hoodwink.<kind>/<version>"``.
    title : str
    record : dict
        The data. Must be JSON-serialisable after :func:`to_jsonable`.
    version : int, default 1
    """

    kind: str
    title: str
    record: dict[str, Any]
    version: int = 1
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self.blocks.append(("heading", text))

    def text(self, text: str) -> None:
        """Add a paragraph (plain text; ``**bold**`` is kept in Markdown)."""
        self.blocks.append(("text", text))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        """Add a table; cells are formatted with :func:`_cell`."""
        self.blocks.append(("table", (headers, rows)))

    def figure(self, path: str | Path, caption: str) -> None:
        """Add a figure; ``path`` is relative to the report folder."""
        self.blocks.append(("figure", (str(path), caption)))

    def full_record(self) -> dict[str, Any]:
        """The JSON record with schema and environment fields."""
        from hoodwink.attacks.result import environment

        rec: dict[str, Any] = {"schema": f"hoodwink.{self.kind}/{self.version}",
                               "title": self.title}
        rec.update(to_jsonable(self.record))
        rec["environment"] = environment()
        figures = [b[1][0] for b in self.blocks if b[0] == "figure"]
        if figures:
            rec["figures"] = figures
        return rec

    def markdown(self) -> str:
        """Render to Markdown."""
        out = [f"# {self.title}", ""]
        for kind, val in self.blocks:
            if kind == "heading":
                out += [f"## {val}", ""]
            elif kind == "text":
                out += [str(val), ""]
            elif kind == "table":
                headers, rows = val
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "figure":
                path, caption = val
                out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        """Render to a standalone HTML page."""
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for kind, val in self.blocks:
            if kind == "heading":
                body.append(f"<h2>{e(val)}</h2>")
            elif kind == "text":
                body.append(f"<p>{e(str(val)).replace('**', '')}</p>")
            elif kind == "table":
                headers, rows = val
                head = "".join(f"<th>{e(h)}</th>" for h in headers)
                trs = "".join(
                    "<tr>" + "".join(f"<td>{e(_cell(c))}</td>" for c in r) + "</tr>" for r in rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            elif kind == "figure":
                path, caption = val
                body.append(
                    f'<figure><img src="{e(path)}" alt="{e(caption)}">'
                    f"<figcaption>{e(caption)}</figcaption></figure>"
                )
        style = (
            "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
            "text-align:right}img{max-width:100%}"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )

    def write(self, folder: str | Path, stem: str = "report") -> ReportPaths:
        """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.html`` into ``folder``."""
        d = Path(folder)
        make_folder(d)
        paths = ReportPaths(d, d / f"{stem}.json", d / f"{stem}.md", d / f"{stem}.html")
        atomic_write_text(paths.json, json.dumps(self.full_record(), indent=2) + "\n")
        atomic_write_text(paths.markdown, self.markdown())
        atomic_write_text(paths.html, self.html())
        return paths


def _cell(c: Any) -> str:
    if isinstance(c, float):
        if c != c:
            return "–"
        if c == 0 or 1e-3 <= abs(c) < 1e5:
            return f"{c:.4g}"
        return f"{c:.3e}"
    return str(c)


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, numpy values, paths and tuples to plain JSON types.

    Values stored in float32 (or float16, bfloat16) become the shortest
    decimal that reads back to the same value in that type, so a float32
    0.978 is written as ``0.978``, not ``0.9779999852180481``; float64 values
    keep full precision. NaN becomes None (JSON ``null``).

    >>> import numpy as np, torch
    >>> to_jsonable({"norm": torch.tensor([0.978, 0.5]), "eps": np.float32(0.1)})
    {'norm': [0.978, 0.5], 'eps': 0.1}
    >>> to_jsonable(torch.tensor([0.978], dtype=torch.float64))
    [0.978]
    >>> to_jsonable((np.float32("nan"), 2, Path("a")))
    [None, 2, 'a']
    """
    import numpy as np
    import torch

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)  # numpy has no bfloat16; float32 holds it exactly
        return to_jsonable(t.numpy())
    if isinstance(obj, np.ndarray):
        if obj.dtype in (np.float32, np.float16):
            return _short_floats(obj)
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.float32 | np.float16):
        return _short_float(obj)
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def _short_float(v: Any) -> float | None:
    """The shortest decimal that round-trips in ``v``'s own float type, as a Python float."""
    import numpy as np

    if v != v:
        return None
    if not np.isfinite(v):
        return float(v)
    return float(np.format_float_positional(v, unique=True, trim="-"))


def _short_floats(a: Any) -> Any:
    """Nested lists of :func:`_short_float` values for a float32/float16 array."""
    if a.ndim == 0:
        return _short_float(a[()])
    if a.ndim == 1:
        return [_short_float(v) for v in a]
    return [_short_floats(row) for row in a]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: never half-written.

    Raises
    ------
    ConfigError
        ``path`` cannot be written (a folder is in the way, its folder is missing
        or refuses new files, the disk is full, ...): one line naming the path and
        the reason, never a raw ``OSError``.
    """
    p = Path(path)
    if p.is_dir():
        raise _config_error(f"Cannot write {p}: it is a folder. Give a file name.")
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise _config_error(_write_problem(p, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp creates 0600; a file the user asked for gets the user's umask, like open().
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _config_error(_write_problem(p, exc)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config_error(message: str) -> Exception:
    from hoodwink.errors import ConfigError

    return ConfigError(message)


def _write_problem(p: Path, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return f"Cannot write {p}: {reason}. Choose another output location."


def make_folder(folder: str | Path) -> Path:
    """Create ``folder`` and its parents (no error when it exists).

    Raises
    ------
    ConfigError
        A file is in the way, or the folder cannot be created.
    """
    d = Path(folder)
    problem = output_problem(d, kind="folder")
    if problem is not None:
        raise _config_error(problem)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _config_error(
            f"Cannot write {d}: creating the folder failed ({exc.strerror or exc}). Choose "
            "another output location."
        ) from exc
    return d


def check_output_path(
    path: str | Path, *, kind: str = "file", files: tuple[str, ...] = ()
) -> Path:
    """Check, before any work, that ``path`` can be written; create nothing.

    Parameters
    ----------
    path : str or Path
        The output file (``kind="file"``) or folder (``kind="folder"``). Missing
        folders above it may be created later: then the nearest existing one
        must accept new files.
    kind : {"file", "folder"}
    files : tuple of str
        For a folder: the names the caller will write inside it; none may be
        an existing folder.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        ``path`` (or one of ``files``) is an existing folder where a file is
        expected, a file where a folder is expected, something that is not a
        regular file, lies under a regular file, or its nearest existing folder
        refuses new files (found by creating and removing a probe file there,
        which also catches ``/proc`` and read-only mounts for root).
    """
    p = Path(path)
    problem = output_problem(p, kind=kind, files=files)
    if problem is not None:
        raise _config_error(problem)
    return p


def output_problem(path: Path, *, kind: str = "file", files: tuple[str, ...] = ()) -> str | None:
    """The reason ``path`` cannot be written, or None (see :func:`check_output_path`)."""
    import stat

    if kind not in ("file", "folder"):
        raise _config_error(f"The 'kind' parameter must be 'file' or 'folder'. Got {kind!r}.")
    text = str(path)
    if not text or "\x00" in text:
        return f"Cannot write {text!r}: give a non-empty path without NUL characters."
    fix = "Choose another output location."
    try:
        st = path.stat() if path.exists() or path.is_symlink() else None
    except OSError as exc:
        return f"Cannot write {path}: {exc.strerror or exc}. {fix}"
    if st is not None:
        if kind == "file" and stat.S_ISDIR(st.st_mode):
            return (f"Cannot write {path}: it is a folder. Give a file name, e.g. "
                    f"{path / 'out.png'}.")
        if kind == "folder" and not stat.S_ISDIR(st.st_mode):
            return f"Cannot write into {path}: it is a file, not a folder. {fix}"
        if kind == "file" and not stat.S_ISREG(st.st_mode):
            return f"Cannot write {path}: it exists and is not a regular file. {fix}"
    for name in files:
        child = path / name
        if child.is_dir():
            return f"Cannot write {child}: it is a folder. Remove it or choose another folder."
    # The folder the file goes into, or the nearest one that exists.
    folder = path if kind == "folder" and st is not None else path.parent
    while True:
        try:
            fst = folder.stat()
        except FileNotFoundError:
            if folder == folder.parent:
                return f"Cannot write {path}: no existing folder above it. {fix}"
            folder = folder.parent
            continue
        except NotADirectoryError:
            folder = folder.parent
            continue
        except OSError as exc:
            return f"Cannot write {path}: {exc.strerror or exc} ({folder}). {fix}"
        break
    if not stat.S_ISDIR(fst.st_mode):
        return f"Cannot write {path}: {folder} is a file, not a folder. {fix}"
    name_max = _name_max(folder)
    too_long = [part for part in path.parts if len(os.fsencode(part)) > name_max]
    if too_long:
        return (f"Cannot write {path}: the name {too_long[0][:40]!r}... is longer than "
                f"{name_max} bytes. {fix}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hoodwink-probe-")
    except OSError as exc:
        return (f"Cannot write {path}: the folder {folder} refuses new files "
                f"({exc.strerror or type(exc).__name__}). {fix}")
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return None


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))

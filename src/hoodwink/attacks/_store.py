"""Saving a JSON record with its tensors beside it, and reading the pair back.

The storage of :meth:`AttackResult.save` / :meth:`AttackResult.load` and
:meth:`Curve.save` / :meth:`Curve.load`: the record goes to ``<stem>.json``, the
tensors to ``<stem>.safetensors``, and the record names the tensor file with
its sha256, so a load checks that the two still belong together.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from hoodwink.errors import ConfigError, InputError, MissingDependencyError
from hoodwink.reports import atomic_write_bytes, atomic_write_text

__all__ = ["check_schema", "companion_path", "read_json", "read_pair", "read_tensors",
           "write_pair"]


def _safetensors(action: str) -> ModuleType:
    try:
        return importlib.import_module("safetensors.torch")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{action} needs the 'safetensors' package. Install it with: "
            "pip install 'hoodwink[mnist]' (or pip install safetensors)."
        ) from exc


def _json_path(path: str | Path, what: str) -> Path:
    p = Path(path)
    if p.suffix == "":
        p = p.with_name(p.name + ".json")
    if p.suffix == ".safetensors":
        raise InputError(
            f"The 'path' of {what}.save/load must name the JSON record, not the tensor file. "
            f"Got {str(path)!r}; pass {str(p.with_suffix('.json'))!r}."
        )
    return p


def write_pair(path: str | Path, rec: dict[str, Any], tensors: dict[str, torch.Tensor],
                what: str) -> Path:
    """Write ``tensors`` to <stem>.safetensors, then ``rec`` (naming it, with its sha256)."""
    st = _safetensors(f"{what}.save()")
    json_path = _json_path(path, what)
    tensor_path = json_path.with_suffix(".safetensors")
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a path under a file, /proc, no permission: one clear line
        raise ConfigError(
            f"Cannot write {what} to {json_path}: {exc.strerror or exc}. Pass a path in a "
            "writable folder."
        ) from exc
    data: bytes = st.save(tensors, metadata={"schema": rec["schema"]})
    atomic_write_bytes(tensor_path, data)
    rec = dict(rec)
    rec["tensors"] = {"file": tensor_path.name, "sha256": hashlib.sha256(data).hexdigest(),
                      "format": "safetensors"}
    atomic_write_text(json_path, json.dumps(rec, indent=2, allow_nan=False) + "\n")
    return json_path


def read_json(path: Path, fix: str) -> Any:
    """The parsed JSON of the file ``path``; ``fix`` ends the message when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON file ({exc}). {fix}") from exc
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def companion_path(json_path: Path, rec: Any) -> Path | None:
    """The tensor file the record ``rec`` at ``json_path`` names, or None when it names none."""
    ref = rec.get("tensors") if isinstance(rec, dict) else None
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
        return None
    return json_path.parent / Path(ref["file"]).name


def check_schema(json_path: Path, rec: Any, schema: str, what: str) -> None:
    """Refuse a record ``rec`` (read from ``json_path``) that is not of ``schema``."""
    got = rec.get("schema") if isinstance(rec, dict) else None
    family = schema.split("/", 1)[0]
    if not isinstance(got, str) or not got.startswith(family + "/"):
        raise InputError(
            f"{json_path} is not a saved {what}: its schema is {got!r}, expected {schema!r}. "
            f"{_fix(what)}"
        )
    if got != schema:
        raise InputError(
            f"{json_path} has schema {got!r}, but this version of hoodwink reads {schema!r}. "
            "Records written by to_dict() before version 2 hold no tensors; run the attack "
            "again and save it with save()."
        )


def read_tensors(json_path: Path, rec: dict[str, Any], what: str) -> dict[str, torch.Tensor]:
    """The tensors of the file the record ``rec`` (read from ``json_path``) names, checked."""
    ref = rec.get("tensors")
    if (not isinstance(ref, dict) or not isinstance(ref.get("file"), str)
            or not isinstance(ref.get("sha256"), str)):
        raise InputError(
            f"{json_path} names no tensor file (no 'tensors' entry with 'file' and 'sha256'); "
            f"it was not written by {what}.save(). {_fix(what)}"
        )
    tensor_path = json_path.parent / Path(ref["file"]).name
    if not tensor_path.is_file():
        raise InputError(
            f"The tensor file {tensor_path} named by {json_path} does not exist. Keep the "
            ".safetensors file beside the .json file, with the name save() gave it."
        )
    try:
        data = tensor_path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {tensor_path}: {exc.strerror or exc}.") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref["sha256"]:
        raise InputError(
            f"The tensor file {tensor_path} has sha256 {digest}, but {json_path} expects "
            f"{ref['sha256']}: it was changed, or belongs to another result. Save the "
            "result again."
        )
    st = _safetensors(f"{what}.load()")
    try:
        tensors: dict[str, torch.Tensor] = st.load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{tensor_path} is not a readable safetensors file ({exc}).") from exc
    return tensors


def _fix(what: str) -> str:
    return f"Pass the .json file that {what}.save() returned."


def read_pair(path: str | Path, schema: str,
               what: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """Read and check a JSON record of ``schema`` and the tensor file it names."""
    json_path = _json_path(path, what)
    if not json_path.is_file():
        raise InputError(
            f"No saved {what} at {json_path}: the file does not exist. {_fix(what)}")
    rec = read_json(json_path, _fix(what))
    check_schema(json_path, rec, schema, what)
    return rec, read_tensors(json_path, rec, what), json_path

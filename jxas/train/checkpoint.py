"""Checkpoints of a training state: msgpack (flax.serialization) written atomically.

A checkpoint is ``<dir>/ckpt_<epoch:06d>.msgpack``, plus ``<dir>/latest`` naming the newest one. Files
are written to a temporary name and renamed, so an interrupted write never leaves a corrupt
checkpoint behind; restoring needs a *target* pytree of the same structure (the freshly initialised
state), which ``flax.serialization.from_bytes`` fills with the stored arrays bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flax import serialization

__all__ = ["save_checkpoint", "restore_checkpoint", "latest_checkpoint"]


def save_checkpoint(directory: str | os.PathLike, epoch: int, state: Any, *, keep: int = 2) -> Path:
    """Write ``state`` (any pytree of arrays/scalars/dicts/NamedTuples) as the checkpoint of ``epoch``.

    Older checkpoints beyond the newest ``keep`` are removed.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"ckpt_{epoch:06d}.msgpack"
    tmp = path.with_suffix(".ckpt.tmp")
    tmp.write_bytes(serialization.to_bytes(state))
    os.replace(tmp, path)
    latest_tmp = d / "latest.ckpt.tmp"
    latest_tmp.write_text(path.name)
    os.replace(latest_tmp, d / "latest")
    for old in sorted(d.glob("ckpt_*.msgpack"))[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """Path of the newest checkpoint in ``directory``, or None if there is none."""
    d = Path(directory)
    marker = d / "latest"
    if marker.exists():
        path = d / marker.read_text().strip()
        if path.exists():
            return path
    found = sorted(d.glob("ckpt_*.msgpack")) if d.is_dir() else []
    return found[-1] if found else None


def restore_checkpoint(path: str | os.PathLike, target: Any) -> Any:
    """Read the checkpoint at ``path`` into a pytree shaped like ``target``.

    Raises:
        ValueError: the file is not a checkpoint of a state with ``target``'s structure.
    """
    path = Path(path)
    try:
        return serialization.from_bytes(target, path.read_bytes())
    except Exception as e:  # msgpack / structure mismatch errors come in several types
        raise ValueError(f"{path}: cannot restore checkpoint into this training state ({type(e).__name__}: {e})") from e

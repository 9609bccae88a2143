"""Shipped pretrained models (``jxas/pretrained/<name>/``) and :func:`load_model`.

Names are ``<element>-<edge>`` in lower case ("cu-k", "fe-k"), optionally with a suffix
("fe-k-e3nn"). A plain name without its own folder resolves to the suffixed folder whose config has
``"default": true``, or to the only one. A path to a saved directory loads that directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jxas.models.model import Model

__all__ = ["load_model", "available_models", "pretrained_dir", "resolve_model"]


def pretrained_dir() -> Path:
    """Folder of the shipped models inside the installed package."""
    return Path(__file__).resolve().parents[1] / "pretrained"


FORWARD_KINDS = ("mlp", "e3nn")


def _kind(d: Path) -> str | None:
    try:
        return json.loads((d / "config.json").read_text()).get("kind")
    except (OSError, ValueError):
        return None


def available_models() -> list[str]:
    """Names of the shipped forward models (folders of ``jxas/pretrained`` whose config kind is mlp/e3nn).

    Other folders there (e.g. the inverse models of :mod:`jxas.inverse`) are not forward models.
    """
    root = pretrained_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file() and _kind(p) in FORWARD_KINDS)


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """Directory of a model given by shipped name or path; raises ``ValueError`` naming the choices."""
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return p
    if p.exists():
        raise FileNotFoundError(f"{p}: not a saved jxas model (no config.json)")
    name = str(name_or_path).strip().lower()
    shipped = available_models()
    if name in shipped:
        return pretrained_dir() / name
    candidates = [m for m in shipped if m.startswith(name + "-")]
    if len(candidates) == 1:
        return pretrained_dir() / candidates[0]
    defaults = [m for m in candidates if json.loads((pretrained_dir() / m / "config.json").read_text()).get("default")]
    if len(defaults) == 1:
        return pretrained_dir() / defaults[0]
    if candidates:
        raise ValueError(f"model name {name!r} is ambiguous: {candidates}; pick one")
    raise ValueError(
        f"no shipped model {name!r} and no saved model directory at {p}; shipped models: {shipped or 'none'}"
    )


def load_model(name_or_path: str | os.PathLike) -> Model:
    """Load a shipped model by name (``"cu-k"``, ``"fe-k"``, ...) or a directory saved with ``Model.save``."""
    d = resolve_model(name_or_path)
    kind = _kind(d)
    if kind not in FORWARD_KINDS:
        raise ValueError(f"{d}: a {kind!r} model, not a forward (structure -> spectrum) model")
    return Model.load(d, name=d.name)

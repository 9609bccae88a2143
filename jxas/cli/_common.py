"""Helpers shared by the sub-commands (underscore module: not a command itself)."""

from __future__ import annotations

import os
from pathlib import Path


def enable_compilation_cache() -> None:
    """Persist XLA compilations across runs (refinement and sweep steps take seconds to compile).

    The cache lives in ``$XDG_CACHE_HOME/jxas/xla`` (default ``~/.cache/jxas/xla``); set
    ``JXAS_NO_COMPILATION_CACHE=1`` to turn it off. An unwritable location silently disables it.
    """
    import jax

    if os.environ.get("JXAS_NO_COMPILATION_CACHE") or jax.config.jax_compilation_cache_dir:
        return
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jxas" / "xla"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except OSError:
        pass

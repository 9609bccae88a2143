"""Test configuration: float64 and NaN debugging for unit tests, shared tolerances and fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_debug_nans", True)

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# One table of tolerances for the whole suite (STYLE.md section 10).
TOL = {
    "formula_rtol": 1e-6,  # descriptor/physics values vs an independent NumPy evaluation
    "formula_atol": 1e-10,
    "grad_rtol": 1e-5,  # check_grads in float64
    "grad_atol": 1e-5,
    "invariance_rtol": 1e-9,
    "batch_rtol": 1e-10,
}


@pytest.fixture
def tol():
    return TOL


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("JXAS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set JXAS_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

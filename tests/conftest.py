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


def random_cluster(rng, n: int, *, absorber_z: int, neighbours, r_max: float):
    """A random cluster: the absorber plus ``n - 1`` atoms of ``neighbours`` 1.8-``r_max`` Å from it, shifted."""
    from jxas.structure import Structure

    pos = rng.normal(size=(n, 3))
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    pos *= rng.uniform(1.8, r_max, size=(n, 1))
    pos[0] = 0.0
    pos += rng.normal(size=3)
    num = rng.choice(list(neighbours), size=n)
    num[0] = absorber_z
    return Structure.from_arrays(pos, num)


def assert_absorber_invariant(f, s, rng, *, pad_to: int, rtol: float = TOL["invariance_rtol"]) -> None:
    """``f(structure)`` is unchanged by a rotation + translation, a permutation of the non-absorber atoms
    (absorber kept first) and padding to ``pad_to`` slots (a reusable invariance assert)."""
    from jxas.structure import Structure, pad

    ref = np.asarray(f(s))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    perm = np.concatenate([[0], 1 + rng.permutation(len(s.numbers) - 1)])
    moved = s.replace(positions=s.positions @ q.T + 3.0)
    permuted = Structure.from_arrays(np.asarray(s.positions)[perm], np.asarray(s.numbers)[perm], absorber=0)
    for other in (moved, permuted, pad(s, pad_to)):
        np.testing.assert_allclose(np.asarray(f(other)), ref, rtol=rtol, atol=1e-12)


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

"""xTB as a differentiable JAX function: real xtb-python runs on small molecules."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jxas.physics import XTBError, is_xtb_failure, xtb_energy, xtb_energy_and_gradient
from jxas.physics.xtb import HARTREE_EV
from jxas.structure import Structure

pytestmark = pytest.mark.xtb

# water, experimental-like geometry (Å)
WATER_POS = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
WATER_Z = np.array([8, 1, 1])
# Ni(CO)4, tetrahedral, Ni-C 1.83 Å, C-O 1.15 Å
_T = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
NICO4_POS = np.concatenate([np.zeros((1, 3)), 1.83 * _T, 2.98 * _T])
NICO4_Z = np.array([28, 6, 6, 6, 6, 8, 8, 8, 8])


def _fd_grad(f, x, h=2e-3):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = h
        g[idx] = (f(x + d) - f(x - d)) / (2 * h)
    return g


# Largest |analytic - finite difference| allowed, as a fraction of max |gradient|. GFN-FF's analytic
# gradient matches its energy to 1e-4; xtb-python's GFN1/GFN2 gradients were measured here to differ
# from central differences of their own energies by up to 0.05% / 0.5% of max |gradient| (out-of-plane
# components of a distorted water; independent of the accuracy setting), a property of xTB itself.
FD_REL = {"gfn2": 1e-2, "gfn1": 2e-3, "gfnff": 1e-4}


@pytest.mark.parametrize("method", ["gfn2", "gfn1", "gfnff"])
def test_gradient_matches_finite_differences(method):
    """jax.grad through the custom_vjp equals central differences of the xTB energy itself."""
    pos = WATER_POS + np.array([[0.0, 0.02, 0.0], [0.01, 0.0, 0.03], [0.0, -0.02, 0.01]])

    def e_host(x):
        return xtb_energy_and_gradient(x, WATER_Z, method=method, accuracy=0.01)[0]

    fd = _fd_grad(e_host, pos)
    g = jax.grad(lambda x: xtb_energy(x, WATER_Z, method=method, accuracy=0.01))(jnp.asarray(pos))
    np.testing.assert_allclose(np.asarray(g), fd, atol=FD_REL[method] * np.abs(fd).max(), rtol=0)
    assert np.abs(fd).max() > 0.05  # a geometry away from the minimum: the comparison is not vacuous


def test_transition_metal_complex_units_and_jit():
    """Ni(CO)4 with GFN2-xTB: eV units (vs Hartree), jit gives the same value as eager, gradient finite."""
    e_host, g_host = xtb_energy_and_gradient(NICO4_POS, NICO4_Z, method="gfn2")
    from xtb.interface import Calculator, Param

    calc = Calculator(Param.GFN2xTB, NICO4_Z, NICO4_POS / 0.529177210903)
    from xtb.libxtb import VERBOSITY_MUTED

    calc.set_verbosity(VERBOSITY_MUTED)
    np.testing.assert_allclose(e_host, calc.singlepoint().get_energy() * HARTREE_EV, rtol=1e-9)
    f = jax.jit(jax.value_and_grad(lambda x: xtb_energy(x, NICO4_Z, method="gfn2")))
    e, g = f(jnp.asarray(NICO4_POS))
    np.testing.assert_allclose(float(e), e_host, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(g), g_host, atol=1e-8)
    # translation invariance of the energy
    e2 = xtb_energy(jnp.asarray(NICO4_POS + 1.7), NICO4_Z, method="gfn2")
    np.testing.assert_allclose(float(e2), e_host, atol=1e-6)


def test_vmap_equals_loop_and_padding():
    """vmap (sequential callbacks) equals a Python loop; padded slots are excluded and get zero gradient."""
    batch = np.stack([WATER_POS, WATER_POS * 1.02, WATER_POS * 0.98])
    loop = [float(xtb_energy(jnp.asarray(p), WATER_Z, method="gfnff")) for p in batch]
    vm = jax.vmap(lambda p: xtb_energy(p, WATER_Z, method="gfnff"))(jnp.asarray(batch))
    np.testing.assert_allclose(np.asarray(vm), loop, rtol=1e-12)
    s = Structure.from_arrays(
        np.concatenate([WATER_POS, np.zeros((2, 3))]), np.array([8, 1, 1, 0, 0]), mask=[True, True, True, False, False]
    )
    e_pad, g_pad = jax.value_and_grad(lambda p: xtb_energy(p, s.numbers, mask=s.mask, method="gfnff"))(s.positions)
    np.testing.assert_allclose(float(e_pad), loop[0], rtol=1e-12)
    assert np.all(np.asarray(g_pad)[3:] == 0)


def test_output_is_silenced(capfd):
    xtb_energy_and_gradient(NICO4_POS * 1.01, NICO4_Z, method="gfnff")
    xtb_energy_and_gradient(WATER_POS * 1.01, WATER_Z, method="gfn2")
    out, _ = capfd.readouterr()
    assert out == ""


def test_gfnff_leaves_no_files_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a fresh molecule (new calculator: GFN-FF sets up and writes its topology) and a repeated one
    e1, _ = xtb_energy_and_gradient(NICO4_POS * 1.013, NICO4_Z, method="gfnff")
    e2, _ = xtb_energy_and_gradient(NICO4_POS * 1.013, NICO4_Z, method="gfnff")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert e1 == pytest.approx(e2, abs=1e-9)
    assert Path.cwd() == tmp_path


def test_scf_failure_raises_clear_error():
    """An SCF that cannot converge raises XTBError (host) / a recognisable error under jit; never NaN."""
    with pytest.raises(XTBError, match="did not converge|failed"):
        xtb_energy_and_gradient(NICO4_POS, NICO4_Z, method="gfn2", max_iterations=2)
    with pytest.raises(Exception) as info:
        jax.jit(lambda p: xtb_energy(p, NICO4_Z, method="gfn2", max_iterations=2))(
            jnp.asarray(NICO4_POS)
        ).block_until_ready()
    assert is_xtb_failure(info.value)
    # after a failure the cached calculator is dropped: a normal call works again
    e, _ = xtb_energy_and_gradient(NICO4_POS, NICO4_Z, method="gfn2")
    assert np.isfinite(e)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown xTB method"):
        xtb_energy(jnp.asarray(WATER_POS), WATER_Z, method="gfn9")
    with pytest.raises(ValueError, match="non-finite"):
        xtb_energy_and_gradient(WATER_POS * np.nan, WATER_Z)

"""Execute notebooks/forward_models.ipynb end to end (real FEFF10 run on Fe(CO)5, tiny training)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "forward_models.ipynb"


@pytest.mark.feff
def test_forward_models_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "FEFF10:" in outputs and "training MSE" in outputs
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # the tiny training really reduced the training loss
    line = next(ln for ln in outputs.splitlines() if ln.startswith("training MSE"))
    first, best = (float(x.split()[-1]) for x in line.split(":", 1)[1].split(","))
    assert best < 0.5 * first

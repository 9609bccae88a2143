"""One training file from several datasets of the same element, edge, recipe and grid.

Molecular complexes and crystalline sites are generated into separate files (their campaigns, cards
and resumption are separate); a model that should know both trains on their union.
:func:`merge_datasets` copies every entry (structure, spectrum, raw grid, key, group, split,
oxidation state, provenance with the source file added) and every recorded failure into a new file,
written under a temporary name and moved into place only when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jxas.data.dataset import Dataset, write_data_card

__all__ = ["merge_datasets"]


def merge_datasets(
    inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False, chunk: int = 256
) -> Dataset:
    """Write the union of ``inputs`` to ``out`` and return it (with a data card next to it).

    Args:
        inputs: two or more dataset files of the same element, edge, recipe and energy grid.
        out: the new file (``.h5``).
        overwrite: replace an existing ``out``.
        chunk: entries copied per read.

    Raises:
        ValueError: fewer than two inputs, inputs that differ in element/edge/recipe/grid, a key that
            appears in two inputs, or ``out`` among the inputs.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    from jxas.structure import unstack

    paths = [Path(p) for p in inputs]
    out = Path(out)
    if len(paths) < 2:
        raise ValueError(f"merge needs at least two datasets, got {len(paths)}")
    if out.resolve() in {p.resolve() for p in paths}:
        raise ValueError(f"{out} is one of the inputs; write the merge to a new file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite to replace it)")
    dss = [Dataset(p) for p in paths]
    first = dss[0]
    for ds in dss[1:]:
        problems = []
        if (ds.element, ds.edge) != (first.element, first.edge):
            problems.append(f"{ds.element} {ds.edge}-edge vs {first.element} {first.edge}-edge")
        if ds.recipe != first.recipe:
            problems.append("different simulation recipes")
        if ds.energy.shape != first.energy.shape or not np.allclose(ds.energy, first.energy):
            problems.append("different energy grids")
        if problems:
            raise ValueError(f"cannot merge {ds.path.name} into {first.path.name}: {'; '.join(problems)}")
    keys = np.concatenate([np.asarray(ds.keys) for ds in dss])
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"keys present in more than one input, e.g. {uniq[counts > 1][:3].tolist()}")

    tmp = out.with_name(out.name + ".creating")
    tmp.unlink(missing_ok=True)
    merged = Dataset.create(tmp, element=first.element, edge=first.edge, energy=first.energy, recipe=first.recipe,
                            n_max=max(ds.n_max for ds in dss))
    try:
        for ds in dss:
            for lo in range(0, len(ds), chunk):
                idx = np.arange(lo, min(lo + chunk, len(ds)))
                mu = ds.spectra(idx)
                entries = []
                for j, (i, s) in enumerate(zip(idx, unstack(ds.structures(idx)), strict=True)):
                    raw_e, raw_mu = ds.raw(int(i))
                    prov = ds.provenance(int(i))
                    prov = dict(prov) if isinstance(prov, dict) else {"provenance": prov}
                    prov["merged_from"] = ds.path.name
                    entries.append({
                        "structure": s, "mu": mu[j], "raw_energy": raw_e, "raw_mu": raw_mu,
                        "key": str(ds.keys[i]), "group": str(ds.groups[i]), "split": str(ds.splits[i]),
                        "oxidation_state": int(ds.oxidation_states[i]), "provenance": prov,
                    })
                merged.append(entries)
            for fail in ds.failures:
                merged.append_failure(fail["key"], fail["reason"], {"merged_from": ds.path.name,
                                                                    "provenance": fail.get("provenance")})
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    merged = Dataset(out)
    counts_by_file = {ds.path.name: len(ds) for ds in dss}
    write_data_card(merged, sections={
        "How it was built": (
            "The union of "
            + ", ".join(f"`{name}` ({n} entries)" for name, n in counts_by_file.items())
            + " made with `jxas.data.merge_datasets` (`jxas dataset merge`); every entry's provenance names "
            "its source file under `merged_from`. See the sources' data cards for how each was generated."
        ),
        "How to regenerate": "```bash\njxas dataset merge " + " ".join(str(p) for p in paths) + f" -o {out}\n```",
        "Sources": "```json\n" + json.dumps({ds.path.name: ds.info()["n_entries"] for ds in dss}, indent=1) + "\n```",
    })
    return merged

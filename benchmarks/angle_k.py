"""Bond-angle block restricted to the k nearest atoms (``eradial`` ``angle_k``): how many atoms sit inside the
angle cutoff in a dataset, whether a model with ``angle_k`` predicts the same spectra, and its batched speed
against the all-pairs block, both measured in the same run.

Usage (from the repository root; the model is any eradial model with ``n_angle > 0``):
    python benchmarks/angle_k.py --model runs/fe3/final_angle3/model --dataset datasets/fe-k-feff10-default.h5
"""

from __future__ import annotations

import argparse
import copy
import time

import jax
import numpy as np

from jxas.data import Dataset
from jxas.models.model import Model
from jxas.models.registry import load_model
from jxas.structure import Structure, pad, stack, unstack


def _trim(s, n):
    k = int(np.asarray(s.mask).sum())
    real = Structure.from_arrays(np.asarray(s.positions)[:k], np.asarray(s.numbers)[:k], absorber=int(s.absorber))
    return pad(real, n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", default="datasets/fe-k-feff10-default.h5")
    ap.add_argument("--atoms", type=int, default=50, help="padding of the speed batch")
    ap.add_argument("--batch", type=int, default=4096)
    args = ap.parse_args(argv)
    m = load_model(args.model)
    da = m.config["descriptor_args"]
    if not da.get("n_angle"):
        raise SystemExit(f"{args.model} has no angle block (descriptor_args {da})")
    rc = da.get("angle_cutoff", 3.0)
    ds = Dataset(args.dataset)
    S = ds.structures()
    pos, ab, mask = np.asarray(S.positions), np.asarray(S.absorber), np.asarray(S.mask)
    r = np.linalg.norm(pos - pos[np.arange(len(pos)), ab][:, None], axis=-1)
    cnt = ((r > 0) & (r < rc) & mask).sum(1)
    k = int(cnt.max()) + 2
    print(f"atoms inside the {rc} Å angle cutoff: max {cnt.max()}, 99th percentile {np.percentile(cnt, 99):.0f}; "
          f"angle_k = {k}")
    cfg = copy.deepcopy(m.config)
    cfg["descriptor_args"] = {**da, "angle_k": k}
    mk = Model(config=cfg, params=m.params, name=f"{m.name} angle_k={k}")
    idx = np.arange(0, len(ds), max(1, len(ds) // 200))[:200]
    sub = ds.structures(idx)
    diff = np.abs(np.asarray(m.predict_batch(sub).mu) - np.asarray(mk.predict_batch(sub).mu))
    print(f"largest |difference| of the predicted mu over {len(idx)} entries: {diff.max():.2e}")
    small = [s for s in unstack(S) if int(np.asarray(s.mask).sum()) <= args.atoms][: args.batch]
    batch = stack([_trim(s, args.atoms) for s in small])
    speeds = {}
    for name, model in (("all pairs", m), (f"angle_k={k}", mk)):
        f = jax.jit(jax.vmap(lambda s, model=model: model.apply(model.params, s)))
        f(batch).block_until_ready()
        best = min(_timed(f, batch) for _ in range(3))
        speeds[name] = len(small) / best
        print(f"{name}: {speeds[name]:,.0f} spectra/s (batch {len(small)}, padded to {args.atoms} atoms)")
    print(f"ratio: {speeds[f'angle_k={k}'] / speeds['all pairs']:.2f}x")
    return 0


def _timed(f, batch) -> float:
    t = time.perf_counter()
    f(batch).block_until_ready()
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())

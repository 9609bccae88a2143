"""Refinement benchmark (issue 6): synthetic recovery, crystalline references, timings.

(a) synthetic recovery on held-out molecular Fe environments of the Fe FEFF10 dataset: target = the
    FEFF10 spectrum of the true structure, arctan-broadened; start = every first-shell ligand moved
    rigidly along its bond by +-U(0.1, 0.2) Å; refine with the model, with and without an energy term;
    report the median |r_refined - r_true| over first-shell bonds. With ``--floor`` also the *model
    floor*: the same refinement (no energy term) started AT the true structure; how far it drifts is
    the error the forward model's own inaccuracy imposes, whatever the start.
(b) crystalline references with measured spectra and CIFs: clusters scaled by +-3 %; a sweep of the
    isotropic scale and a first-shell refinement against the measured spectrum; error of the mean
    first-shell distance vs the CIF. ``--minerals`` adds 14 Fe minerals with one distinct Fe site
    (oxides, silicates, carbonate, spinels, sulfides) and their measured spectra from ../shared.
(c) timings: 200 steps on a ~50-atom complex with model + restraints, with GFN-FF, with GFN2-xTB (after
    compilation), and a 10,000-point (100 x 100) sweep with an e3nn model.

Usage (from the repository root):
    nice -n 10 python benchmarks/refine.py --parts a b c --model fe-k --out benchmarks/results/refine.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _cache():
    import jax

    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jxas" / "xla"
    d.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(d))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def heldout_indices(ds, model, n: int, seed: int, keys_file: str | None = None) -> tuple[np.ndarray, str]:
    """Entries of groups the model did not train on, if its config records them; else a group split.
    With ``keys_file``, the entries whose keys it lists (e.g. a model's validation complexes, to choose
    settings such as lambda without touching its test complexes)."""
    from jxas.train import group_split

    groups = np.asarray(ds.groups)
    keys = np.asarray(ds.keys)
    if keys_file:
        want = Path(keys_file).read_text().split()
        sel = np.flatnonzero(np.isin(keys, want))
        if not len(sel):
            raise SystemExit(f"none of the keys in {keys_file} is in {ds.path}")
        return sel[:n], f"keys listed in {keys_file}"
    cfg = getattr(model, "config", {}) or {}
    split = dict(cfg.get("split") or cfg.get("data_split") or {})
    if cfg.get("test_groups"):
        split.setdefault("test_groups", cfg["test_groups"])
    for name in ("test_groups", "heldout_groups", "test"):
        if name in split:
            sel = np.flatnonzero(np.isin(groups, split[name]) | np.isin(keys, split[name]))
            if len(sel):
                return sel[:n], f"model config split[{name!r}]"
    train_groups = split.get("train_groups")
    if train_groups:
        sel = np.flatnonzero(~np.isin(groups, train_groups))
        return sel[:n], "groups absent from the model config's train_groups"
    parts = group_split(groups, (0.8, 0.1, 0.1), seed=seed)
    sel = np.concatenate([parts[2], parts[1]])
    return sel[:n], f"group_split((0.8, 0.1, 0.1), seed={seed}) test+val parts (model split not recorded)"


def part_a(
    model, ds_path: Path, n: int, steps: int, seed: int, energies: list[str], partial: Path | None = None,
    floor: bool = False, lam: float | None = None, keys_file: str | None = None,
) -> dict:
    import jax

    import jxas
    from jxas.data import Dataset
    from jxas.physics import first_shell
    from jxas.spectrum.broaden import broaden
    from jxas.spectrum.grids import edge_energy
    from jxas.spectrum.spectrum import Spectrum
    from jxas.structure import unstack
    from jxas.sweep import make_move

    ds = Dataset(ds_path)
    idx, how = heldout_indices(ds, model, n, seed, keys_file)
    rng = np.random.default_rng(seed)
    e = np.asarray(ds.energy)
    rows = []
    for i in idx:
        s_true = unstack(ds.structures([int(i)]))[0]
        mu = np.asarray(ds.spectra([int(i)]))[0]
        target = Spectrum(
            energy=e,
            mu=np.asarray(broaden(e, mu, e_edge=edge_energy("Fe"))),
            meta={"element": "Fe", "quantity": "norm"},
        )
        ab = int(s_true.absorber)
        shell = first_shell(s_true)
        start = s_true
        moved = set()
        for j in shell:  # move each ligand once (chelates move rigidly with their first donor)
            mv = make_move("bond", s_true, atom=int(j))
            frag_key = tuple(
                sorted(np.flatnonzero(np.abs(np.asarray(mv(start, 1.0).positions - start.positions)).sum(1) > 0))
            )
            if frag_key in moved:
                continue
            moved.add(frag_key)
            start = mv(start, float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.2)))
        p_true = np.asarray(s_true.positions)
        r_true = np.linalg.norm(p_true[shell] - p_true[ab], axis=1)
        p0 = np.asarray(start.positions)
        r0 = np.linalg.norm(p0[shell] - p0[ab], axis=1)
        row = {
            "index": int(i),
            "key": str(ds.keys[int(i)]),
            "n_atoms": int(np.asarray(s_true.mask).sum()),
            "r_true": r_true.tolist(),
            "err_start": np.abs(r0 - r_true).tolist(),
        }
        runs = [(en, start, en) for en in energies] + ([("floor", s_true, "none")] if floor else [])
        for en, s0, energy in runs:
            t = time.perf_counter()
            try:
                res = jxas.refine(s0, target, model=model, energy=energy, steps=steps, uncertainty=False, lam=lam)
            except Exception as exc:  # noqa: BLE001 - a benchmark records failures and goes on
                row[en] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            p = np.asarray(res.structure.positions)
            r = np.linalg.norm(p[shell] - p[ab], axis=1)
            row[en] = {
                "err": np.abs(r - r_true).tolist(),
                "status": res.status,
                "seconds": time.perf_counter() - t,
                "mse_after": res.fit["mse_after"],
                "mse_before": res.fit["mse_before"],
            }
        rows.append(row)
        if partial is not None:  # keep what has been measured if the run is cut short
            partial.write_text(json.dumps({"selection": how, "rows": rows}, default=float))
        print(
            f"  entry {i} ({row['n_atoms']} atoms): start err {np.median(row['err_start']):.3f} Å; "
            + "; ".join(f"{en} {np.median(row[en]['err']):.3f} Å" for en, _, _ in runs if "err" in row[en]),
            flush=True,
        )
    summary = {"selection": how, "n_entries": len(rows), "steps": steps, "lam": lam}
    allstart = np.concatenate([r["err_start"] for r in rows]) if rows else np.zeros(0)
    summary["median_err_start"] = float(np.median(allstart)) if len(allstart) else None
    for en in energies + (["floor"] if floor else []):
        errs = [r[en]["err"] for r in rows if "err" in r.get(en, {})]
        summary[f"median_err_{en}"] = float(np.median(np.concatenate(errs))) if errs else None
        summary[f"n_ok_{en}"] = len(errs)
    jax.clear_caches()
    return {"summary": summary, "rows": rows}


CRYSTALS = {
    # name: (CIF, measured spectrum, element)
    "FeO (wustite)": ("examples/Wustite_amcsd18048.cif", "examples/feo_wustite_larch_rt1.txt", "Fe"),
    "Fe2O3 (hematite)": (
        str(SHARED / "structures/cifs/Hematite_amcsd17731.cif"),
        str(SHARED / "experimental/spectra/larch_fe2o3_rt1.txt"),
        "Fe",
    ),
    "Cu (foil, fcc)": (
        str(SHARED / "structures/cifs/Copper_amcsd13088.cif"),
        str(SHARED / "experimental/spectra/larch_cu_metal_rt.txt"),
        "Cu",
    ),
    "Fe (foil, bcc)": (
        str(SHARED / "structures/cifs/Iron_amcsd12931.cif"),
        str(SHARED / "experimental/spectra/xasref_Fe_foil_Fe_K.txt"),
        "Fe",
    ),
}


_MINERALS = {
    # Fe minerals with ONE distinct Fe site (a measured spectrum of a multi-site mineral averages
    # different sites, which a one-absorber refinement cannot represent): name: (AMCSD CIF, spectrum)
    "goethite": ("Goethite_amcsd16643", "femin_Goethite_FeXANES"),
    "lepidocrocite": ("Lepidocrocite_amcsd17984", "larch_Feprj_Lepidocrocite"),
    "hedenbergite": ("Hedenbergite_amcsd6816", "femin_Hedenbergite_FeXANES_powder_avg"),
    "siderite": ("Siderite_amcsd17561", "femin_Siderite_FeXANES_ITFA0"),
    "ilmenite": ("Ilmenite_amcsd8580", "femin_ilmenite_FeXANES_generic"),
    "hercynite": ("Hercynite_amcsd2048", "femin_Hercynite_Waychunas_FeXANES"),
    "almandine": ("Almandine_amcsd7901", "femin_Almandine_Waychunas_FeXANES"),
    "andradite": ("Andradite_amcsd1252", "femin_Andradite_FeXANES"),
    "aegirine": ("Aegirine_amcsd4448", "femin_Aegirine_FeXANES_powder_avg"),
    "chromite": ("Chromite_amcsd8918", "femin_Chromite_Nico_FeXANES"),
    "pyrite": ("Pyrite_amcsd17728", "femin_lib_Pyrite"),
    "troilite": ("Troilite_amcsd18055", "larch_FeALS_Troilite"),
    "cubanite": ("Cubanite_amcsd10720", "femin_Cubanite_FeXANES_powder_avg"),
    "pentlandite": ("Pentlandite_amcsd4226", "larch_FeALS_Pentlandite"),
}
FE_MINERALS = {
    name: (str(SHARED / f"structures/cifs/{cif}.cif"), str(SHARED / f"experimental/spectra/{spec}.txt"), "Fe")
    for name, (cif, spec) in _MINERALS.items()
}


def summarise_b(out: dict) -> dict:
    """Median |error| of the mean first-shell distance over the references, per start and method."""
    summ = {}
    for start in ("-3%", "+3%"):
        for how in ("sweep", "refined"):
            errs = [abs(r[start][f"err_{how}"]) for r in out.values() if start in r]
            if errs:
                summ[f"median_abs_err_{how}_{start}"] = float(np.median(errs))
                summ[f"n_{how}_{start}"] = len(errs)
    return summ


def part_b(models: dict, steps: int, cutoff: float, crystals: dict | None = None) -> dict:
    import jxas
    from jxas.data.build.crystal import crystal_sites
    from jxas.io.spectra import read_spectrum
    from jxas.physics import first_shell
    from jxas.sweep import make_move, sweep

    out = {}
    for name, (cif, spec, el) in (crystals or CRYSTALS).items():
        model = models.get(el)
        if model is None or not Path(cif).exists() or not Path(spec).exists():
            out[name] = {"skipped": "no model / CIF / spectrum"}
            print(f"  {name}: skipped ({out[name]['skipped']})")
            continue
        try:
            site = crystal_sites(cif, el)[0]  # the (first distinct) site of the absorbing element
            s = jxas.read_structure(cif, absorber=site, cutoff=cutoff, element=el)
        except Exception as exc:  # noqa: BLE001
            out[name] = {"skipped": f"CIF: {exc}"}
            print(f"  {name}: skipped ({out[name]['skipped']})")
            continue
        target = read_spectrum(spec)
        ab = int(s.absorber)
        shell = first_shell(s)
        p = np.asarray(s.positions)
        r_cif = float(np.mean(np.linalg.norm(p[shell] - p[ab], axis=1)))
        try:
            domain_warnings = model.check(s)
        except ValueError as exc:  # e.g. elements the model never saw: recorded, not refined
            out[name] = {"skipped": f"model: {exc}"}
            print(f"  {name}: skipped ({out[name]['skipped']})")
            continue
        res_c = {"r_cif": r_cif, "n_first_shell": len(shell), "domain_warnings": domain_warnings}
        for f in (-0.03, 0.03):
            start = make_move("scale", s)(s, f)
            sw = sweep(start, target, model=model, moves=[("scale", np.linspace(-0.08, 0.08, 65))])
            ref = jxas.refine(
                start, target, model=model, energy="none", movable="first_shell", steps=steps, uncertainty=False
            )
            pr = np.asarray(ref.structure.positions)
            r_ref = float(np.mean(np.linalg.norm(pr[shell] - pr[ab], axis=1)))
            res_c[f"{f:+.0%}"] = {
                "r_start": r_cif * (1 + f),
                "r_sweep_min": sw.min_coordinate[0],
                "err_sweep": sw.min_coordinate[0] - r_cif,
                "r_refined": r_ref,
                "err_refined": r_ref - r_cif,
                "status": ref.status,
                "mse_after": ref.fit["mse_after"],
                "shift_ev": ref.nuisance["shift_ev"],
            }
            print(
                f"  {name} start {f:+.0%}: sweep min {sw.min_coordinate[0]:.3f}, refined {r_ref:.3f}, "
                f"CIF {r_cif:.3f} Å",
                flush=True,
            )
        out[name] = res_c
    return out


def part_c(model, ds_path: Path, e3nn_model, steps: int) -> dict:
    import jxas
    from jxas.data import Dataset
    from jxas.refine.loop import LoopConfig
    from jxas.spectrum.broaden import broaden
    from jxas.spectrum.grids import edge_energy
    from jxas.spectrum.spectrum import Spectrum
    from jxas.structure import unstack
    from jxas.sweep import make_move, sweep

    ds = Dataset(ds_path)
    n_atoms = np.asarray(ds.structures().mask).sum(1)
    i = int(np.argmin(np.abs(n_atoms - 50)))
    s = unstack(ds.structures([i]))[0]
    e = np.asarray(ds.energy)
    target = Spectrum(
        energy=e,
        mu=np.asarray(broaden(e, np.asarray(ds.spectra([i]))[0], e_edge=edge_energy("Fe"))),
        meta={"element": "Fe", "quantity": "norm"},
    )
    start = make_move("shell", s)(s, 0.1)
    out = {"complex": {"index": i, "n_atoms": int(n_atoms[i]), "key": str(ds.keys[i])}, "steps": steps}
    for en in ("restraints", "gfnff", "gfn2"):
        marks = {}

        def hook(k, row, marks=marks):
            if k == 0:
                marks["t0"] = time.perf_counter()
            marks["t1"] = time.perf_counter()
            marks["n"] = k

        t = time.perf_counter()
        res = jxas.refine(
            start,
            target,
            model=model,
            energy=en,
            steps=steps,
            uncertainty=False,
            on_step=hook,
            loop=LoopConfig(steps=steps, patience=10**9),
        )
        total = time.perf_counter() - t
        after = marks["t1"] - marks["t0"]
        out[en] = {
            "seconds_total": total,
            "seconds_after_compile": after,
            "steps_timed": marks["n"],
            "status": res.status,
        }
        print(f"  {en}: {marks['n']} steps in {after:.2f} s after compilation ({total:.1f} s total)", flush=True)
    if e3nn_model is not None:
        moves = [("shell", np.linspace(-0.2, 0.2, 100)), ("scale", np.linspace(-0.05, 0.05, 100))]
        for rep in ("first (with compilation)", "second"):
            t = time.perf_counter()
            sw = sweep(s, target, model=e3nn_model, moves=moves, batch_size=500)
            out[f"sweep_e3nn_10000_{rep.split()[0]}"] = time.perf_counter() - t
            print(f"  10,000-point e3nn sweep, {rep}: {time.perf_counter() - t:.1f} s", flush=True)
        out["sweep_e3nn_model"] = getattr(e3nn_model, "name", "")
        del sw
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["a", "b", "c"])
    ap.add_argument("--model", default="fe-k", help="Fe model (name or directory)")
    ap.add_argument("--cu-model", default="cu-k", help="Cu model for the Cu crystals (part b), or 'none'")
    ap.add_argument("--e3nn-model", default="fe-k-e3nn",
                    help="e3nn model for the sweep timing (c): a name, 'random-e3nn' (timing only) or 'none'")
    ap.add_argument("--dataset", default=str(ROOT / "datasets" / "fe-k-feff10-default.h5"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--energies", nargs="+", default=["none", "gfnff"], help="energy terms compared in (a)")
    ap.add_argument("--floor", action="store_true",
                    help="(a): also refine from the true structure (the model floor of the recovery error)")
    ap.add_argument("--minerals", action="store_true",
                    help="(b): also the single-Fe-site minerals with measured spectra in ../shared (FE_MINERALS)")
    ap.add_argument("--cutoff", type=float, default=5.0, help="cluster radius for the CIFs (b), Å")
    ap.add_argument("--lam", type=float, help="(a): weight of the energy term (default jxas.refine's DEFAULT_LAMBDA)")
    ap.add_argument("--keys", help="(a): refine the entries whose keys this file lists instead of held-out ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "refine.json"))
    args = ap.parse_args(argv)
    _cache()
    from jxas.models.registry import load_model

    def load(name):
        if name in (None, "none"):
            return None
        if name == "random-e3nn":  # timing only: the default e3nn architecture with random weights
            import jax

            from jxas.models.config import default_config
            from jxas.models.model import Model

            cfg = default_config("e3nn", "Fe", elements=[1, 6, 7, 8, 15, 16, 17, 26])
            return Model.init(cfg, key=jax.random.key(0), members=1, name="random-e3nn (default architecture)")
        try:
            return load_model(name)
        except Exception as exc:  # noqa: BLE001
            print(f"model {name}: not available ({exc})")
            return None

    model = load(args.model)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results = {
        "command": "python benchmarks/refine.py " + " ".join(argv or os.sys.argv[1:]),
        "model": getattr(model, "name", None),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if "a" in args.parts and model is not None:
        print("(a) synthetic recovery")
        results["a"] = part_a(
            model,
            Path(args.dataset),
            args.n,
            args.steps,
            args.seed,
            args.energies,
            partial=Path(args.out).with_suffix(".partial_a.json"),
            floor=args.floor,
            lam=args.lam,
            keys_file=args.keys,
        )
        print(json.dumps(results["a"]["summary"], indent=1))
    if "b" in args.parts:
        print("(b) crystalline references")
        crystals = {**CRYSTALS, **FE_MINERALS} if args.minerals else CRYSTALS
        results["b"] = part_b({"Fe": model, "Cu": load(args.cu_model)}, args.steps, args.cutoff, crystals)
        results["b_summary"] = {"all": summarise_b(results["b"]),
                                "Fe": summarise_b({k: v for k, v in results["b"].items() if crystals[k][2] == "Fe"})}
        print(json.dumps(results["b_summary"], indent=1))
    if "c" in args.parts and model is not None:
        print("(c) timings")
        results["c"] = part_c(model, Path(args.dataset), load(args.e3nn_model), args.steps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

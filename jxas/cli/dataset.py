"""``jxas dataset info PATH...``: counts per element, edge and recipe, splits and failures of datasets.
``jxas dataset merge A.h5 B.h5 ... -o OUT.h5``: one file from several of the same element, edge, recipe
and grid (e.g. molecular complexes + crystal sites for one training set)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="inspect jxas HDF5 datasets", description=__doc__)
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    info = dsub.add_parser("info", help="counts per element / recipe / split, failures")
    info.add_argument("paths", nargs="+", help="dataset .h5 files")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--debug", action="store_true", help="show tracebacks")
    info.set_defaults(func=run_info)
    merge = dsub.add_parser("merge", help="one dataset from several (same element, edge, recipe, grid)")
    merge.add_argument("paths", nargs="+", help="dataset .h5 files")
    merge.add_argument("-o", "--out", required=True, help="the merged file to write")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    merge.add_argument("--debug", action="store_true", help="show tracebacks")
    merge.set_defaults(func=run_merge)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_info(args: argparse.Namespace) -> int:
    from jxas.data.dataset import Dataset

    infos = [Dataset(path).info() for path in args.paths]
    if args.json:
        print(json.dumps(infos if len(infos) > 1 else infos[0], indent=2))
        return 0
    for info in infos:
        apm = info["atoms_per_entry"] or {}
        e = info["energy"]
        print(f"{info['path']}  ({info['size_bytes'] / 1e6:.1f} MB)")
        print(f"  element/edge : {info['element']} {info['edge']}")
        print(f"  recipe       : {info['recipe_name'] or '(unnamed)'}")
        print(f"  entries      : {info['n_entries']} in {info['n_groups']} groups")
        print(
            f"  failures     : {info['n_failures']}"
            + (
                f" ({info['n_failures'] / max(1, info['n_entries'] + info['n_failures']):.1%})"
                if info["n_failures"]
                else ""
            )
        )
        for reason, count in list(info["failure_reasons"].items())[:8]:
            print(f"      {count:6d} x {reason}")
        print("  splits       : " + ", ".join(f"{k or '(none)'}: {v}" for k, v in info["splits"].items()))
        print("  oxidation    : " + ", ".join(f"{k}: {v}" for k, v in info["oxidation_states"].items()))
        print(
            f"  atoms/entry  : min {apm.get('min')}, median {apm.get('median')}, max {apm.get('max')} "
            f"(n_max {info['n_max']})"
        )
        print(f"  energy grid  : {e['min']:.2f} .. {e['max']:.2f} eV, {e['n']} points, step {e['step']:g} eV")
    if len(infos) > 1:
        total: dict[str, dict[str, int]] = {}
        for info in infos:
            key = f"{info['element']}-{info['edge']} {info['recipe_name']}"
            t = total.setdefault(key, {"entries": 0, "failures": 0})
            t["entries"] += info["n_entries"]
            t["failures"] += info["n_failures"]
        print("totals per element/edge and recipe:")
        for key, t in sorted(total.items()):
            print(f"  {key:40s} {t['entries']:7d} entries {t['failures']:6d} failures")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from jxas.data.merge import merge_datasets

    ds = merge_datasets(args.paths, args.out, overwrite=args.overwrite)
    print(f"{ds.path}: {len(ds)} entries in {len(set(ds.groups.tolist()))} groups, "
          f"{len(ds.failure_keys)} failures recorded (card {ds.path.with_suffix('.md').name})")
    return 0

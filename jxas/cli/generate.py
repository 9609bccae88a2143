"""``jxas generate``: build local environments, run FEFF10 on them, store them in an HDF5 dataset.

Molecular complexes by default (``--n`` of them); with ``--crystals FILE ...`` absorber-centred
clusters of the distinct sites of crystal structures (CIF/POSCAR), scaled and perturbed
(:mod:`jxas.data.build.crystal`). Resumable: run the same command again after an interruption (even
``kill -9``) and it continues with the specs not yet done. Parallel over a process pool
(``--workers``) or a Dask cluster (``--scheduler tcp://host:8786`` or ``--scheduler local``).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate (or resume) a FEFF10 XANES dataset of built local environments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--element", required=True, help="absorbing element, e.g. Fe")
    p.add_argument("--n", type=int, default=None, help="number of molecular environments in the campaign (specs)")
    p.add_argument("--crystals", nargs="+", default=None, metavar="FILE",
                   help="crystal structures (CIF/POSCAR) instead of molecular complexes; FILE:OX gives the "
                   "absorber's formal oxidation state")
    p.add_argument("--variants", type=int, default=12, help="crystals: entries per distinct site (1 undistorted)")
    p.add_argument("--crystal-cutoff", type=float, default=7.0, help="crystals: cluster radius, Å")
    p.add_argument("--out", default=None, help="dataset file (default datasets/<el>-<edge>-<recipe>.h5)")
    p.add_argument("--edge", default="K")
    p.add_argument("--seed", type=int, default=0, help="seed of the (deterministic) spec list")
    p.add_argument("--workers", type=int, default=2, help="worker processes (or LocalCluster workers)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local' for a LocalCluster")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per task before it counts as failed")
    p.add_argument("--retries", type=int, default=1, help="re-runs of a task whose worker died")
    p.add_argument("--retry-failed", action="store_true", help="run the specs recorded as failed again")
    p.add_argument("--recipe", default=None, help="JSON file with FeffRecipe fields (default: the project recipe)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one FeffRecipe field, e.g. --set scf_radius=4.0 (JSON values)",
    )
    p.add_argument("--max-tasks", type=int, default=None, help="stop after this many tasks (timing runs)")
    p.add_argument("--flush-every", type=int, default=20, help="merge finished entries into the file this often")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def _recipe(args):
    from jxas.data.feff import FeffRecipe

    d = json.loads(Path(args.recipe).read_text()) if args.recipe else {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            d[field.strip()] = json.loads(value)
        except json.JSONDecodeError:
            d[field.strip()] = value
    return FeffRecipe.from_dict(d) if d else FeffRecipe()


def _command(args, out: str) -> str:
    """The canonical command line that regenerates (or resumes) this dataset, for its data card."""
    parts = [
        "jxas",
        "generate",
        "--element",
        args.element,
        "--edge",
        args.edge,
        *(["--n", str(args.n)] if args.n is not None else []),
        *(["--crystals", *args.crystals, "--variants", str(args.variants), "--crystal-cutoff",
           f"{args.crystal_cutoff:g}"] if args.crystals else []),
        "--seed",
        str(args.seed),
        "--out",
        out,
        "--workers",
        str(args.workers),
        "--timeout",
        f"{args.timeout:g}",
    ]
    if args.scheduler:
        parts += ["--scheduler", args.scheduler]
    if args.recipe:
        parts += ["--recipe", args.recipe]
    for item in args.set:
        parts += ["--set", item]
    return " ".join(shlex.quote(p) for p in parts)


def _crystal_specs(args):
    from jxas.data.build.crystal import crystal_specs

    paths, ox = [], {}
    for item in args.crystals:
        path, sep, state = item.rpartition(":") if ":" in item else (item, "", "")
        if sep:
            try:
                ox[Path(path).stem] = int(state)
            except ValueError:
                raise ValueError(f"--crystals expects FILE or FILE:OX (integer), got {item!r}") from None
        paths.append(path)
    return crystal_specs(args.element, paths, variants=args.variants, seed=args.seed, cutoff=args.crystal_cutoff,
                         oxidation_states=ox)


def run(args: argparse.Namespace) -> int:
    from jxas.data.runner import generate

    recipe = _recipe(args)
    if (args.n is None) == (args.crystals is None):
        raise ValueError("give either --n (molecular complexes) or --crystals FILE ... (crystal sites)")
    kind = "crystals-" if args.crystals else ""
    out = args.out or f"datasets/{args.element.lower()}-{args.edge.lower()}-{kind}{recipe.name}.h5"
    specs = _crystal_specs(args) if args.crystals else None
    if specs is None:  # molecular campaign: how the builder makes the environments
        from jxas.data.build.campaign import GEOMETRIES, card_sections

        el = args.element.capitalize()  # an element the builder lacks is refused by generate() below
        sections = card_sections(el) if el in GEOMETRIES else None
    else:
        sections = {"How it was built": (
            "Entries are made by `jxas.data.generate` from the spec list "
            "`jxas.data.build.crystal.crystal_specs(element, files, variants=..., seed=..., cutoff=...)`: for "
            "every distinct absorber site of each crystal structure, the cluster of periodic images within the "
            "cutoff, undistorted and perturbed (isotropic scale, first-shell radial moves, noise on the other "
            "atoms), then FEFF10 with the recipe below. The group of an entry is its material (file stem).")}
    report = generate(
        out,
        element=args.element,
        specs=specs,
        card_sections=sections,
        n=args.n,
        seed=args.seed,
        edge=args.edge,
        recipe=recipe,
        workers=args.workers,
        scheduler=args.scheduler,
        timeout=args.timeout,
        retries=args.retries,
        retry_failed=args.retry_failed,
        max_tasks=args.max_tasks,
        flush_every=args.flush_every,
        progress=not args.no_progress,
        command=_command(args, out),
    )
    summary = report.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{out}: {report.n_new} new entries, {report.n_failed} failures, {report.n_retried} retried, "
            f"{report.n_pending} specs still to do ({report.n_done_before} were done before); "
            f"{report.wall_s:.0f} s, {report.entries_per_hour:.0f} entries/h"
        )
    return 0

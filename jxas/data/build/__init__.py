"""Local-environment builder: realistic first- and second-shell transition-metal complexes.

Ligands from SMILES (:mod:`.ligands`, 45 mono- and polydentate ligands with donor atoms and charge),
coordination polyhedra CN 2-8 (:mod:`.polyhedra`), clash-free placement (:mod:`.place`), GFN-FF /
GFN2-xTB relaxation through xtb-python (:mod:`.relax`), random distortions (:mod:`.distort`), and
the campaign layer that the generation runner calls (:mod:`.campaign`): ``campaign_specs(element,
n, seed=...)`` and ``make_entry(spec, recipe)``; crystalline sites cut from CIF/POSCAR files, scaled
and perturbed (:mod:`.crystal`): ``crystal_specs(element, paths)``.
"""

from jxas.data.build.campaign import GEOMETRIES, build_complex, campaign_specs, check_complex, make_entry, spin_state
from jxas.data.build.crystal import crystal_sites, crystal_specs, perturb_cluster
from jxas.data.build.distort import distort
from jxas.data.build.ligands import LIGANDS, Ligand, embed_ligand, ligand
from jxas.data.build.place import BuildError, Complex, assemble, clashes
from jxas.data.build.polyhedra import POLYHEDRA, polyhedron, site_sets
from jxas.data.build.relax import relax

__all__ = [
    "BuildError",
    "Complex",
    "GEOMETRIES",
    "LIGANDS",
    "Ligand",
    "POLYHEDRA",
    "assemble",
    "build_complex",
    "campaign_specs",
    "check_complex",
    "clashes",
    "crystal_sites",
    "crystal_specs",
    "distort",
    "embed_ligand",
    "ligand",
    "make_entry",
    "perturb_cluster",
    "polyhedron",
    "relax",
    "site_sets",
    "spin_state",
]

"""Structure readers: xyz (XANESNET convention), extended xyz, CIF, POSCAR and ``ase.Atoms``.

Conversion happens here, at the edge, never inside traced code. Every problem with an input raises
:class:`StructureError` naming the file and what is wrong.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from jxas.structure import Structure

__all__ = ["StructureError", "read_structure", "write_xyz", "cluster_from_periodic", "parse_comment"]

DEFAULT_CLUSTER_CUTOFF = 8.0  # Å, absorber-centred cluster radius for periodic inputs
_PERIODIC_SUFFIXES = {".cif", ".vasp", ".poscar"}
_PERIODIC_NAMES = {"POSCAR", "CONTCAR"}
# 3d and 4d transition metals: the default absorber of a periodic file is the first such site.
_TRANSITION_METALS = set(range(21, 31)) | set(range(39, 49))


class StructureError(ValueError):
    """A structure input that jxas cannot use; the message names the source and the problem."""


def _fail(source: str, problem: str) -> StructureError:
    return StructureError(f"{source}: {problem}")


def parse_comment(comment: str) -> dict[str, str]:
    """Parse an xyz comment line into key/value pairs.

    Understands the XANESNET form ``q = 1 | S = 0`` and the ``charge 0 multiplicity 1`` form used by
    common complex collections. Unknown text is ignored.
    """
    out: dict[str, str] = {}
    for part in comment.split("|"):
        if "=" in part:
            key, _, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if key and " " not in key and value:
                out[key] = value.split()[0]
    for key in ("charge", "multiplicity"):
        m = re.search(rf"\b{key}\s+(-?\d+)", comment)
        if m and key not in out:
            out[key] = m.group(1)
    return out


def _charge_spin(info: dict[str, str], source: str) -> tuple[int, int]:
    """Charge and number of unpaired electrons from parsed comment keys."""
    try:
        charge = int(float(info.get("q", info.get("charge", 0))))
        if "S" in info:
            spin = int(float(info["S"]))
        elif "multiplicity" in info:
            spin = int(info["multiplicity"]) - 1
        else:
            spin = 0
    except ValueError as e:
        raise _fail(source, f"cannot read charge/spin from the comment line ({e})") from None
    if spin < 0:
        raise _fail(source, f"spin (unpaired electrons) must be >= 0, got {spin}")
    return charge, spin


def _element_number(token: str, source: str, line: int) -> int:
    tok = token.strip()
    if re.fullmatch(r"\d+", tok):
        z = int(tok)
        if not 1 <= z < len(chemical_symbols):
            raise _fail(source, f"line {line}: atomic number {z} is not an element")
        return z
    sym = tok[:1].upper() + tok[1:].lower()
    # tolerate labels such as Fe1 or O_a
    sym = re.match(r"[A-Za-z]+", sym).group(0) if re.match(r"[A-Za-z]+", sym) else sym
    if sym not in atomic_numbers or sym == "X":
        raise _fail(source, f"line {line}: unknown element {token!r}")
    return atomic_numbers[sym]


def _read_xyz(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    source = str(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise _fail(source, "not a text file") from None
    if len(lines) < 2:
        raise _fail(source, "malformed xyz: fewer than two lines (need a count line and a comment line)")
    try:
        count = int(lines[0].split()[0])
    except (ValueError, IndexError):
        raise _fail(source, f"line 1: malformed xyz count line {lines[0]!r}") from None
    rows = [ln for ln in lines[2:] if ln.strip()]
    if len(rows) != count:
        raise _fail(source, f"malformed xyz: count line says {count} atoms but {len(rows)} atom rows follow")
    numbers, positions = [], []
    for i, row in enumerate(lines[2:], start=3):
        if not row.strip():
            continue
        parts = row.split()
        if len(parts) < 4:
            raise _fail(source, f"line {i}: expected 'element x y z', got {row.strip()!r}")
        numbers.append(_element_number(parts[0], source, i))
        try:
            xyz = [float(v) for v in parts[1:4]]
        except ValueError:
            raise _fail(source, f"line {i}: non-numeric coordinates in {row.strip()!r}") from None
        if not np.all(np.isfinite(xyz)):
            raise _fail(source, f"line {i}: NaN or infinite coordinate")
        positions.append(xyz)
    return np.array(positions, float), np.array(numbers, int), parse_comment(lines[1])


_CUBIC_NO_BAR = re.compile(
    r"(?m)^(_symmetry_space_group_name_H-M|_space_group_name_H-M_alt)(\s+)'([PFIRC])\s*([mnabcd])\s*3(\s[^']*)?'"
)


_SYMOPS = re.compile(r"(?m)^\s*(_space_group_symop_operation_xyz|_symmetry_equiv_pos_as_xyz)\s*$")
_HM_SYMBOL = re.compile(r"(?m)^(_symmetry_space_group_name_H-M|_space_group_name_H-M_alt)(\s+).*$")
_SG_NUMBER = re.compile(r"(?m)^(_symmetry_Int_Tables_number|_space_group_IT_number)\s+.*$")


def _read_cif(path: Path):
    """Read a CIF with ASE, with two repairs for symbols ASE's space-group table rejects.

    - Older AMCSD files write centrosymmetric cubic groups without the bar ('F m 3 m' for Fm-3m); in
      those groups a mirror/glide letter followed by 3 can only mean -3, so the rewrite is unambiguous.
    - Non-standard settings ('P b n m', 'A m a m') that the table lacks: when the file lists its
      symmetry operations (``_space_group_symop_operation_xyz`` or ``_symmetry_equiv_pos_as_xyz``),
      the symbol is replaced by 'P 1' so that ASE applies exactly the listed operations (which
      include any centring translations) instead of the table's.
    """
    import io

    import ase.io

    try:
        return ase.io.read(path, format="cif")
    except Exception as first:
        text = path.read_text(errors="replace")
        fixed, n = _CUBIC_NO_BAR.subn(lambda m: f"{m[1]}{m[2]}'{m[3]} {m[4]} -3{m[5] or ''}'", text)
        if n:
            warnings.warn(f"{path}: cubic space-group symbol without the bar read as its -3 form", stacklevel=4)
            return ase.io.read(io.StringIO(fixed), format="cif")
        if _SYMOPS.search(text):
            fixed, n = _HM_SYMBOL.subn(r"\1\2'P 1'", text)
            if n:
                fixed = _SG_NUMBER.sub("", fixed)
                warnings.warn(f"{path}: space-group symbol not in ASE's table; the file's own symmetry "
                              "operations are applied", stacklevel=4)
                return ase.io.read(io.StringIO(fixed), format="cif")
        raise first from None


def read_atoms(path: str | os.PathLike):
    """An ``ase.Atoms`` from any file ASE reads (CIF with the repairs of :func:`_read_cif`, POSCAR/CONTCAR/
    ``.vasp`` as VASP), warnings silenced; exceptions are ASE's (callers turn them into their own errors)."""
    import ase.io

    path = Path(path)
    fmt = "vasp" if path.name in _PERIODIC_NAMES or path.suffix.lower() in {".vasp", ".poscar"} else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read_cif(path) if path.suffix.lower() == ".cif" else ase.io.read(path, format=fmt)


def _is_extxyz(path: Path) -> bool:
    with open(path, errors="replace") as fh:
        fh.readline()
        comment = fh.readline()
    return "Properties=" in comment or "Lattice=" in comment


def cluster_from_periodic(atoms: Atoms, site: int, cutoff: float, *, source: str = "<atoms>") -> Atoms:
    """Absorber-centred cluster of all periodic images within ``cutoff`` Å of ``site``.

    The absorber is atom 0 at the origin; the others follow in order of increasing distance.
    """
    if not 0 <= site < len(atoms):
        raise _fail(source, f"absorber site {site} out of range for {len(atoms)} sites")
    if cutoff <= 0:
        raise _fail(source, f"cutoff must be positive, got {cutoff}")
    from ase.neighborlist import neighbor_list

    i, j, d, D = neighbor_list("ijdD", atoms, cutoff, self_interaction=False)
    sel = i == site
    order = np.argsort(d[sel], kind="stable")
    pos = np.vstack([np.zeros((1, 3)), D[sel][order]])
    num = np.concatenate([[atoms.numbers[site]], atoms.numbers[j[sel][order]]])
    return Atoms(numbers=num, positions=pos)


def _warn_partial_occupancy(atoms: Atoms, source: str) -> None:
    """Warn when a CIF has partially occupied or mixed sites: every listed site becomes one fully occupied
    atom, so the cluster only approximates the crystal."""
    occ = atoms.info.get("occupancy")
    if not isinstance(occ, dict):
        return
    parts = []
    for species in occ.values():
        total = sum(float(v) for v in species.values())
        if len(species) > 1 or total < 0.99:
            ranked = sorted(species.items(), key=lambda kv: (-float(kv[1]), kv[0]))
            parts.append("/".join(f"{el} {float(v):g}" for el, v in ranked))
    if parts:
        shown = ", ".join(sorted(set(parts))[:6]) + (" ..." if len(set(parts)) > 6 else "")
        warnings.warn(f"{source}: {len(parts)} partially occupied or mixed site(s) ({shown}); each is read as a "
                      "fully occupied atom, so the cluster is an approximation of the crystal (split sites give "
                      "atoms too close together)", stacklevel=3)


def _from_atoms(
    atoms: Atoms, absorber: int | None, cutoff: float | None, source: str, charge: int, spin: int
) -> Structure:
    if len(atoms) == 0:
        raise _fail(source, "no atoms")
    pos = np.asarray(atoms.get_positions(), float)
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise _fail(source, f"NaN or infinite coordinates for atom(s) {bad.tolist()}")
    periodic = bool(np.any(atoms.pbc)) and atoms.cell.rank == 3
    if periodic:
        if absorber is None:
            tms = [k for k, z in enumerate(atoms.numbers) if z in _TRANSITION_METALS]
            absorber = tms[0] if tms else 0
        atoms = cluster_from_periodic(atoms, absorber, cutoff or DEFAULT_CLUSTER_CUTOFF, source=source)
        absorber = 0
        cutoff = None
        pos = atoms.get_positions()
    absorber = 0 if absorber is None else int(absorber)
    if not 0 <= absorber < len(atoms):
        raise _fail(source, f"absorber index {absorber} out of range for {len(atoms)} atoms")
    numbers = np.asarray(atoms.numbers, int)
    if cutoff is not None:
        r = np.linalg.norm(pos - pos[absorber], axis=1)
        keep = r <= cutoff
        absorber = int(np.sum(keep[:absorber]))
        pos, numbers = pos[keep], numbers[keep]
    r = np.linalg.norm(pos - pos[absorber], axis=1)
    if not np.any(r > 0):
        where = f" within the cutoff of {cutoff} Å" if cutoff is not None else ""
        raise _fail(source, f"the absorber ({chemical_symbols[numbers[absorber]]}) has no neighbour{where}")
    n_overlap = int(np.sum(r[np.arange(len(r)) != absorber] < 0.5))
    if n_overlap:
        warnings.warn(f"{source}: {n_overlap} atom(s) closer than 0.5 Å to the absorber", stacklevel=3)
    else:
        from scipy.spatial import cKDTree  # O(n log n); an n x n distance matrix would not scale

        n_close = len(cKDTree(pos).query_pairs(0.5))
        if n_close:
            warnings.warn(f"{source}: {n_close} pair(s) of atoms closer than 0.5 Å (split or duplicated sites?)",
                          stacklevel=3)
    return Structure.from_arrays(pos, numbers, absorber=absorber, charge=charge, spin=spin)


def read_structure(
    path_or_atoms: str | os.PathLike | Atoms,
    absorber: int | None = None,
    cutoff: float | None = None,
    *,
    element: str | None = None,
) -> Structure:
    """Read a structure into an absorber-centred :class:`~jxas.structure.Structure`.

    Args:
        path_or_atoms: a file path (``.xyz`` in the XANESNET convention or extended xyz, ``.cif``,
            ``POSCAR``/``CONTCAR``/``.vasp``, or anything ``ase.io.read`` understands) or an
            ``ase.Atoms``.
        absorber: index of the absorbing atom. For molecules, default atom 0 (XANESNET convention).
            For periodic inputs it is a *site* index (default: the first 3d/4d transition-metal site)
            and the result is the absorber-centred cluster of periodic images, absorber first.
        cutoff: radius (Å) of the cluster; for molecules, atoms farther than this from the absorber
            are dropped (default: keep all); for periodic inputs default 8 Å.
        element: optional element symbol the absorber must be (e.g. ``"Fe"``); checked, not guessed.

    Returns:
        The structure, with ``charge`` and ``spin`` (unpaired electrons) read from an xyz comment
        line (``q = 1 | S = 0`` or ``charge 1 multiplicity 2``) or ``atoms.info``.

    Raises:
        StructureError: missing or unreadable file, malformed xyz, unknown element, absorber out of
            range or of the wrong element, NaN/inf coordinates, no neighbour within the cutoff.
    """
    if isinstance(path_or_atoms, Atoms):
        source = f"<ase.Atoms {path_or_atoms.get_chemical_formula()}>"
        atoms = path_or_atoms
        info = {k: str(v) for k, v in atoms.info.items()}
    else:
        path = Path(path_or_atoms)
        source = str(path)
        if not path.exists():
            raise _fail(source, "no such file")
        if not path.is_file():
            raise _fail(source, "not a regular file")
        try:
            if path.suffix.lower() == ".xyz" and not _is_extxyz(path):
                pos, num, info = _read_xyz(path)
                atoms = Atoms(numbers=num, positions=pos)
            else:
                atoms = read_atoms(path)
                _warn_partial_occupancy(atoms, source)
                info = {k: str(v) for k, v in atoms.info.items()}
                for key, val in parse_comment(str(atoms.info.get("comment", ""))).items():
                    info.setdefault(key, val)
        except StructureError:
            raise
        except PermissionError:
            raise _fail(source, "permission denied") from None
        except Exception as e:  # ase raises many types for bad files
            raise _fail(source, f"cannot parse ({type(e).__name__}: {e})") from None
    if "spin" in info and "S" not in info and "multiplicity" not in info:
        info["S"] = info["spin"]
    charge, spin = _charge_spin(info, source)
    if absorber is None and "absorber" in info:
        try:
            absorber = int(info["absorber"])
        except ValueError:
            raise _fail(source, f"absorber = {info['absorber']!r} in the comment line is not an index") from None
    s = _from_atoms(atoms, absorber, cutoff, source, charge, spin)
    if element is not None:
        want = atomic_numbers.get(element.capitalize())
        if want is None:
            raise _fail(source, f"unknown element {element!r}")
        got = int(s.numbers[int(s.absorber)])
        if got != want:
            raise _fail(source, f"absorber is {chemical_symbols[got]}, expected {element.capitalize()}")
    return s


def write_xyz(path: str | os.PathLike, structure: Structure, comment: str | None = None) -> None:
    """Write a single structure as XANESNET-style xyz (absorber first is *not* enforced; order kept)."""
    pos, num, absorber = structure.real()
    if comment is None:
        comment = f"q = {int(structure.charge)} | S = {int(structure.spin)} | absorber = {absorber}"
    lines = [str(len(num)), comment]
    lines += [f"{chemical_symbols[z]:<2s} {x:14.8f} {y:14.8f} {w:14.8f}" for z, (x, y, w) in zip(num, pos, strict=True)]
    Path(path).write_text("\n".join(lines) + "\n")

"""Spectrum readers and writer: column text (``#`` comments, decimal commas), XDI, FEFF ``xmu.dat``, FDMNES.

Everything is checked at the edge: a NaN or non-numeric value raises :class:`SpectrumError` naming the file
and line; fewer than 10 points is an error; energies out of order are sorted and exact duplicate energies
merged (their values averaged), each with a warning. Energies are absolute photon energies in eV.

Formats (``fmt=None`` detects them):

* ``"text"``: two or more columns, energy first; whitespace, tab, ``;`` or ``,`` separated; decimal commas
  (``7112,5``) are understood. ``column`` picks the y column (index, 0 = energy, or a header name).
  The ``# key: value`` header lines of the shared experimental files become metadata.
* ``"xdi"``: XAS Data Interchange 1.0 (``# XDI/1.0`` first line; ``# Column.N: name [units]``,
  ``# Element.symbol``, ``# Element.edge``, ``# Mono.d_spacing``). mu is the column ``column`` if given,
  else a column named ``mu*``/``norm*``, else ``ln(i0/itrans)``, else ``ifluor/i0``. An energy column in keV
  is converted; a mono-angle column (degrees) becomes energy by Bragg's law with the d-spacing.
* ``"feff"``: FEFF ``xmu.dat`` (columns ``omega e k mu mu0 chi``; ``omega`` is the absolute energy).
* ``"fdmnes"``: FDMNES output (``*.txt`` whose first line ends with ``= E_edge, Z, ...`` followed by an
  ``Energy <xanes>`` header) or convolution output (``*_conv.txt``: an ``Energy`` header line). FDMNES
  energies are relative to the edge; ``E_edge`` from the first line (or ``e_edge=``) makes them absolute.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from jxas.spectrum.spectrum import Spectrum

__all__ = ["SpectrumError", "read_spectrum", "write_spectrum", "MIN_POINTS"]

MIN_POINTS = 10
_HC = 12398.419843  # eV Å (CODATA 2018)
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")


class SpectrumError(ValueError):
    """A spectrum file that jxas cannot use; the message names the file (and line) and the problem."""


# ------------------------------------------------------------------------------------------ line parsing
def _split(line: str, decimal_comma: bool) -> list[str]:
    if ";" in line:
        parts = line.split(";")
    elif decimal_comma:
        parts = line.split()
    elif "," in line:
        parts = re.split(r"[,\s]+", line)
    else:
        parts = line.split()
    parts = [p.strip() for p in parts if p.strip()]
    if decimal_comma or ";" in line:
        parts = [p.replace(",", ".") for p in parts]
    return parts


def _uses_decimal_comma(lines: list[str]) -> bool:
    """Decimal commas: whitespace/semicolon separated tokens like ``7112,5`` and no ``.`` in numbers."""
    for raw in lines[:50]:
        toks = raw.split(";") if ";" in raw else raw.split()
        if len(toks) >= 2 and any(re.fullmatch(r"[+-]?\d+,\d+([eE][+-]?\d+)?", t.strip()) for t in toks):
            return not any("." in t for t in toks)
    return False


def _to_float(tok: str) -> float:
    if tok.lower() in ("nan", "+nan", "-nan"):
        return math.nan
    if not _FLOAT.match(tok):
        raise ValueError(tok)
    return float(tok.replace("d", "e").replace("D", "e"))


def _parse_rows(source: str, numbered: list[tuple[int, str]], ncol_min: int = 2) -> tuple[np.ndarray, list[int]]:
    """Numeric table from ``(line number, text)`` rows; every problem names the file and line."""
    comma = _uses_decimal_comma([t for _, t in numbered])
    rows, lines, width = [], [], None
    for lineno, text in numbered:
        toks = _split(text, comma)
        try:
            vals = [_to_float(t) for t in toks]
        except ValueError as exc:
            raise SpectrumError(
                f"{source}, line {lineno}: non-numeric value {exc.args[0]!r} in {text.strip()!r}"
            ) from None
        if width is None:
            width = len(vals)
            if width < ncol_min:
                raise SpectrumError(f"{source}, line {lineno}: need at least {ncol_min} columns, found {width}")
        elif len(vals) != width:
            raise SpectrumError(f"{source}, line {lineno}: {len(vals)} columns where earlier rows have {width}")
        if any(math.isnan(v) or math.isinf(v) for v in vals):
            raise SpectrumError(f"{source}, line {lineno}: NaN/inf value in {text.strip()!r}")
        rows.append(vals)
        lines.append(lineno)
    if not rows:
        raise SpectrumError(f"{source}: no numeric data rows")
    return np.asarray(rows, dtype=float), lines


def _is_names_row(text: str) -> bool:
    """A column-name line: no token is a number."""
    toks = _split(text, _uses_decimal_comma([text]))
    return bool(toks) and not any(_FLOAT.match(t) or t.lower() == "nan" for t in toks)


def _finalise(source: str, energy: np.ndarray, mu: np.ndarray, meta: dict) -> Spectrum:
    if energy.size < MIN_POINTS:
        raise SpectrumError(f"{source}: only {energy.size} data points; at least {MIN_POINTS} are needed")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        bad = int(np.flatnonzero(~(np.isfinite(energy) & np.isfinite(mu)))[0])
        raise SpectrumError(f"{source}: non-finite value at data point {bad} (e.g. ln of a non-positive ratio)")
    if np.any(np.diff(energy) < 0):
        warnings.warn(f"{source}: energies are not in increasing order; sorted", stacklevel=3)
        order = np.argsort(energy, kind="stable")
        energy, mu = energy[order], mu[order]
    if np.any(np.diff(energy) == 0):
        uniq, inv, counts = np.unique(energy, return_inverse=True, return_counts=True)
        warnings.warn(
            f"{source}: {int(np.sum(counts > 1))} duplicated energies merged (values averaged)", stacklevel=3
        )
        mu = np.bincount(inv, weights=mu) / counts
        energy = uniq
        if energy.size < MIN_POINTS:
            raise SpectrumError(f"{source}: only {energy.size} distinct energies; at least {MIN_POINTS} needed")
    return Spectrum(energy=np.asarray(energy, float), mu=np.asarray(mu, float), meta=meta)


# ------------------------------------------------------------------------------------------------ formats
def _read_text(source: str, lines: list[str], column, meta: dict) -> Spectrum:
    header_names: list[str] | None = None
    numbered = []
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            key, sep, value = body.partition(":")
            if sep and key.strip() and " " not in key.strip("/ ").replace("/", "_"):
                k, v = key.strip().lower(), value.strip()
                if k == "element/edge" and len(v.split()) == 2:
                    meta["element"], meta["edge"] = v.split()
                elif k == "columns":
                    header_names = v.split()
                elif k == "source":
                    meta["origin"] = v  # provenance text; meta["source"] stays the path read
                elif k in ("id", "compound", "formula", "quantity", "license", "element", "edge"):
                    meta[k] = v
            continue
        if not numbered and _is_names_row(s):
            header_names = re.split(r"[;,\s]+", s)  # a column-name line before the data
            continue
        numbered.append((i, raw))
    table, _ = _parse_rows(source, numbered)
    idx = _column_index(source, column, header_names, table.shape[1], default=1)
    if header_names and idx < len(header_names):
        meta["column"] = header_names[idx]
    return _finalise(source, table[:, 0], table[:, idx], meta)


def _column_index(source, column, names, ncol, default) -> int:
    if column is None:
        idx = default
    elif isinstance(column, str):
        low = [n.lower() for n in (names or [])]
        if column.lower() not in low:
            raise SpectrumError(f"{source}: no column named {column!r}; columns: {names}")
        idx = low.index(column.lower())
    else:
        idx = int(column)
    if not 0 < idx < ncol:
        raise SpectrumError(f"{source}: column {column!r} out of range (data has {ncol} columns, 0 is energy)")
    return idx


def _read_xdi(source: str, lines: list[str], column, meta: dict) -> Spectrum:
    cols: dict[int, tuple[str, str]] = {}
    fields: dict[str, str] = {}
    numbered = []
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = re.match(r"#\s*([A-Za-z_][\w]*)\.([\w]+)\s*:\s*(.*)$", s)
            if m:
                fam, key, value = m.group(1).lower(), m.group(2).lower(), m.group(3).strip()
                fields[f"{fam}.{key}"] = value
                if fam == "column" and key.isdigit():
                    parts = value.split()
                    cols[int(key)] = (parts[0].lower() if parts else f"col{key}", parts[1] if len(parts) > 1 else "")
            continue
        numbered.append((i, raw))
    if not cols:
        raise SpectrumError(f"{source}: XDI file without '# Column.N:' labels")
    table, _ = _parse_rows(source, numbered)
    names = [cols.get(k + 1, (f"col{k + 1}", ""))[0] for k in range(table.shape[1])]
    units = [cols.get(k + 1, ("", ""))[1].lower() for k in range(table.shape[1])]
    x = table[:, 0]
    if names[0] in ("angle", "theta") or units[0] in ("deg", "degrees"):
        d = fields.get("mono.d_spacing")
        if d is None:
            raise SpectrumError(f"{source}: energy given as mono angle but no '# Mono.d_spacing:'")
        x = _HC / (2.0 * float(d.split()[0]) * np.sin(np.radians(x)))
    elif units[0] == "kev":
        x = 1000.0 * x
    meta.update(
        {k: fields[f] for k, f in (("element", "element.symbol"), ("edge", "element.edge")) if f in fields}
    )
    if "sample.name" in fields:
        meta["compound"] = fields["sample.name"]
    if "mono.d_spacing" in fields:
        meta["mono_d_spacing"] = fields["mono.d_spacing"]
    low = names
    with np.errstate(divide="ignore", invalid="ignore"):
        if column is not None:
            idx = _column_index(source, column, names, table.shape[1], default=1)
            y, meta["column"] = table[:, idx], names[idx]
            meta["quantity"] = "norm" if names[idx].startswith("norm") else "mu_raw"
        elif any(n.startswith("norm") for n in low):
            idx = next(i for i, n in enumerate(low) if n.startswith("norm"))
            y, meta["column"], meta["quantity"] = table[:, idx], names[idx], "norm"
        elif any(n.startswith("mu") for n in low):
            idx = next(i for i, n in enumerate(low) if n.startswith("mu"))
            y, meta["column"], meta["quantity"] = table[:, idx], names[idx], "mu_raw"
        elif "i0" in low and "itrans" in low:
            y = np.log(table[:, low.index("i0")] / table[:, low.index("itrans")])
            meta["column"], meta["quantity"] = "ln(i0/itrans)", "mu_raw"
        elif "i0" in low and ("ifluor" in low or "ifluo" in low):
            jf = low.index("ifluor") if "ifluor" in low else low.index("ifluo")
            y = table[:, jf] / table[:, low.index("i0")]
            meta["column"], meta["quantity"] = "ifluor/i0", "mu_raw"
        else:
            raise SpectrumError(f"{source}: XDI columns {names} hold no mu, norm, i0+itrans or i0+ifluor")
    return _finalise(source, x, y, meta)


def _read_feff(source: str, lines: list[str], meta: dict) -> Spectrum:
    numbered = [(i, raw) for i, raw in enumerate(lines, 1) if raw.strip() and not raw.lstrip().startswith("#")]
    table, _ = _parse_rows(source, numbered, ncol_min=4)
    heads = [ln for ln in lines if ln.lstrip().startswith("#") and "omega" in ln]
    names = heads[-1].lstrip("#").split() if heads else ["omega", "e", "k", "mu", "mu0", "chi"]
    idx = names.index("mu") if "mu" in names else 3
    meta.update({"column": "mu", "quantity": "mu_feff"})
    m = re.search(r"Z\s*=\s*(\d+).*?\b([KLM]\d?)\s+shell", "".join(lines[:10]))
    if m:
        from ase.data import chemical_symbols

        meta["element"], meta["edge"] = chemical_symbols[int(m.group(1))], m.group(2)
    return _finalise(source, table[:, 0], table[:, idx], meta)


def _read_fdmnes(source: str, lines: list[str], column, meta: dict, e_edge) -> Spectrum:
    first = lines[0] if lines else ""
    start = 0
    if "E_edge" in first:
        vals = first.split("=")[0].split()
        if e_edge is None:
            e_edge = float(vals[0])
        if len(vals) > 1 and vals[1].isdigit():
            from ase.data import chemical_symbols

            meta["element"] = chemical_symbols[int(vals[1])]
        start = 1
    names = None
    numbered = []
    for i, raw in enumerate(lines[start:], start + 1):
        s = raw.strip()
        if not s:
            continue
        if not numbered and _is_names_row(s):
            names = s.split()
            continue
        numbered.append((i, raw))
    table, _ = _parse_rows(source, numbered)
    idx = _column_index(source, column, names, table.shape[1], default=1)
    x = table[:, 0]
    if e_edge is not None and np.max(np.abs(x)) < 1000.0:
        x = x + float(e_edge)
        meta["e_edge"] = float(e_edge)
    elif np.max(np.abs(x)) < 1000.0:
        warnings.warn(
            f"{source}: FDMNES energies are relative to the edge and the file gives no E_edge; pass e_edge= "
            "to make them absolute", stacklevel=3,
        )
        meta["energy_reference"] = "edge"
    meta.update({"column": names[idx] if names and idx < len(names) else f"col{idx}", "quantity": "mu_fdmnes"})
    return _finalise(source, x, table[:, idx], meta)


def _detect(path: Path, lines: list[str]) -> str:
    head = "".join(lines[:40])
    if lines and lines[0].lstrip().upper().startswith("# XDI/"):
        return "xdi"
    if (lines and "E_edge" in lines[0]) or path.name.endswith("_conv.txt"):
        return "fdmnes"
    if path.name.lower().startswith("xmu") or ("omega" in head and "mu0" in head):
        return "feff"
    return "text"


def read_spectrum(
    path: str | os.PathLike, *, column: int | str | None = None, fmt: str | None = None, e_edge: float | None = None
) -> Spectrum:
    """Read a spectrum file (format detected from its content; see the module docstring).

    Args:
        path: file to read.
        column: y column (index with 0 = energy, or name) for text, XDI and FDMNES files.
        fmt: force ``"text"``, ``"xdi"``, ``"feff"`` or ``"fdmnes"``.
        e_edge: absolute edge energy (eV) for FDMNES files that give relative energies only.

    Returns:
        :class:`~jxas.spectrum.Spectrum` with ``meta`` keys ``source``, ``format`` and, when known,
        ``element``, ``edge``, ``quantity`` (``"mu_raw"``, ``"norm"``, ``"mu_feff"``, ...), ``column``.

    Raises:
        SpectrumError: unreadable file, non-numeric or NaN data (naming the line), fewer than 10 points.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SpectrumError(f"{source}: no such file")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    lines = text.splitlines()
    kind = fmt or _detect(path, lines)
    meta: dict = {"source": source, "format": kind}
    if kind == "xdi":
        return _read_xdi(source, lines, column, meta)
    if kind == "feff":
        return _read_feff(source, lines, meta)
    if kind == "fdmnes":
        return _read_fdmnes(source, lines, column, meta, e_edge)
    if kind == "text":
        return _read_text(source, lines, column, meta)
    raise SpectrumError(f"{source}: unknown format {kind!r}; use 'text', 'xdi', 'feff' or 'fdmnes'")


def write_spectrum(path: str | os.PathLike, spectrum: Spectrum, *, header: dict | None = None) -> Path:
    """Write ``energy mu [std]`` columns with a ``# key: value`` header (readable by :func:`read_spectrum`).

    Args:
        path: output file.
        spectrum: a single spectrum (1-D ``mu``); ``std``, when present, is the third column.
        header: extra ``key: value`` lines (added to the spectrum's scalar metadata).
    """
    e = np.asarray(spectrum.energy, float)
    mu = np.asarray(spectrum.mu, float)
    if mu.ndim != 1:
        raise SpectrumError(f"{path}: write_spectrum writes one spectrum; mu has shape {mu.shape}")
    cols = [e, mu]
    names = ["energy_eV", "mu"]
    if spectrum.std is not None:
        cols.append(np.asarray(spectrum.std, float))
        names.append("std")
    info = {k: v for k, v in {**spectrum.meta, **(header or {})}.items() if isinstance(v, str | int | float)}
    info.pop("format", None)
    if "element" in info and "edge" in info:
        info["element/edge"] = f"{info.pop('element')} {info.pop('edge')}"
    lines = ["# written by jxas"] + [f"# {k}: {str(v).splitlines()[0] if str(v) else v}" for k, v in info.items()]
    lines.append("# columns: " + "  ".join(names))
    body = "\n".join(" ".join(f"{v:.10g}" for v in row) for row in np.column_stack(cols))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n" + body + "\n")
    return path

"""Write an octahedral [Fe(H2O)6]2+ xyz with a given Fe-O distance (O-H 0.96 Å, H-O-H 104.5 deg, each
water planar with its Fe-O axis, hydrogens pointing away from Fe).

Usage: python examples/make_fe_h2o6.py OUT.xyz R_FE_O "COMMENT"
"""

import sys

import numpy as np


def fe_h2o6(r_fe_o: float, r_oh: float = 0.96, hoh: float = 104.5):
    axes = [
        (np.array([0, 0, 1.0]), np.array([1, 0, 0.0])),
        (np.array([0, 0, -1.0]), np.array([1, 0, 0.0])),
        (np.array([1, 0, 0.0]), np.array([0, 1, 0.0])),
        (np.array([-1, 0, 0.0]), np.array([0, 1, 0.0])),
        (np.array([0, 1, 0.0]), np.array([0, 0, 1.0])),
        (np.array([0, -1, 0.0]), np.array([0, 0, 1.0])),
    ]
    t = np.deg2rad(hoh / 2)
    sym, pos = ["Fe"], [np.zeros(3)]
    for a, p in axes:
        o = r_fe_o * a
        sym.append("O")
        pos.append(o)
        for s in (1, -1):
            sym.append("H")
            pos.append(o + r_oh * (np.cos(t) * a + s * np.sin(t) * p))
    return sym, np.array(pos)


def write(path: str, r: float, comment: str) -> None:
    sym, pos = fe_h2o6(r)
    with open(path, "w") as f:
        f.write(f"{len(sym)}\n{comment}\n")
        for s, p in zip(sym, pos, strict=True):
            f.write(f"{s:<2s} {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f}\n")


if __name__ == "__main__":
    write(sys.argv[1], float(sys.argv[2]), sys.argv[3])

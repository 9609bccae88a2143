import numpy as np
def fe_h2o6(r_fe_o, r_oh=0.96, hoh=104.5):
    axes = [(np.array([0,0,1.]), np.array([1,0,0.])), (np.array([0,0,-1.]), np.array([1,0,0.])),
            (np.array([1,0,0.]), np.array([0,1,0.])), (np.array([-1,0,0.]), np.array([0,1,0.])),
            (np.array([0,1,0.]), np.array([0,0,1.])), (np.array([0,-1,0.]), np.array([0,0,1.]))]
    t = np.deg2rad(hoh / 2)
    sym, pos = ["Fe"], [np.zeros(3)]
    for a, p in axes:
        o = r_fe_o * a
        sym.append("O"); pos.append(o)
        for s in (1, -1):
            sym.append("H"); pos.append(o + r_oh * (np.cos(t) * a + s * np.sin(t) * p))
    return sym, np.array(pos)
def write(path, r, comment):
    sym, pos = fe_h2o6(r)
    with open(path, "w") as f:
        f.write(f"{len(sym)}\n{comment}\n")
        for s, p in zip(sym, pos):
            f.write(f"{s:<2s} {p[0]:12.6f} {p[1]:12.6f} {p[2]:12.6f}\n")
import sys
write(sys.argv[1], float(sys.argv[2]), sys.argv[3])

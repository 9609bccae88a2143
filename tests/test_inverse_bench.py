"""benchmarks/inverse.py: which entries count as held-out, and the --holdout-groups file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("bench_inverse", Path(__file__).parents[1] / "benchmarks" / "inverse.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CFG = {"split_groups": {"train": ["a", "b"], "val": ["c"]}}
GROUPS = np.array(["a", "b", "c", "d", "d", "e", "f"])


def test_heldout_is_every_unseen_group_and_can_be_restricted():
    np.testing.assert_array_equal(bench.heldout_indices(GROUPS, CFG), [3, 4, 5, 6])
    np.testing.assert_array_equal(bench.heldout_indices(GROUPS, CFG, only=["d", "f"]), [3, 4, 6])
    assert len(bench.heldout_indices(GROUPS, CFG, only=["zz"])) == 0
    with pytest.raises(ValueError, match="trained or validated on"):
        bench.heldout_indices(GROUPS, CFG, only=["d", "c"])


def test_read_groups(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"calib": ["d"], "test": ["e", "f"]}))
    assert bench.read_groups(p) == ["e", "f"]
    p.write_text(json.dumps(["d"]))
    assert bench.read_groups(p) == ["d"]
    for bad in ({"calib": ["d"]}, [], [1, 2]):
        p.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            bench.read_groups(p)


def test_shipped_fe_split_file_is_disjoint_from_the_model():
    root = Path(__file__).parents[1]
    split = json.loads((root / "benchmarks" / "results" / "inverse_fe_holdout_groups.json").read_text())
    cfg = json.loads((root / "jxas" / "pretrained" / "inverse-fe-k" / "config.json").read_text())
    seen = set(cfg["split_groups"]["train"]) | set(cfg["split_groups"]["val"])
    assert not (set(split["calib"]) & set(split["test"]))
    assert not ((set(split["calib"]) | set(split["test"])) & seen)

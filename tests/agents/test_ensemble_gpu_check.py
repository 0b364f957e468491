"""benchmarks/gpu_check.sh --smoke: the accelerator check's CPU mode runs and records member
equality and throughput."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_mode_runs_on_cpu(tmp_path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["smoke"] and result["device"] == "cpu"
    assert [e["arch"] for e in result["equality"]] == ["rnn", "gru", "lstm", "transformer"]
    for e in result["equality"]:
        assert e["ok"] and e["max_weight_diff"] <= 1e-4 and e["max_loss_diff"] <= 1e-4, e
    assert [t["k"] for t in result["throughput"]] == [1, 2]
    assert all(t["network_steps_per_s"] > 0 for t in result["throughput"])
    assert "network-steps / s" in (tmp_path / "gpu_check.md").read_text()

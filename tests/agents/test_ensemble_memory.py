"""agents.ensemble.memory: with glibc's malloc kept from handing the ensemble's megabyte buffers
back to the kernel, a stacked LSTM's training step stops faulting their pages back in. Each
count runs in a fresh interpreter, since the setting is process-wide and permanent."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, sys, torch
torch.set_num_threads(1)
from multitask_evidence.agents import TrainConfig
from multitask_evidence.agents.ensemble.memory import keep_freed_memory
from multitask_evidence.agents.ensemble.model import StackedNetwork
from multitask_evidence.agents.run import build_network
from multitask_evidence.envs import TaskSpec

applied = keep_freed_memory() if sys.argv[1] == "keep" else None
spec = TaskSpec()
cfg = TrainConfig(arch="lstm", preset="paper").resolve()
model = StackedNetwork([build_network(spec, cfg) for _ in range(16)])
obs = torch.randn(16, 16, spec.n_steps, spec.obs_dim)

def step():
    model.zero_grad(set_to_none=True)
    readout, _ = model(obs, None)
    readout.square().mean().backward()

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


# glibc's thresholds adapt to the process's history of frees, so how often the default
# malloc faults depends on the environment; both runs therefore start from the fixed worst case
# (blocks above 128 KB mapped on their own, the heap trimmed above 128 KB), which
# keep_freed_memory must override.
WORST_CASE = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def faults_per_step(mode: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", STEPS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **WORST_CASE},
    ).stdout.split()
    return out[0], float(out[1])


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc malloc settings")
def test_kept_memory_stops_the_page_faults_of_every_step():
    applied, kept = faults_per_step("keep")
    _, default = faults_per_step("worst case")
    assert applied == "True"
    # 16 LSTMs at batch 16: without the settings every step faults thousands of pages back in
    assert default > 1000
    assert kept < default / 5


def test_is_applied_once_and_reports_the_same():
    from multitask_evidence.agents.ensemble.memory import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() is first
    assert first is GLIBC

"""multitask-evidence: evidence-aggregation tasks, recurrent agents and disentanglement probes
(Vafidis, Bhargava & Rangel, ICLR 2025).

The installed namespace holds five layers, each importing only from the ones before it:
``multitask_evidence.common`` (the shared kernel: registries, field checks, size limits, atomic
writes) <- ``.envs`` (Gymnasium tasks) <- ``.agents`` (networks and trainers) <- ``.probes``
(disentanglement metrics) <- ``.experiments`` (the ``mte`` command, sweeps, figures).

``import multitask_evidence`` registers the ``MultiTaskEvidence*-v0`` Gymnasium ids, and
``gym.make("multitask_evidence:MultiTaskEvidence-v0")`` works without any import.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence*-v0 ids)

try:
    __version__ = version("multitask-evidence")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0+unknown"

__all__ = ["__version__", "envs"]

"""Disentanglement probes: record an agent's hidden states and measure them (docs/science.md §5-7).

Metrics are pure functions over numpy arrays returning small dataclasses with ``.to_dict()``:

- :mod:`probes.decoding`: ridge decoding in distribution and over time, OOD leave-one-orthant-out
  and half-space generalisation (closed form, or the paper's Adam protocol), decoder angles;
- :mod:`probes.geometry`: CCGP, parallelism score, shattering dimensionality (with a null);
- :mod:`probes.dci`: DCI with regression importances; :mod:`probes.sparseness`: lifetime
  sparseness, PCA, participation ratio, tuning maps; :mod:`probes.fixed_points`: fixed points and
  their Jacobian spectra for any recurrent map;
- :mod:`probes.theory`: the r^2 of mu (the paper's Eq. 7), the Bayes bound and the closed-form
  extraction of mu from outputs;
- :mod:`probes.controls`: what a decoder gets without a trained code (the untrained network,
  the input, mu, the outputs and the ideal observer's outputs) and the outputs' calibration.

:func:`probes.record.record` is the only part that runs an agent (any kind that
:func:`probes.adapters.as_recordable` adapts: this project's runs, sb3-contrib recurrent models,
step-function agents); :func:`probes.load_recording` reads a saved recording; :func:`probe_run` does it all
for a run folder (what ``mte probe`` calls).
"""

from __future__ import annotations

from typing import Any

from multitask_evidence.probes.adapters import as_recordable
from multitask_evidence.probes.record import Recording, load_recording, record


def probe_run(run_dir: Any, n: int = 4096, seed: int = 12345, **kwargs: Any) -> Any:
    """Probe a trained run folder; see :func:`probes.report.probe_run`."""
    from multitask_evidence.probes.report import probe_run as _probe_run

    return _probe_run(run_dir, n=n, seed=seed, **kwargs)


def probe_file(path: Any, **kwargs: Any) -> Any:
    """Probe a saved recording file; see :func:`probes.report.probe_file`."""
    from multitask_evidence.probes.report import probe_file as _probe_file

    return _probe_file(path, **kwargs)


__all__ = ["Recording", "as_recordable", "load_recording", "probe_file", "probe_run", "record"]

"""The recorder: the one part of :mod:`probes` that runs an agent.

``record(run, spec, n, seed)`` draws n trials from ``envs.generate``, feeds their observations to
the agent in batches (no gradient) and returns a :class:`Recording` of numpy arrays that every
metric reads. ``run`` is anything with ``hidden_and_outputs(obs [B, T, O] numpy) -> (hidden
[B, T, H], outputs [B, T, N])`` (what ``agents.load(run_dir)`` returns), a torch module with
the ``agents.networks.Network`` interface (``forward(obs) -> (readout, hidden)``, ``activate``),
an sb3-contrib recurrent model, or a step-function agent with an ``initial_state`` method
(:func:`probes.adapters.as_recordable` lists the kinds and adapts them).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from multitask_evidence.common.limits import check_bytes, short_repr
from multitask_evidence.envs import Region, TaskSpec, TrialBatch, generate

_FIELDS = ("hidden", "outputs", "latent", "labels", "mu", "step", "period")

_KINDS = {
    "hidden": ("f", "a real floating-point"),
    "outputs": ("f", "a real floating-point"),
    "latent": ("f", "a real floating-point"),
    "labels": ("fiub", "a real numeric"),
    "mu": ("f", "a real floating-point"),
    "step": ("iu", "an integer"),
    "period": ("iu", "an integer"),
}
"""Field -> (numpy dtype kinds allowed, how a message names them)."""

_FINITE = ("hidden", "outputs", "latent", "mu")
"""Fields whose values must all be finite (what ``record`` produces; a probe fitted to a NaN
would fail far from the file, or quietly score nothing)."""

PERIOD_CODES = (0, 1, 2, 3)
"""The values ``period`` may hold: fixation, stimulus, delay, decision."""

META_BYTES = 2**20
"""The most bytes the JSON metadata of a recording file may take (a spec and a seed: a few
kB), checked before it is read."""


@dataclass
class Recording:
    """Hidden states and outputs of an agent on n trials of ``spec``.

    hidden:  [n, T, H] float32, the agent's state read by the probes at each step.
    outputs: [n, T, N] float32, activated outputs (probabilities for sigmoid read-outs).
    latent:  [n, D] float64, x*.
    labels:  [n, N] float32 0/1 task labels.
    mu:      [n, T, D] float64, running evidence mean mu(t) = mean X(1..t); 0 before the stimulus,
             held at its final value after it (noise in feature space: the posterior mean
             E[x* | X(1..t)], see :func:`running_mean`).
    step:    [T] int, evidence steps seen at each step (t of mu(t)).
    period:  [T] int8, 0 fixation, 1 stimulus, 2 delay, 3 decision.
    """

    spec: TaskSpec
    hidden: np.ndarray
    outputs: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    mu: np.ndarray
    step: np.ndarray
    period: np.ndarray
    seed: int | None = None

    def __post_init__(self) -> None:
        check_recording(self)

    @property
    def n(self) -> int:
        return int(self.latent.shape[0])

    @property
    def decision_index(self) -> int:
        """Index of the (first) decision step, where the paper reads the hidden state. For
        targets='free_rt_paper' evidence arrives at this step too: ``step[decision_index]`` is
        T + 1 there (the official free-RT probe reads the last step, which is this one when
        decision_steps = 1)."""
        return int(self.spec.decision_start)

    def at(self, index: int | None = None) -> np.ndarray:
        """Hidden states [n, H] at step ``index`` (default: the decision step)."""
        return self.hidden[:, self.decision_index if index is None else index]

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` (the spec travels as JSON inside it)."""
        path = Path(path)
        arrays = {k: getattr(self, k) for k in _FIELDS}
        meta = {"spec": self.spec.to_dict(), "seed": self.seed}
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """Read a file written by :meth:`save` (``allow_pickle=False``: only plain arrays and the
        JSON metadata are read; nothing in the file can run code).

        Every array's size is checked from its header before it is read, then its dtype and
        shape against the stored spec; anything else than what :meth:`save` writes is one
        ValueError naming the file and the field."""
        path = Path(path)
        arrays = _read_npz(path, ("meta", *_FIELDS))
        spec, seed = _parse_meta(path, arrays.pop("meta"))
        try:
            return cls(spec=spec, seed=seed, **arrays)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _check_lead(rec: Recording) -> None:
    """Every array's shape: [n, T, ...] / [n, D] / [T] with n, T, D of the spec and latent."""
    if rec.latent.ndim != 2:
        raise ValueError(f"Recording.latent must be [n, D], got {rec.latent.shape}")
    if rec.period.ndim != 1:
        raise ValueError(f"Recording.period must be [T], got {rec.period.shape}")
    n, t = rec.latent.shape[0], rec.period.shape[0]
    for name, arr, lead in (
        ("hidden", rec.hidden, (n, t)),
        ("outputs", rec.outputs, (n, t)),
        ("mu", rec.mu, (n, t)),
    ):
        if arr.ndim != 3 or arr.shape[:2] != lead:
            raise ValueError(f"Recording.{name} must be [n={n}, T={t}, ...], got {arr.shape}")
    if rec.latent.shape[1] != rec.spec.latent_dim or rec.mu.shape[2] != rec.spec.latent_dim:
        raise ValueError(
            f"Recording latent/mu last axis must be latent_dim={rec.spec.latent_dim}, got "
            f"{rec.latent.shape}, {rec.mu.shape}"
        )


def _check_sizes(rec: Recording) -> None:
    """The sizes the spec fixes: T steps, n_tasks outputs and labels, at least one trial and one
    hidden unit."""
    n, t, k = rec.n, rec.spec.n_steps, rec.spec.n_tasks
    expected = {
        "period": ((t,), f"[T={t}]"),
        "step": ((t,), f"[T={t}]"),
        "labels": ((n, k), f"[n={n}, n_tasks={k}]"),
    }
    for name, (shape, words) in expected.items():
        if getattr(rec, name).shape != shape:
            raise ValueError(f"Recording.{name} must be {words}, got {getattr(rec, name).shape}")
    k_out = rec.spec.n_outputs  # one per task; D for a network that regresses x*
    if rec.outputs.shape[2] != k_out:
        what = "latent_dim" if rec.spec.targets == "latent" else "n_tasks"
        raise ValueError(
            f"Recording.outputs must be [n, T, {what}={k_out}] (one output per "
            f"{'latent axis' if what == 'latent_dim' else 'task'}), got {rec.outputs.shape}"
        )
    if n < 1 or rec.hidden.shape[2] < 1:
        raise ValueError(
            f"Recording.hidden must hold at least one trial and one unit, got {rec.hidden.shape}"
        )


def _check_values(rec: Recording) -> None:
    """dtype kinds, finite floats, period codes, 0/1 labels and non-negative step counts."""
    for name, (kinds, words) in _KINDS.items():
        arr = getattr(rec, name)
        if arr.dtype.kind not in kinds:
            raise ValueError(f"Recording.{name} must hold {words} dtype, got {arr.dtype}")
    for name in _FINITE:
        if not np.isfinite(getattr(rec, name)).all():
            raise ValueError(f"Recording.{name} must be finite, got NaN or infinite values")
    if not np.isin(rec.period, PERIOD_CODES).all():
        raise ValueError(
            f"Recording.period must hold period codes {list(PERIOD_CODES)}, got "
            f"{short_repr(sorted(set(rec.period.tolist())))}"
        )
    if not np.isin(rec.labels, (0, 1)).all():
        raise ValueError("Recording.labels must hold 0/1 task labels, got other values")
    if (rec.step < 0).any():
        raise ValueError("Recording.step must count evidence steps (>= 0), got negative values")


def check_recording(rec: Recording) -> None:
    """ValueError naming ``Recording.<field>`` for a recording that is not what :func:`record`
    makes: a spec that is not a TaskSpec, a seed that is not an integer, arrays of other
    shapes than [n, T, H] / [n, T, n_tasks] / [n, D] / [n, n_tasks] / [n, T, D] / [T] / [T]
    (T and D from the spec), other dtype kinds, non-finite floats or impossible values."""
    if not isinstance(rec.spec, TaskSpec):
        raise ValueError(f"Recording.spec must be an envs.TaskSpec, got {type(rec.spec).__name__}")
    if rec.seed is not None and (
        isinstance(rec.seed, bool) or not isinstance(rec.seed, (int, np.integer))
    ):
        raise ValueError(f"Recording.seed must be an integer or None, got {short_repr(rec.seed)}")
    for name in _FIELDS:
        if not isinstance(getattr(rec, name), np.ndarray):
            raise ValueError(
                f"Recording.{name} must be a numpy array, got {type(getattr(rec, name)).__name__}"
            )
    _check_lead(rec)
    _check_sizes(rec)
    _check_values(rec)


def _member_header(fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of the ``.npy`` stream ``fh`` (read without its data)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:  # 3.0 exists only for structured dtypes with non-Latin-1 names: never a recording's
        raise ValueError(f"unsupported .npy format version {version}")
    return shape, dtype


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
)
"""What reading a damaged member of a zip raises: bad CRC or headers, cut-short or corrupt
deflate / lzma / bzip2 data, an unsupported compression method (NotImplementedError) or an
encrypted member (RuntimeError)."""


def _member_size(zf: zipfile.ZipFile, name: str) -> int:
    """Bytes that array ``name`` of the open ``.npz`` archive takes once read, from its header
    alone; one larger than the memory limit (:func:`common.limits.check_bytes`; ``meta``:
    :data:`META_BYTES`) or one that needs unpickling is refused before its data is read."""
    with zf.open(f"{name}.npy") as fh:
        shape, dtype = _member_header(fh)
    if dtype.hasobject:
        raise ValueError(f"holds Python objects (dtype {dtype}); refused, nothing was read")
    nbytes = math.prod(shape) * dtype.itemsize
    check_bytes(
        f"its shape {shape} and dtype {dtype}",
        nbytes,
        **({"limit": META_BYTES} if name == "meta" else {}),
    )
    return nbytes


def _read_member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """Array ``name`` of the open ``.npz`` archive (plain arrays only: nothing is unpickled)."""
    with zf.open(f"{name}.npy") as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _member_call(path: Path, name: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on member ``name``; its errors as one ValueError naming file and array."""
    try:
        return fn(*args)
    except ValueError as e:
        raise ValueError(f"{path}: array {name!r}: {e}") from None
    except _ZIP_ERRORS as e:
        raise ValueError(
            f"{path}: array {name!r} is truncated or corrupt ({type(e).__name__}: "
            f"{short_repr(str(e))})"
        ) from None


def _read_members(path: Path, zf: zipfile.ZipFile, names: tuple[str, ...]) -> dict:
    """The arrays ``names`` of the open archive: every header is checked (each array and their
    total within the memory limit) before any data is read. A missing, oversized or
    unreadable array is a ValueError naming the file and the array."""
    present = {n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")}
    missing = [n for n in names if n not in present]
    if missing:
        raise ValueError(
            f"{path}: not a recording: arrays {missing} missing (a recording holds {list(names)})"
        )
    total = sum(_member_call(path, name, _member_size, zf, name) for name in names)
    check_bytes(f"{path}: the recording's arrays together", total)
    return {name: _member_call(path, name, _read_member, zf, name) for name in names}


def _read_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of the ``.npz`` file ``path``, each size-checked from its header
    before its data is read (``np.load`` would allocate whatever a header claims). A missing
    path or a folder, a file that is not a readable zip of ``.npy`` arrays, a missing array or
    one too large is a ValueError naming the file (and the array)."""
    if not path.is_file():
        if path.is_dir():
            raise ValueError(f"{path}: not a recording file (a folder)")
        what = "not a regular file" if path.exists() else "no such file"
        raise ValueError(f"{path}: not a recording file ({what})")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_members(path, zf, names)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(
            f"{path}: not a recording file (not a readable .npz archive: empty, cut short or "
            f"not a zip; {type(e).__name__}: {short_repr(str(e))})"
        ) from None


def _parse_meta(path: Path, meta: np.ndarray) -> tuple[TaskSpec, int | None]:
    """(spec, seed) from a recording's ``meta`` array: a JSON string of ``{"spec": {...},
    "seed": int | None}``; anything else is a ValueError naming the file and the field."""
    if meta.dtype.kind != "U" or meta.shape != ():
        raise ValueError(
            f"{path}: meta must be one JSON string, got dtype {meta.dtype} shape {meta.shape}"
        )
    try:
        data = json.loads(str(meta))
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: meta is not valid JSON ({short_repr(str(e))})") from None
    if not isinstance(data, dict) or "spec" not in data or "seed" not in data:
        raise ValueError(
            f"{path}: meta must be a JSON object with 'spec' and 'seed', got {short_repr(data)}"
        )
    if not isinstance(data["spec"], dict):
        raise ValueError(
            f"{path}: meta.spec must be a TaskSpec object, got {type(data['spec']).__name__}"
        )
    try:
        spec = TaskSpec.from_dict(data["spec"])
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: meta.spec is not a valid TaskSpec ({e})") from None
    seed = data["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{path}: meta.seed must be an integer or null, got {short_repr(seed)}")
    return spec, seed


_POSTERIOR_MEANS: dict[tuple[TaskSpec, str], np.ndarray] = {}
MU_GRID = 48
"""``n_grid`` of the observer that computes mu with noise in feature space: 96 points per axis
instead of the default 192, a quarter of the cells. The posterior mean is a ratio of two smooth
integrals, so the coarser midpoint rule moves it little (tests/probes/test_entangled_inputs.py
holds it within 0.005 of the default grid); label probabilities, a step function integrated,
keep the finer grid."""


def _feature_posterior_mean(
    spec: TaskSpec, stimulus_evidence: np.ndarray, last_only: bool = False
) -> np.ndarray:
    """E[x* | X(1..t)] [B, Te, D] of the ideal observer ([B, D] after the last step with
    ``last_only``), kept for the last few evidence arrays: a probe records the same trials
    again for the untrained control, and with noise in feature space this posterior (one
    product per trial and step on the observer's grid) is what a recording costs most."""
    from multitask_evidence.envs.ideal import IdealObserver

    key = (spec, last_only, hashlib.sha1(stimulus_evidence.tobytes()).hexdigest())
    if key not in _POSTERIOR_MEANS:
        if len(_POSTERIOR_MEANS) >= 4:
            _POSTERIOR_MEANS.pop(next(iter(_POSTERIOR_MEANS)))
        observer = IdealObserver(spec, n_grid=MU_GRID)
        _POSTERIOR_MEANS[key] = observer.posterior_mean(stimulus_evidence, last_only=last_only)
    return _POSTERIOR_MEANS[key].copy()


def running_mean(
    spec: TaskSpec, evidence: np.ndarray, *, timeline: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """mu [B, T, D] (running mean of the evidence, 0 before the stimulus, held after the last
    evidence step) and the evidence steps seen [T], from raw evidence [B, T, D] (0 outside the
    evidence steps). For targets='free_rt_paper' the decision steps carry evidence too, so at
    the decision step mu is the mean of T + 1 samples and ``seen`` is T + 1.

    With noise in feature space (``noise_stage='features'``, evidence [B, T, F]) the evidence's
    own mean lives in feature space; mu is then the posterior mean E[x* | X(1..t)] [B, T, D] of
    the ideal observer (``envs.ideal.IdealObserver.posterior_mean``), the estimate of x* that
    the data support, on the same timeline. That posterior costs one product per trial and
    step on the observer's grid; ``timeline=False`` computes it only after the last evidence
    step (held from there on, as always) and leaves the earlier steps at 0, as before the
    stimulus (not computed: a Recording holds finite values), for probes that read mu at the
    decision step only."""
    k = np.arange(spec.n_steps)
    stim = (k >= spec.stimulus_start) & (k < spec.evidence_stop)
    seen = np.cumsum(stim)
    if spec.noise_stage == "features":
        s0, s1 = spec.stimulus_start, spec.evidence_stop
        ev = np.ascontiguousarray(evidence[:, s0:s1])
        mu = np.zeros((evidence.shape[0], spec.n_steps, spec.latent_dim))
        if timeline:
            post = _feature_posterior_mean(spec, ev)
            mu[:, s0:s1] = post
            mu[:, s1:] = post[:, -1:]
        else:
            mu[:, s1 - 1 :] = _feature_posterior_mean(spec, ev, last_only=True)[:, None]
        return mu, seen.astype(np.int64)
    total = np.cumsum(evidence * stim[None, :, None], axis=1)
    mu = total / np.maximum(seen, 1)[None, :, None]
    return mu, seen.astype(np.int64)


def _forward_fn(run: Any) -> Any:
    """A callable obs [B, T, O] numpy -> (hidden, outputs) numpy for any supported agent."""
    if hasattr(run, "hidden_and_outputs"):
        return run.hidden_and_outputs
    net = getattr(run, "network", run)
    if hasattr(net, "forward") and hasattr(net, "activate"):
        import torch

        def fn(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            device = next(net.parameters()).device
            was_training = net.training
            net.eval()
            with torch.no_grad():
                readout, hidden = net(torch.as_tensor(obs, device=device))
                out = net.activate(readout)
            net.train(was_training)
            return hidden.cpu().numpy(), out.cpu().numpy()

        return fn
    raise ValueError(
        "run must have hidden_and_outputs(obs) or be an agents Network (forward + activate), got "
        f"{type(run).__name__}"
    )


def record(
    run: Any,
    spec: TaskSpec | None = None,
    n: int = 4096,
    seed: int = 0,
    region: Region | dict | None = None,
    latent: np.ndarray | None = None,
    batch_size: int = 1024,
    *,
    mu_timeline: bool = True,
) -> Recording:
    """Run ``run`` on n fresh trials of ``spec`` and record its states.

    spec: defaults to ``run.spec``. region / latent: as ``envs.generate`` (restrict x* to orthants
    or a half-space, or give the latents [n, D], e.g. a grid for tuning maps).
    batch_size: trials per forward pass (memory only; the result does not depend on it).
    mu_timeline: mu at every step (default); False: with noise in feature space, mu only from
    the last evidence step on (0 before, not computed; see :func:`running_mean`), for a probe
    that reads it at the decision step only. No effect with noise in latent space.
    """
    from multitask_evidence.probes.adapters import as_recordable

    if spec is not None and not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    run = as_recordable(run, spec)
    if spec is None:
        spec = getattr(run, "spec", None)
        if spec is None:
            raise ValueError("spec is required when run has no .spec")
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    fn = _forward_fn(run)
    batch = generate(spec, n, np.random.default_rng(seed), region=region, latent=latent)
    hiddens, outs = [], []
    for start in range(0, n, batch_size):  # a loop over batches, not trials
        h, o = fn(batch.obs[start : start + batch_size])
        hiddens.append(np.asarray(h, dtype=np.float32))
        outs.append(np.asarray(o, dtype=np.float32))
    hidden = np.concatenate(hiddens)
    outputs = np.concatenate(outs)
    if hidden.shape[:2] != (n, spec.n_steps) or outputs.shape[:2] != (n, spec.n_steps):
        raise ValueError(
            f"agent returned hidden {hidden.shape} / outputs {outputs.shape}; expected "
            f"[{n}, {spec.n_steps}, ...]: is the run's spec the one you passed?"
        )
    if not (np.isfinite(hidden).all() and np.isfinite(outputs).all()):
        raise ValueError("the agent produced non-finite hidden states or outputs")
    mu, seen = running_mean(spec, batch.evidence, timeline=mu_timeline)
    return Recording(
        spec=spec,
        hidden=hidden,
        outputs=outputs,
        latent=batch.latent,
        labels=batch.labels,
        mu=mu,
        step=seen,
        period=batch.period,
        seed=int(seed),
    )


def regenerate(rec: Recording) -> TrialBatch:
    """The trials [n] of a recording drawn again from its seed (``envs.generate`` is
    deterministic given the seed): observations, raw evidence and labels of exactly those trials.

    Raises ValueError for a recording with no seed, RuntimeError when the regenerated latents
    differ from the recorded ones (a recording of given latents or of a region)."""
    if rec.seed is None:
        raise ValueError("the recording has no seed: its trials cannot be drawn again")
    batch = generate(rec.spec, rec.n, np.random.default_rng(int(rec.seed)))
    if not np.allclose(batch.latent, rec.latent):
        raise RuntimeError("regenerated trials differ from the recording's (given latents?)")
    return batch


def readout_logits(
    run: Any, obs: np.ndarray, index: int, batch_size: int = 1024
) -> np.ndarray | None:
    """The network's logits [n, N] (its read-out before the sigmoid) at step ``index`` of
    trials obs [n, T, O], or None when the agent has no such read-out (not an
    ``agents.networks.Network`` with sigmoid outputs, e.g. an RL policy: then only its
    probabilities are known). Logits keep what probabilities lose where they round to 0 or 1."""
    net = getattr(run, "network", run)
    if not (
        hasattr(net, "forward")
        and hasattr(net, "activate")
        and hasattr(net, "parameters")
        and getattr(net, "output", None) == "sigmoid"
    ):
        return None
    import torch

    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, obs.shape[0], batch_size):  # a loop over batches, not trials
                x = torch.as_tensor(np.asarray(obs[start : start + batch_size], dtype=np.float32))
                readout, _ = net(x.to(device))
                out.append(readout[:, index].double().cpu().numpy())
    finally:
        net.train(was_training)
    return np.concatenate(out)


def load_recording(path: str | Path) -> Recording:
    """A :class:`Recording` saved with ``Recording.save`` or ``mte probe --save-recording``;
    a file that is not one is a ValueError naming the file and the field (see
    :meth:`Recording.load`)."""
    return Recording.load(path)

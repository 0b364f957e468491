"""Shared machinery of the single env and the native vector env: options, spaces, trial blocks.

Both envs read trials from the one generator (:mod:`envs.trials`) in *blocks* of K trials per
(sub-)environment: for each block the env's own ``np.random.Generator`` draws
``sample_latents(spec, rng, K)``, then ``sample_noise(spec, rng, K)``, then (wager with
``offer_prob < 1`` only) ``rng.random(K) < offer_prob`` for the opt-out offers. The trials are then
built by ``build_trials``. So an env seeded s shows exactly ``generate(spec, K,
np.random.default_rng(s))`` as its first K trials, and sub-env i of a vector env seeded s equals a
single env seeded s + i. Blocks also let the ideal observer's answer be computed for K trials at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from multitask_evidence.common.limits import check_bytes
from multitask_evidence.envs.reports import (
    SCORINGS,
    ReportKind,
    check_choice,
    check_unit,
    report_kind,
)
from multitask_evidence.envs.scoring import RESPONSES
from multitask_evidence.envs.spec import TaskSpec, field_names
from multitask_evidence.envs.trials import (
    Region,
    TrialBatch,
    build_trials,
    sample_latents,
    sample_noise,
)

DEFAULT_BLOCK_SIZE = 16


@dataclass(frozen=True)
class EnvOptions:
    """Report / response options of the env (everything that is not part of the TaskSpec).

    report: the name of a registered report kind (:data:`envs.reports.REPORT_KINDS`: 'choice' |
        'wager' | 'confidence' built in); its :class:`envs.reports.ReportKind` is ``kind``.
    response: 'fixed' (score at the decision steps) | 'free' (wait/commit component; see env doc).
    scoring: 'log' | 'brier' (confidence only).
    sure_reward: reward of an offered opt-out, in [0, 1] (kinds with an opt-out: wager).
    offer_prob: probability that a trial offers the opt-out, in [0, 1]; below 1 a cue channel is
        appended to the observation (kinds with an opt-out only: wager).
    evidence_cost: reward subtracted per evidence sample seen (free response only), >= 0.
    block_size: K, trials drawn per block per environment (>= 1).
    ideal_info: compute the ideal observer's answer and reward for the end-of-trial info.
    """

    report: str = "choice"
    response: str = "fixed"
    scoring: str = "log"
    sure_reward: float = 0.7
    offer_prob: float = 1.0
    evidence_cost: float = 0.0
    block_size: int = DEFAULT_BLOCK_SIZE
    ideal_info: bool = True

    def __post_init__(self) -> None:
        kind = report_kind(self.report)
        check_choice("response", self.response, RESPONSES)
        check_choice("scoring", self.scoring, SCORINGS)
        check_unit("sure_reward", self.sure_reward)
        check_unit("offer_prob", self.offer_prob)
        kind.check_options(self)
        c = self.evidence_cost
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c < 0:
            raise ValueError(f"evidence_cost must be a finite number >= 0, got {c!r}")
        if self.response != "free" and c != 0:
            raise ValueError(
                "evidence_cost applies to response='free' only (allowed: 0.0 otherwise)"
            )
        k = self.block_size
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"block_size must be an integer >= 1, got {k!r}")
        if not isinstance(self.ideal_info, bool):
            raise ValueError(f"ideal_info must be True or False, got {self.ideal_info!r}")

    @property
    def kind(self) -> ReportKind:
        """The report kind named by ``report``."""
        return report_kind(self.report)

    @property
    def has_cue(self) -> bool:
        """True when the observation carries the opt-out cue channel (after the go channel)."""
        return self.kind.has_opt_out and self.offer_prob < 1.0

    @property
    def free(self) -> bool:
        return self.response == "free"

    def obs_dim(self, spec: TaskSpec) -> int:
        return spec.obs_dim + int(self.has_cue)

    def trial_steps(self, spec: TaskSpec) -> int:
        """Steps of a full-length trial: all of them (fixed) or fixation + stimulus (free)."""
        return spec.stimulus_start + spec.stimulus_steps if self.free else spec.n_steps

    def observation_space(self, spec: TaskSpec) -> spaces.Box:
        """Box float32 [O']: encoded evidence (any finite float32: the noise is unbounded, and
        infinite bounds make Gymnasium's checker warn), go channel in [0, 1], [cue in [0, 1]]."""
        o = self.obs_dim(spec)
        big = np.finfo(np.float32).max
        low = np.full(o, -big, dtype=np.float32)
        high = np.full(o, big, dtype=np.float32)
        low[spec.evidence_dim :] = 0.0
        high[spec.evidence_dim :] = 1.0
        return spaces.Box(low, high, dtype=np.float32)

    def action_space(self, spec: TaskSpec) -> spaces.Space:
        """The report kind's action space for the spec's N tasks (plus commit: free response)."""
        return self.kind.action_space(spec.n_tasks, self.free)


OPTION_NAMES = tuple(f for f in EnvOptions.__dataclass_fields__)


def split_kwargs(spec: TaskSpec | None, kwargs: dict) -> tuple[TaskSpec, EnvOptions]:
    """Split constructor kwargs into a TaskSpec (``spec`` replaced by any TaskSpec fields given) and
    the EnvOptions. Unknown names raise ValueError listing what is allowed."""
    fields = set(field_names())
    unknown = set(kwargs) - fields - set(OPTION_NAMES)
    if unknown:
        raise ValueError(
            f"unknown argument(s) {sorted(unknown)}; allowed: TaskSpec fields {sorted(fields)} "
            f"and env options {list(OPTION_NAMES)}"
        )
    if spec is None:
        spec = TaskSpec()
    elif not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be a TaskSpec or None, got {type(spec).__name__}")
    task_kw = {k: v for k, v in kwargs.items() if k in fields}
    if task_kw:
        spec = spec.replace(**task_kw)
    if spec.evidence_steps != spec.stimulus_steps:
        # the envs' episodes, free responses and ideal-observer bookkeeping assume evidence
        # only in the stimulus period
        raise ValueError(
            f"TaskSpec.targets={spec.targets!r} puts evidence in the decision steps, which the "
            "Gymnasium envs do not model; train it with the supervised trainer"
        )
    opts = EnvOptions(**{k: v for k, v in kwargs.items() if k in OPTION_NAMES})
    return spec, opts


def check_latent(spec: TaskSpec, value: object, shape: tuple[int, ...]) -> np.ndarray:
    """A ``reset(options={"latent": ...})`` value as float64 of ``shape``, inside the prior's
    support [-0.5, 0.5]^D (both priors: uniform, and the copula Phi(z) - 0.5); anything else is
    a ValueError naming the option and what is allowed."""
    try:
        x = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"reset option 'latent' must be numbers, got {value!r}") from None
    if x.shape != shape or not np.all(np.isfinite(x)):
        raise ValueError(
            f"reset option 'latent' must be a finite array of shape {shape}, got shape {x.shape}"
        )
    if np.any(np.abs(x) > 0.5):
        raise ValueError(
            f"reset option 'latent' must lie in the prior's support [-0.5, 0.5]^{spec.latent_dim}"
            f", got {x.tolist() if x.size <= 8 else 'values up to ' + str(np.abs(x).max())}"
        )
    return x


def native_ints(a: np.ndarray) -> np.ndarray:
    """An integer array in the machine's byte order (big-endian actions are valid actions)."""
    if a.dtype.kind in "iu" and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


# ---- blocks --------------------------------------------------------------------------------
@dataclass
class Block:
    """R trials ready to be played (R = K for the single env, M * K for the vector env).

    obs:     [R, T, O'] float32 observations (free response: go channel 0 from stimulus onset;
             wager with offer_prob < 1: cue channel last, 1 at delay + decision steps if offered).
    latent:  [R, D] float64; labels [R, N] float32; noise [R, Ts, D] float64; offered [R] bool.
    batch:   the generator's TrialBatch (for the ideal observer).
    ideal_action: [R, N] (fixed) or [R, Ts, N] (free: after t + 1 samples); None until computed.
    ideal_score:  [R] or [R, Ts] score of ideal_action (no evidence cost).
    """

    obs: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    noise: np.ndarray
    offered: np.ndarray
    batch: TrialBatch
    ideal_action: np.ndarray | None = None
    ideal_score: np.ndarray | None = None


class TrialSource:
    """What the single env and the vector env share: the task and options (from the constructor
    kwargs, :func:`split_kwargs`), the lazily built ideal observer, and the blocks of trials drawn,
    built and scored from them.

    Attributes: ``spec`` (TaskSpec), ``options`` (EnvOptions).
    """

    def __init__(self, spec: TaskSpec | None, kwargs: dict[str, Any]) -> None:
        self.spec, self.options = split_kwargs(spec, kwargs)
        k = int(self.options.block_size)
        check_bytes(f"block_size={k} (trials drawn at once per env)", k * self.spec.trial_bytes)
        self._observer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # the observer holds caches (and scipy objects); it is rebuilt when next needed
        return {**self.__dict__, "_observer": None}

    @property
    def observer(self) -> Any:
        """The task's :class:`envs.ideal.IdealObserver` (built on first use)."""
        if self._observer is None:
            from multitask_evidence.envs.ideal import IdealObserver

            self._observer = IdealObserver(self.spec)
        return self._observer

    def close(self) -> None:
        """Drop the ideal observer (and its caches)."""
        self._observer = None

    def draw(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The random part of a block of k trials, in the fixed draw order:
        latents [k, D], noise [k, Ts, D], offered [k] bool (opt-out offers)."""
        spec, opts = self.spec, self.options
        latent = sample_latents(spec, rng, k)
        noise = sample_noise(spec, rng, k)
        if opts.has_cue:
            offered = rng.random(k) < opts.offer_prob
        else:
            offered = np.full(k, opts.kind.has_opt_out)
        return latent, noise, offered

    def build(self, latent: np.ndarray, noise: np.ndarray, offered: np.ndarray) -> Block:
        """Build the trials of a block from its random parts (batched over all R trials)."""
        spec, opts = self.spec, self.options
        batch = build_trials(spec, latent, noise)
        obs = batch.obs
        if opts.free:
            obs[:, spec.stimulus_start :, -1] = 0.0  # responses allowed from stimulus onset
        if opts.has_cue:
            cue = np.zeros(obs.shape[:2] + (1,), dtype=np.float32)
            cue[offered, spec.stimulus_start + spec.stimulus_steps :, 0] = 1.0
            obs = np.concatenate([obs, cue], axis=2)
        return Block(obs, batch.latent, batch.labels, noise, offered, batch)

    def fill_ideal(self, block: Block) -> None:
        """Fill ``block.ideal_action`` / ``ideal_score`` (see :meth:`ideal`)."""
        block.ideal_action, block.ideal_score = self.ideal(
            block.batch.stimulus_evidence, block.labels, block.offered
        )

    def ideal(
        self, stimulus_evidence: np.ndarray, labels: np.ndarray, offered: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ideal observer's report on R trials' evidence and its score (no evidence cost).

        stimulus_evidence [R, Ts, D] raw evidence, labels [R, N], offered [R] bool. Fixed
        response: after all Ts samples, report [R, N] and score [R]; free response: after every
        t = 1..Ts samples, [R, Ts, N] and [R, Ts].
        """
        opts = self.options
        if opts.free:
            q = self.observer.posterior(stimulus_evidence)  # [R, Ts, N]
            offered = offered[:, None]
            labels = labels[:, None, :]
        else:
            q = self.observer.final_posterior(stimulus_evidence)  # [R, N]
        kind = opts.kind
        action = kind.ideal_report(q, opts, offered)
        return action, kind.score(action, labels, opts, offered)

    def reset_latents(
        self,
        options: dict[str, Any],
        rngs: list[np.random.Generator],
        shape: tuple[int, ...],
        rows: np.ndarray | None = None,
        own: tuple[str, ...] = (),
    ) -> np.ndarray | None:
        """The latents [R, D] that ``reset(options=...)`` fixes for the next trial of R envs:
        ``latent`` (an array of ``shape``, [D] or [M, D], of which ``rows`` are the R reset
        envs) or ``region`` (a Region or dict; one draw from each of the R generators ``rngs``);
        None when neither is given. ValueError for an unknown option (``own``: the caller's other
        option names) or for both at once."""
        allowed = ("latent", "region", *own)
        unknown = set(options) - set(allowed)
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; allowed: {', '.join(allowed)}"
            )
        latent, region = options.get("latent"), options.get("region")
        if latent is not None and region is not None:
            raise ValueError("reset options: give either 'latent' or 'region', not both")
        if latent is not None:
            x = check_latent(self.spec, latent, shape).reshape(-1, self.spec.latent_dim)
            return x if rows is None else x[rows]
        if region is not None:
            region = Region.coerce(region)
            return np.concatenate([sample_latents(self.spec, rng, 1, region) for rng in rngs])
        return None

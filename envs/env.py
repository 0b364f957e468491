"""`MultiTaskEvidenceEnv`: one trial of the multi-task evidence task as one Gymnasium episode.

See the class docstring for spaces, rewards, termination and arguments. Trials come from the one
generator (:mod:`envs.trials`) in blocks (:mod:`envs.stream`), scored by :mod:`envs.scoring`.
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from multitask_evidence.common.validate import plain
from multitask_evidence.envs import render as _render
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.stream import Block, EnvOptions, TrialSource, native_ints
from multitask_evidence.envs.trials import DECISION, FIXATION, STIMULUS, period_codes

_UNSIGNED = {
    np.dtype(t): np.dtype(u) for t, u in [("i1", "u1"), ("i2", "u2"), ("i4", "u4"), ("i8", "u8")]
}
_UNSIGNED.update({np.dtype(u): np.dtype(u) for u in ("u1", "u2", "u4", "u8")})


_INT64 = np.dtype(np.int64)
# Box [0, 1] check on bit patterns: for IEEE floats, 0 <= x <= 1 iff the bits (as unsigned) are
# <= bits(1.0); negatives have the sign bit set and NaNs exceed bits(inf).
_FLOAT_BITS = {
    np.dtype(np.float32): (np.dtype(np.uint32), np.float32(1.0).view(np.uint32)),
    np.dtype(np.float64): (np.dtype(np.uint64), np.float64(1.0).view(np.uint64)),
}
_LITTLE = sys.byteorder == "little"


class TrialEndedError(ResetNeeded):
    """``step()`` was called after the trial (episode) ended, without ``reset()``."""


class MultiTaskEvidenceEnv(gym.Env[np.ndarray, np.ndarray]):
    """Multi-task evidence aggregation (Vafidis, Bhargava & Rangel 2025), one trial per episode.

    A hidden latent x* [D] is fixed for the trial; each stimulus step shows a noisy sample
    X(t) = x* + eps(t) (through the task's frozen encoder); the agent reports, for N boundaries, on
    which side x* lies. The task is a :class:`envs.TaskSpec` (defaults: the paper's task, D = 2,
    N = 24, sigma = 0.2, 1 fixation + 20 stimulus + 1 decision step, ReLU encoder on).

    **Observation** ``Box(float32, (O',))``: the generator's observation row: encoded evidence
    channels (``spec.evidence_dim``, unbounded; f(0) outside the stimulus period), then the go
    channel (1 before the decision period, 0 at the decision steps; free response: 1 during
    fixation only, 0 from stimulus onset on), then, for ``report="wager"`` with ``offer_prob < 1``
    only, a cue channel that is 1 at the delay and decision steps of trials that offer the opt-out.
    ``reset`` returns step 0's row; step k of a trial returns row k + 1; the terminal observation
    repeats the last row (a copy). Returned observations are views of the trial block's rows: each
    row is returned once and the env never writes a row after returning it, so observations kept
    by the caller stay valid (the same holds for the info arrays, which are never shared between
    steps).

    **Actions** (validated on every step; a bad action raises ValueError): the report kind's
    action space (``report=`` names a :class:`envs.reports.ReportKind`, which owns its actions,
    scoring, ideal report and rendering):

    - ``report="choice"``: ``MultiDiscrete([2] * N)``, the current answer to every task.
    - ``report="wager"``: ``MultiDiscrete([3] * N)``: 0 below, 1 above, 2 opt out (earns
      ``sure_reward`` if the trial offers it, else 0).
    - ``report="confidence"``: ``Box(0, 1, (N,), float32)``, reported P(y_i = 1), scored by the
      strictly proper ``scoring`` rule ('log' default, or 'brier'), normalised so 0.5 scores 0 and a
      certain correct report 1 (see :mod:`envs.scoring`).
    - any kind added with :func:`envs.reports.register_report_kind`.
    - ``response="free"`` adds one last component, wait (0) / commit (1) (for a Box report: one
      more Box component, > 0.5 means commit).

    **Rewards and termination**, fixed response (``response="fixed"``): reward 0 except at decision
    steps, where the action is scored: trial score (mean over tasks, fraction correct for choice)
    divided by ``decision_steps``, so a trial's return is in [min score, 1]. The trial terminates
    after the last decision step. Free response: a commit during fixation aborts the trial (reward
    0, ``info['aborted'] = True``); a commit at a stimulus step, after t evidence samples, scores
    the report given with that action and ends the trial; at the deadline (the last stimulus step)
    the report is scored as if committed (delay and decision steps are not used). Every stimulus
    step costs ``evidence_cost`` (reward -evidence_cost at each step whose sample was seen, so the
    return is score - evidence_cost * t). Never truncated.

    **info**: every step ``latent`` [D], ``labels`` [N], ``step`` (steps taken in the trial, 0 at
    reset), ``period`` (period code of the returned observation: 0 fixation, 1 stimulus, 2 delay,
    3 decision), ``offered`` (wager). At the end of a trial also ``correct`` [N] bool (last
    scored report; opt-outs are not correct), ``score`` (the report's score without costs),
    ``ideal_action`` [N] and ``ideal_reward``: the ideal observer's report and reward on the same
    evidence (free response: after the same number of samples; its reward minus the same evidence
    cost), and for free response ``reaction_time`` (evidence samples seen at commit) and ``aborted``.

    **Rendering** (``render_mode``): ``'rgb_array'``: ``render()`` returns the trial so far as a
    uint8 image ``envs.render.RENDER_SHAPE`` = (720, 640, 3): raw evidence per latent dimension
    with x* dashed, the encoded observation channels, the go signal (and cue), the agent's reports
    per task with the labels beside them at the decision, and the ideal observer's posterior
    P(y_i = 1 | X(1..t)) per task (:mod:`envs.render`). ``'human'`` shows the same frames in a
    window at ``metadata['render_fps']`` (10: one step is 100 ms) and needs a display
    (RuntimeError otherwise). The class's ``metadata['render_modes']`` lists both; an instance's
    lists 'human' only where a display exists, so Gymnasium's checker passes on headless machines.

    **Episode length**: a trial is at most ``trial_steps`` steps (fixed response: ``spec.n_steps``;
    free: fixation + stimulus). The ids register no TimeLimit (a wrapper at the trial length would
    mark the last step truncated as well as terminated, and a registered length could not follow
    the TaskSpec given to ``gym.make``); instead ``env.spec.max_episode_steps`` reports this env's
    own trial length.

    **Seeding**: ``reset(seed=s)`` reseeds ``self.np_random``; trials are drawn in blocks of
    ``block_size`` K: an env seeded s plays ``envs.generate(spec, K, np.random.default_rng(s))`` as
    its first K trials, then the next block from the same generator. ``reset(options=...)`` may set
    ``latent`` (x* [D] for the next trial) or ``region`` (a :class:`envs.Region` or dict) for the
    next trial: its noise is still the block's, its latent is replaced (``region``: drawn from
    ``np_random``).

    Args:
        spec: a TaskSpec (default ``TaskSpec()``); any TaskSpec field given as a keyword replaces it.
        report: a registered report kind's name: 'choice' | 'wager' | 'confidence' built in.
        response: 'fixed' | 'free'.
        scoring: 'log' | 'brier' (confidence).
        sure_reward: opt-out reward in [0, 1] (wager; default 0.7).
        offer_prob: fraction of trials offering the opt-out, in [0, 1] (wager; default 1).
        evidence_cost: cost per evidence sample, >= 0 (free response).
        block_size: trials drawn per block (default 16).
        ideal_info: put the ideal observer's answer and reward in the end-of-trial info (default
            True; False skips the observer).
    Every bad value raises ValueError naming the argument and the allowed values.

    Version History:
        * v0: the paper's task (D = 2, N = 24, sigma = 0.2, frozen ReLU encoder, 1 fixation +
          20 stimulus + 1 decision step) with choice, wager and confidence reports, fixed and
          free response, ``MultiTaskEvidence*-v0``. Later TaskSpec options (noise in feature
          space, the place-cell and Fourier encoders, ``targets='latent'``) default to v0's
          trials, which stay the same draw for draw.
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array", "human"],
        "render_fps": _render.RENDER_FPS,
        # as neurogym's tasks carry theirs: where the task comes from, and what it is
        "paper_link": "https://arxiv.org/abs/2407.11249",
        "paper_name": "Disentangling Representations through Multi-task Learning (ICLR 2025)",
        "tags": ["perceptual", "multi-task", "evidence accumulation", "two-alternative"],
    }

    def __init__(
        self, spec: TaskSpec | None = None, *, render_mode: str | None = None, **kwargs: Any
    ) -> None:
        _render.check_render_mode(render_mode)
        # this instance's modes: 'human' only where a display exists (Gymnasium's checker
        # opens every listed mode)
        self.metadata = {**type(self).metadata, "render_modes": _render.available_modes()}
        self.render_mode = render_mode
        self._window: _render.HumanWindow | None = None
        self._actions: list[np.ndarray] = []
        self._posterior: np.ndarray | None = None
        self._gym_spec: Any = None
        self._src = TrialSource(spec, kwargs)
        task, opts = self._src.spec, self._src.options
        self.task_spec: TaskSpec = task
        self.options: EnvOptions = opts
        self.observation_space = opts.observation_space(task)
        self.action_space = opts.action_space(task)
        self._init_constants()
        self._block: Block | None = None
        self._pos = 0
        self._k = -1  # step index of the observation last returned; -1: no trial running

    # ---- setup -------------------------------------------------------------------------------
    def _init_constants(self) -> None:
        s, o = self.task_spec, self.options
        self._free = o.free
        self._kind = o.kind
        self._box = isinstance(self.action_space, gym.spaces.Box)
        self._n = s.n_tasks
        self._T = o.trial_steps(s)
        self._s0 = s.stimulus_start
        self._last_stim = s.stimulus_start + s.stimulus_steps - 1
        self._periods = [int(p) for p in period_codes(s)]
        self._inv_dec = 1.0 / s.decision_steps
        self._ashape = self.action_space.shape
        nvec = () if self._box else self.action_space.nvec
        self._nvec_u = {} if self._box else {dt: nvec.astype(u) for dt, u in _UNSIGNED.items()}
        # byte-count fast path for native little-endian int64 actions (see _check_action): the
        # low-byte values 1..n_options-1 a report component may take
        n_opt = self._kind.n_options
        fast = not self._box and _LITTLE and n_opt is not None and n_opt <= 256
        self._byte_ok = bytes(range(1, n_opt)) if fast else None
        self._last_binary = fast and self._free and n_opt > 2
        # bit-mask fast path when every component allows 0..2^b - 1 (choice: b = 1): read as one
        # little-endian integer, the action is valid iff no bit outside each word's low b bits is set
        self._bad_bits: int | None = None
        if fast and all(v & (v - 1) == 0 for v in (int(x) for x in nvec)):
            words = (((1 << 64) - 1) ^ (int(v) - 1) for v in nvec)
            self._bad_bits = sum(w << (64 * j) for j, w in enumerate(words))
        self._decision = [p == DECISION for p in self._periods]
        self._opt_out = self._kind.has_opt_out

    @property
    def trial_steps(self) -> int:
        """Steps of a full-length trial (the most steps an episode takes)."""
        return self._T

    @property
    def spec(self) -> Any:
        """The Gymnasium EnvSpec set by ``gym.make``, with ``max_episode_steps`` filled in with
        this env's trial length when the registration leaves it open."""
        return self._gym_spec

    @spec.setter
    def spec(self, value: Any) -> None:
        if value is not None and getattr(value, "max_episode_steps", 0) is None:
            import dataclasses

            value = dataclasses.replace(value, max_episode_steps=self._T)
        self._gym_spec = value

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_window"] = None
        state.pop("_nvec_u", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_constants()

    # ---- trials ------------------------------------------------------------------------------
    def _new_block(self) -> None:
        src = self._src
        self._set_block(src.build(*src.draw(self.np_random, self.options.block_size)))
        self._pos = 0

    def _set_block(self, block: Block) -> None:
        """Play ``block`` next. Its latents [K, D] and labels [K, N] are also repeated once per
        step ([K, T, D], [K, T, N]) so that every step's info gets its own rows without a copy
        per step (info arrays are never shared between steps nor written by the env later)."""
        self._block = block
        t = self._T
        self._info_latent = np.repeat(block.latent[:, None, :], t, axis=1)
        self._info_labels = np.repeat(block.labels[:, None, :], t, axis=1)

    def _start_trial(self, options: dict[str, Any] | None) -> None:
        b = self._block
        if options:
            self._override_trial(options)
        i = self._pos
        self._obs_trial = b.obs[i]
        self._latent = b.latent[i]
        self._labels = b.labels[i]
        self._step_latent = self._info_latent[i]
        self._step_labels = self._info_labels[i]
        self._offered = bool(b.offered[i])
        self._k = 0
        self._last_report = None
        self._last_score = 0.0
        self._actions = []
        self._posterior = None
        self._last_scores: tuple[float | None, float | None] = (None, None)

    def _override_trial(self, options: dict[str, Any]) -> None:
        b, i = self._block, self._pos
        x = self._src.reset_latents(options, [self.np_random], (self.task_spec.latent_dim,))
        if x is None:
            return
        one = self._src.build(x, b.noise[i : i + 1], b.offered[i : i + 1])
        b.obs[i] = one.obs[0]
        b.latent[i] = one.latent[0]
        b.labels[i] = one.labels[0]
        b.batch.evidence[i] = one.batch.evidence[0]
        b.batch.latent[i] = one.batch.latent[0]
        self._info_latent[i] = one.latent[0]
        self._info_labels[i] = one.labels[0]
        b.ideal_action = b.ideal_score = None  # recomputed with the new trial when needed

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start the next trial (with ``seed``: reseed and start a fresh block)."""
        seed = plain(seed)  # a numpy integer is a seed too (Gymnasium takes Python ints only)
        super().reset(seed=seed)
        if seed is not None or self._block is None:
            self._new_block()
        else:
            self._pos += 1
            if self._pos >= self.options.block_size:
                self._new_block()
        self._start_trial(options)
        if self.render_mode == "human":
            self.render()
        return self._obs_trial[0], self._info(0)

    # ---- state (for exact resume of a training run) ----------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The env's whole dynamic state as numpy arrays and JSON-able values: the generator
        state, the current block's random parts (latents, noise, offers: the trials are rebuilt
        from them), the position in the block and in the trial, and the last scored report.
        :meth:`set_state` on a fresh env with the same spec and options continues identically."""
        b = self._block
        return {
            "rng": self.np_random.bit_generator.state,
            "pos": self._pos,
            "k": self._k,
            "block": None
            if b is None
            else {"latent": b.latent, "noise": b.noise, "offered": b.offered},
            "last_report": getattr(self, "_last_report", None),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (ValueError naming the part that does not fit
        this env's spec and options)."""
        s, k_max = self.task_spec, self.options.block_size
        rng = np.random.Generator(np.random.PCG64())
        try:
            rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"env state 'rng' is not a PCG64 generator state ({e})") from None
        pos, k = int(state["pos"]), int(state["k"])
        if not 0 <= pos < k_max or not -1 <= k < self._T:
            raise ValueError(
                f"env state: position (trial {pos}, step {k}) outside a block of {k_max} trials "
                f"of {self._T} steps"
            )
        self._np_random = rng
        blk = state.get("block")
        if blk is None:
            self._block, self._pos, self._k = None, 0, -1
            return
        latent = np.asarray(blk["latent"], dtype=np.float64)
        noise = np.asarray(blk["noise"], dtype=np.float64)
        offered = np.asarray(blk["offered"], dtype=bool)
        shapes = ((k_max, s.latent_dim), (k_max, s.stimulus_steps, s.latent_dim), (k_max,))
        if (latent.shape, noise.shape, offered.shape) != shapes:
            raise ValueError(
                f"env state: block shapes {latent.shape}, {noise.shape}, {offered.shape} do not "
                f"fit this env (expected {shapes[0]}, {shapes[1]}, {shapes[2]})"
            )
        self._set_block(self._src.build(latent, noise, offered))
        self._pos = pos
        self._start_trial(None)
        self._k = k
        report = state.get("last_report")
        self._last_report = None if report is None else np.asarray(report)
        if report is not None:
            self._last_score = self._score(self._last_report)

    # ---- step ----------------------------------------------------------------------------------
    def _check_action(self, action: Any) -> np.ndarray:
        """Validate an action (shape, dtype, range, NaN); returns it as an array.

        Fast paths (this runs on every step): for int64 actions whose components all allow
        0..2^b - 1 (choice) the raw bytes read as one integer are masked; otherwise the bytes are
        counted (every byte zero except each element's low byte, which must be < nvec); for
        float32/64 Box actions one unsigned comparison of the bit patterns (in [0, 1] <=> bits <=
        bits(1.0)). Anything else, or a failing fast check, takes the exact numpy path.
        """
        a = action
        if type(a) is not np.ndarray:
            a = np.asarray(a)
        elif (
            self._bad_bits is not None
            and a.dtype is _INT64
            and a.shape == self._ashape
            and not int.from_bytes(a.tobytes(), "little") & self._bad_bits
        ):
            return a
        if a.shape != self._ashape:
            raise ValueError(
                f"action must have shape {self._ashape} (action_space {self.action_space}), "
                f"got shape {a.shape}"
            )
        dt = a.dtype
        if self._box:
            fast = _FLOAT_BITS.get(dt)
            if fast is not None and b"\x01" not in np.greater(a.view(fast[0]), fast[1]).tobytes():
                return a
            if dt.kind not in "fiub":
                raise ValueError(f"action must be numeric, got dtype {dt}")
            # NaN fails both comparisons, so it is caught here too
            if b"\x00" in (np.greater_equal(a, 0.0) & np.less_equal(a, 1.0)).tobytes():
                raise ValueError(f"action components must lie in [0, 1] (no NaN), got {a!r}")
            return a
        if dt is _INT64 and self._byte_ok is not None:
            bs = a.tobytes()
            lows = bs[::8]
            ok = bs.count(0)
            for v in self._byte_ok:
                ok += lows.count(v)
            if ok == len(bs) and (not self._last_binary or lows[-1] < 2):
                return a
        bound = self._nvec_u.get(dt)
        if bound is None:
            a = self._coerce_int(native_ints(a))
            bound = self._nvec_u[a.dtype]
        # a negative int viewed as unsigned is huge, so one comparison checks both ends
        if b"\x01" in np.greater_equal(a.view(bound.dtype), bound).tobytes():
            raise ValueError(
                f"action out of range for {self.action_space}: each component must lie in "
                f"[0, nvec), got {a!r}"
            )
        return a

    def _coerce_int(self, a: np.ndarray) -> np.ndarray:
        if a.dtype.isnative and a.dtype in self._nvec_u:
            return a
        if a.dtype.kind == "b":
            return a.astype(np.int64)
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise ValueError(f"action must hold integers (no NaN), got {a!r}")
            return a.astype(np.int64)
        raise ValueError(f"action must be an integer array for {self.action_space}, got {a.dtype}")

    def _info(self, k: int) -> dict[str, Any]:
        """The info of the observation at step ``k``: this step's own rows of the trial's latent
        and labels (see :meth:`_set_block`)."""
        info = {
            "latent": self._step_latent[k],
            "labels": self._step_labels[k],
            "step": k,
            "period": self._periods[k],
        }
        if self._opt_out:
            info["offered"] = self._offered
        return info

    def _last_info(self, k: int, steps: int) -> dict[str, Any]:
        """The end-of-trial info's common part: the last observation is row ``k`` again (its
        step's rows were returned already, so the arrays here are fresh copies)."""
        info = {
            "latent": self._latent.copy(),
            "labels": self._labels.copy(),
            "step": steps,
            "period": self._periods[k],
        }
        if self._opt_out:
            info["offered"] = self._offered
        return info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        k = self._k
        if k < 0:
            raise TrialEndedError(
                "step() called after the trial ended (or before reset()); call reset() first"
            )
        a = self._check_action(action)
        if self.render_mode is not None:
            self._actions.append(np.array(a, copy=True))
            if self.render_mode == "human":
                out = self._step_free(a, k) if self._free else self._step_fixed(a, k)
                self.render()
                return out
        if self._free:
            return self._step_free(a, k)
        return self._step_fixed(a, k)

    def _step_fixed(self, a: np.ndarray, k: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = 0.0
        if self._decision[k]:
            self._last_score = s = self._score(a)
            reward = s * self._inv_dec
            self._last_report = a
        kn = k + 1
        if kn < self._T:
            self._k = kn
            return self._obs_trial[kn], reward, False, False, self._info(kn)
        return self._end_fixed(k, reward)

    def _end_fixed(self, k: int, reward: float) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._k = -1
        info = self._last_info(k, k + 1)
        self._end_info(info, self._last_report, None, self._last_score)
        return self._obs_trial[k].copy(), reward, True, False, info

    def _score(self, report: np.ndarray) -> float:
        return float(self._kind.score(report, self._labels, self.options, self._offered))

    def _step_free(self, a: np.ndarray, k: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        report, commit = self._kind.split_commit(a)
        period = self._periods[k]
        kn = k + 1
        if period == FIXATION:
            if commit:  # responding before the evidence: abort
                self._k = -1
                info = self._last_info(k, kn)
                info["aborted"] = True
                info["reaction_time"] = 0
                return self._obs_trial[k].copy(), 0.0, True, False, info
            self._k = kn
            return self._obs_trial[kn], 0.0, False, False, self._info(kn)
        assert period == STIMULUS
        reward = -self.options.evidence_cost
        if commit or k == self._last_stim:
            s = self._score(report)
            rt = k - self._s0 + 1
            self._k = -1
            info = self._last_info(k, kn)
            info["aborted"] = False
            info["reaction_time"] = rt
            self._end_info(info, report, rt, s)
            return self._obs_trial[k].copy(), reward + s, True, False, info
        self._k = kn
        return self._obs_trial[kn], reward, False, False, self._info(kn)

    def _end_info(self, info: dict, report: np.ndarray | None, rt: int | None, s: float) -> None:
        """Add the end-of-trial keys; ``s`` is the score of ``report`` (already computed)."""
        o = self.options
        if report is not None:
            info["correct"] = self._kind.correct(report, self._labels)
            info["score"] = s
            self._last_scores = (float(s), None)
        if not o.ideal_info:
            return
        b = self._block
        if b.ideal_action is None:
            self._src.fill_ideal(b)
        at = self._pos if rt is None else (self._pos, rt - 1)
        info["ideal_action"] = b.ideal_action[at].copy()
        ideal_score = float(b.ideal_score[at])
        info["ideal_reward"] = ideal_score - (0.0 if rt is None else o.evidence_cost * rt)
        self._last_scores = (self._last_scores[0], ideal_score)

    # ---- rendering -----------------------------------------------------------------------------
    def _trial_posterior(self) -> np.ndarray:
        """[T, N] the ideal observer's P(y_i = 1 | evidence so far) at every step of the current
        trial (NaN before the first evidence sample; held after the last)."""
        if self._posterior is None:
            s, b, i = self.task_spec, self._block, self._pos
            q = self._src.observer.posterior(b.batch.stimulus_evidence[i : i + 1])[0]
            period = np.asarray(self._periods)
            where = np.flatnonzero(period == STIMULUS)
            if q.shape[0] > where.size:  # targets='free_rt_paper': decision steps carry evidence
                where = np.concatenate([where, np.flatnonzero(period == DECISION)])
            post = np.full((s.n_steps, s.n_tasks), np.nan)
            post[where[: q.shape[0]]] = q
            last = np.full(s.n_tasks, np.nan)
            for t in range(s.n_steps):  # hold the belief between evidence samples
                if np.isnan(post[t, 0]):
                    post[t] = last
                else:
                    last = post[t]
            self._posterior = post[: self._T]
        return self._posterior

    def render(self) -> np.ndarray | None:
        """The trial so far as an RGB array (``'rgb_array'``), or shown in a window
        (``'human'``, returns None). Without a render mode: a warning and None."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; make the env with "
                "gym.make(id, render_mode='rgb_array')"
            )
            return None
        if self._block is None:
            raise ResetNeeded("render() before the first reset(); call reset() first")
        s, o, t_all = self.task_spec, self.options, self._T
        n_act = len(self._actions)
        ended = self._k < 0
        shown = min(n_act + 1, t_all)
        k_now = min(n_act, t_all - 1)
        title = (
            f"{self._gym_spec.id if self._gym_spec is not None else 'MultiTaskEvidence'}  "
            f"step {n_act}/{t_all} ({_render.period_name(self._periods[k_now])})  "
            f"x* = ({', '.join(f'{v:.2f}' for v in self._latent)})"
        )
        if ended and self._last_scores[0] is not None:
            title += f"  score {self._last_scores[0]:.2f}"
            if self._last_scores[1] is not None:
                title += f" (ideal {self._last_scores[1]:.2f})"
        acts = (
            np.stack(self._actions)
            if n_act
            else np.zeros((0,) + self.action_space.shape, dtype=np.float64)
        )
        view = _render.TrialView(
            obs=self._obs_trial[:t_all],
            evidence=self._block.batch.evidence[self._pos, :t_all],
            latent=self._latent,
            labels=self._labels,
            period=np.asarray(self._periods[:t_all]),
            actions=acts,
            shown=shown,
            posterior=self._trial_posterior(),
            n_obs_channels=s.evidence_dim,
            report=o.report,
            free=o.free,
            ended=ended,
            title=title,
        )
        frame = _render.draw_trial(view)
        if self.render_mode == "human":
            if self._window is None:
                self._window = _render.HumanWindow()
            self._window.show(frame)
            return None
        return frame

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        super().close()

"""`MultiTaskEvidenceVectorEnv`: M copies of :class:`envs.env.MultiTaskEvidenceEnv` stepped in one
numpy call (the native vector env behind ``gym.make_vec(id, M, vectorization_mode=
"vector_entry_point")``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from multitask_evidence.common.limits import check_bytes
from multitask_evidence.common.validate import plain
from multitask_evidence.envs.env import _UNSIGNED
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.stream import EnvOptions, TrialSource, native_ints
from multitask_evidence.envs.trials import DECISION, FIXATION, STIMULUS, period_codes

# Trials built per call: the encoder's intermediates ([trials * Ts, 100] float32) then stay in
# cache (measured: 16-32 trials ~13 us per trial, 256 trials ~21 us per trial).
_BUILD_TRIALS = 32
# Trials per ideal-observer call: its fixed cost per call (~0.1 ms) is then spread thinly.
_IDEAL_TRIALS = 256


class MultiTaskEvidenceVectorEnv(VectorEnv):
    """M independent multi-task evidence envs, batched (same task, spaces and rewards as
    :class:`envs.env.MultiTaskEvidenceEnv`; read its docstring for the task itself).

    **Autoreset**: Gymnasium 1.x ``AutoresetMode.NEXT_STEP`` (``metadata['autoreset_mode']``):
    when sub-env i terminates at step t, the step returns its terminal observation; at step t + 1
    its action is ignored and it returns the first observation of its next trial with reward 0,
    ``terminated = truncated = False``.

    **Seeding**: each sub-env has its own ``np.random.Generator``; ``reset(seed=s)`` seeds sub-env i
    with s + i (a list of seeds seeds each one), so sub-env i plays exactly the trials of a single
    env reset with seed s + i (same blocks of ``block_size`` trials, same draw order). The only
    per-env Python loop draws each refilled env's random numbers; building the trials (encoder
    included), scoring, the ideal observer and indexing are batched over all envs.

    **info** (vector form: an array per key with a leading M axis, plus a boolean ``_key`` mask
    of the envs it is valid for): every step ``latent`` [M, D], ``labels`` [M, N], ``step`` [M],
    ``period`` [M] (and ``offered`` [M] for report kinds with an opt-out); on steps where some env's trial ends also
    ``correct`` [M, N], ``score`` [M], ``ideal_action`` [M, N], ``ideal_reward`` [M], and for free
    response ``reaction_time`` [M] and ``aborted`` [M], valid where the mask is True.

    **reset options**: ``reset_mask`` [M] bool (reset only those envs), ``latent`` [M, D] or
    ``region`` (one Region/dict for all) fixing the next trial of the reset envs.

    Args: ``num_envs`` (M), then exactly the single env's arguments (``spec``, TaskSpec fields,
    ``report``, ``response``, ``scoring``, ``sure_reward``, ``offer_prob``, ``evidence_cost``,
    ``block_size``, ``ideal_info``).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        spec: TaskSpec | None = None,
        *,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (no rendering), got {render_mode!r}")
        self.render_mode = None
        self._src = TrialSource(spec, kwargs)
        task, opts = self._src.spec, self._src.options
        self.task_spec: TaskSpec = task
        self.options: EnvOptions = opts
        self.num_envs = int(num_envs)
        check_bytes(
            f"num_envs={self.num_envs} x block_size={opts.block_size} (trials held at once)",
            self.num_envs * int(opts.block_size) * task.trial_bytes,
        )
        self.single_observation_space = opts.observation_space(task)
        self.single_action_space = opts.action_space(task)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        m, k = self.num_envs, opts.block_size
        self._ar = np.arange(m)
        self._periods = period_codes(task).astype(np.int64)
        self._T = opts.trial_steps(task)
        self._rngs: list[np.random.Generator] | None = None
        self._pos = np.zeros(m, dtype=np.int64)
        self._k = np.zeros(m, dtype=np.int64)
        self._done = np.zeros(m, dtype=bool)
        self._started = False
        self._ashape = (m, *self.single_action_space.shape)
        self._kind = opts.kind
        self._box = isinstance(self.single_action_space, spaces.Box)
        self._nvec_u = (
            {}
            if self._box
            else {dt: self.single_action_space.nvec.astype(u) for dt, u in _UNSIGNED.items()}
        )
        d, n, ts = task.latent_dim, task.n_tasks, task.stimulus_steps
        o = opts.obs_dim(task)
        # per-env block stores, [M, K, ...]
        self._obs = np.zeros((m, k, task.n_steps, o), dtype=np.float32)
        self._latent = np.zeros((m, k, d))
        self._labels = np.zeros((m, k, n), dtype=np.float32)
        self._noise = np.zeros((m, k, ts, d))
        self._offered = np.zeros((m, k), dtype=bool)
        ideal_shape = (m, k, ts) if opts.free else (m, k)
        self._ideal_action = np.zeros(ideal_shape + (n,), dtype=self._kind.report_dtype)
        self._ideal_score = np.zeros(ideal_shape)

    # ---- blocks ------------------------------------------------------------------------------
    def _refill(self, idx: np.ndarray) -> None:
        """Draw a new block for envs ``idx`` (each from its own generator), build them at once."""
        k = self.options.block_size
        parts = [self._src.draw(self._rngs[i], k) for i in idx]  # the one per-env loop
        per = max(1, _BUILD_TRIALS // k)  # envs per build
        per_ideal = max(1, _IDEAL_TRIALS // k)  # envs per ideal-observer call (at least)
        pending: list[Any] = []  # built blocks of envs idx[start:c] without ideal answers yet
        start = 0
        for c in range(0, len(idx), per):
            sub = parts[c : c + per]
            latent = np.concatenate([p[0] for p in sub])
            noise = np.concatenate([p[1] for p in sub])
            offered = np.concatenate([p[2] for p in sub])
            block = self._src.build(latent, noise, offered)
            end = c + len(sub)
            self._store(idx[c:end], block, k)
            pending.append(block)
            if end - start >= per_ideal or end == len(idx):
                self._store_ideal(idx[start:end], pending, k)
                pending, start = [], end
        self._pos[idx] = 0

    def _store_ideal(self, idx: np.ndarray, blocks: list[Any], k: int) -> None:
        """The ideal observer's answers for the trials of ``blocks`` (built for envs ``idx``, k
        trials each, in order), in one call."""
        if not self.options.ideal_info:
            return
        action, score = self._src.ideal(
            np.concatenate([b.batch.stimulus_evidence for b in blocks]),
            np.concatenate([b.labels for b in blocks]),
            np.concatenate([b.offered for b in blocks]),
        )
        self._ideal_action = self._put(self._ideal_action, action, idx, k)
        self._ideal_score = self._put(self._ideal_score, score, idx, k)

    def _put(
        self, store: np.ndarray, rows: np.ndarray, idx: np.ndarray, k: int, slot: Any = None
    ) -> np.ndarray:
        """Write ``rows`` (len(idx) * k trials, or one trial per env at ``slot``) into the [M, K,
        ...] ``store`` for envs idx; when all M envs get whole blocks the store is replaced."""
        m = len(idx)
        if slot is None:
            rows = rows.reshape((m, k) + rows.shape[1:])
            if m == self.num_envs:
                return rows.astype(store.dtype, copy=False)  # replace, no copy
            store[idx] = rows
        else:
            store[idx, slot] = rows
        return store

    def _store(self, idx: np.ndarray, block: Any, k: int, slot: np.ndarray | None = None) -> None:
        """Write a built block (len(idx) * k rows) into the stores of envs idx (trial ``slot`` when
        k = 1); with ``slot`` also its ideal answers."""
        put = self._put
        self._obs = put(self._obs, block.obs, idx, k, slot)
        self._latent = put(self._latent, block.latent, idx, k, slot)
        self._labels = put(self._labels, block.labels, idx, k, slot)
        self._noise = put(self._noise, block.noise, idx, k, slot)
        self._offered = put(self._offered, block.offered, idx, k, slot)
        if slot is not None and self.options.ideal_info:
            self._src.fill_ideal(block)
            self._ideal_action = put(self._ideal_action, block.ideal_action, idx, k, slot)
            self._ideal_score = put(self._ideal_score, block.ideal_score, idx, k, slot)

    def _override(self, idx: np.ndarray, options: dict[str, Any]) -> None:
        shape = (self.num_envs, self.task_spec.latent_dim)
        rngs = [self._rngs[i] for i in idx]
        x = self._src.reset_latents(options, rngs, shape, rows=idx, own=("reset_mask",))
        if x is None:
            return
        pos = self._pos[idx]
        block = self._src.build(x, self._noise[idx, pos], self._offered[idx, pos])
        self._store(idx, block, 1, slot=pos)

    def _next_trial(self, idx: np.ndarray) -> None:
        """Envs idx move on to their next trial (refilling exhausted blocks)."""
        self._pos[idx] += 1
        empty = idx[self._pos[idx] >= self.options.block_size]
        if len(empty):
            self._refill(empty)
        self._k[idx] = 0

    # ---- API -----------------------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start the next trial of every env (or of ``options['reset_mask']``); seeding as above."""
        m = self.num_envs
        mask = np.ones(m, dtype=bool)
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (m,) or mask.dtype != bool:
                raise ValueError(f"reset option 'reset_mask' must be a bool array of shape ({m},)")
        idx = np.flatnonzero(mask)
        if seed is None:
            seeds: list[int | None] = [None] * m
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(m)]
        else:
            seeds = [plain(s) for s in seed]  # numpy integers are seeds too
            if len(seeds) != m:
                raise ValueError(f"seed must be an int, None or a list of {m} seeds, got {seed!r}")
        if self._rngs is None:
            self._rngs = [seeding.np_random(sd)[0] for sd in seeds]
            self._refill(self._ar)
        elif seed is not None:
            for i in idx:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
            self._refill(idx)
        else:
            self._next_trial(idx)
        self._k[idx] = 0
        self._done[idx] = False
        self._started = True
        if options:
            self._override(idx, options)
        obs = self._gather_obs(self._k)
        return obs, self._info(self._k, self._k)

    def _gather_obs(self, k_obs: np.ndarray) -> np.ndarray:
        k, t = self.options.block_size, self.task_spec.n_steps
        flat = (self._ar * k + self._pos) * t + k_obs
        return np.take(self._obs.reshape(-1, self._obs.shape[-1]), flat, axis=0)

    def _cur(self, store: np.ndarray) -> np.ndarray:
        """Current trial's rows [M, ...] of a [M, K, ...] store (a fresh array)."""
        flat = self._ar * self.options.block_size + self._pos
        return np.take(store.reshape((-1,) + store.shape[2:]), flat, axis=0)

    def _info(self, step: np.ndarray, k_obs: np.ndarray) -> dict[str, Any]:
        m = self.num_envs
        info: dict[str, Any] = {
            "latent": self._cur(self._latent),
            "labels": self._cur(self._labels),
            "step": step.copy(),
            "period": self._periods[k_obs],
        }
        if self._kind.has_opt_out:
            info["offered"] = self._cur(self._offered)
        for key in list(info):
            info["_" + key] = np.ones(m, dtype=bool)
        return info

    def _check_actions(self, actions: Any) -> np.ndarray:
        a = actions if type(actions) is np.ndarray else np.asarray(actions)
        if a.shape != self._ashape:
            raise ValueError(f"actions must have shape {self._ashape}, got shape {a.shape}")
        if self._box:
            if a.dtype.kind not in "fiub":
                raise ValueError(f"actions must be numeric, got dtype {a.dtype}")
            if b"\x00" in (np.greater_equal(a, 0.0) & np.less_equal(a, 1.0)).tobytes():
                raise ValueError("action components must lie in [0, 1] (no NaN)")
            return a
        a = native_ints(a)
        bound = self._nvec_u.get(a.dtype)
        if bound is None:
            if a.dtype.kind == "b":
                a = a.astype(np.int64)
            elif a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise ValueError(
                    f"actions must be integers for {self.single_action_space}, got {a!r}"
                )
            bound = self._nvec_u[a.dtype]
        if b"\x01" in np.greater_equal(a.view(bound.dtype), bound).tobytes():
            raise ValueError(
                f"action out of range for {self.single_action_space}: each component must lie in "
                "[0, nvec)"
            )
        return a

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; envs whose trial ended on the previous step start their next trial."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = self._check_actions(actions)
        o, s = self.options, self.task_spec
        m = self.num_envs
        restart = self._done
        any_restart = bool(restart.any())
        k = self._k
        period = self._periods[k]
        reward = np.zeros(m)
        free_rt = None
        if o.free:
            report, commit = self._kind.split_commit(a)
            stim = period == STIMULUS
            abort = (period == FIXATION) & commit
            ended = stim & (commit | (k == s.stimulus_start + s.stimulus_steps - 1))
            if any_restart:
                stim &= ~restart
                abort &= ~restart
                ended &= ~restart
            reward[stim] -= o.evidence_cost
            term = abort | ended
            free_rt = k - s.stimulus_start + 1
        else:
            report = a
            ended = period == DECISION
            term = k == self._T - 1
            if any_restart:
                ended &= ~restart
                term &= ~restart
        scored = np.flatnonzero(ended)
        if len(scored):
            labels = self._cur(self._labels)
            offered = self._cur(self._offered)
            sc = self._kind.score(report[scored], labels[scored], o, offered[scored])
            reward[scored] += sc if o.free else sc / s.decision_steps
        k_obs = np.where(term, k, k + 1)
        step = k + 1
        if any_restart:
            ridx = np.flatnonzero(restart)
            self._next_trial(ridx)  # resets their k to 0 and may refill their blocks
            k_obs[ridx] = 0
            step[ridx] = 0
        np.minimum(k_obs, s.n_steps - 1, out=k_obs)
        obs = self._gather_obs(k_obs)
        info = self._info(step, k_obs)
        if term.any():
            self._end_info(info, term, report, k, free_rt, abort if o.free else None)
        self._k = np.where(restart, 0, k_obs)
        self._done = term
        return obs, reward, term, np.zeros(m, dtype=bool), info

    def _end_info(
        self,
        info: dict[str, Any],
        term: np.ndarray,
        report: np.ndarray,
        k: np.ndarray,
        rt: np.ndarray | None,
        abort: np.ndarray | None,
    ) -> None:
        o = self.options
        labels = info["labels"]
        offered = self._cur(self._offered)
        valid = term if abort is None else term & ~abort
        info["correct"] = self._kind.correct(report, labels) & valid[:, None]
        info["_correct"] = valid
        sc = self._kind.score(report, labels, o, offered)
        info["score"] = np.where(valid, sc, 0.0)
        info["_score"] = valid
        if rt is not None:
            info["reaction_time"] = np.where(term & ~abort, rt, 0)
            info["_reaction_time"] = term.copy()
            info["aborted"] = abort.copy()
            info["_aborted"] = term.copy()
        if not o.ideal_info:
            return
        flat = self._ar * o.block_size + self._pos
        if rt is None:
            ia = np.take(self._ideal_action.reshape(-1, self._ideal_action.shape[-1]), flat, axis=0)
            ir = self._ideal_score.reshape(-1)[flat]
        else:
            ts = self.task_spec.stimulus_steps
            row = flat * ts + np.clip(rt - 1, 0, ts - 1)
            ia = np.take(self._ideal_action.reshape(-1, self._ideal_action.shape[-1]), row, axis=0)
            ir = self._ideal_score.reshape(-1)[row] - o.evidence_cost * rt
        info["ideal_action"] = ia
        info["_ideal_action"] = valid
        info["ideal_reward"] = np.where(valid, ir, 0.0)
        info["_ideal_reward"] = valid

    def close_extras(self, **kwargs: Any) -> None:
        self._src.close()

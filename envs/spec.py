"""`TaskSpec`: the one description of a multi-task evidence-aggregation task (docs/science.md §2).

Every parameter of the generative model lives here, validated at construction. The fixed random
parts of a task (boundary normals, offsets, encoder weights) are drawn from ``seed`` by
:mod:`envs.task`, never from global state, so two processes holding equal specs see the same task.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from multitask_evidence.common.validate import FieldChecker, plain
from multitask_evidence.envs.encoders import ENCODER_KINDS, encoder_names

BOUNDARIES = ("auto", "lines", "random", "hyperbolic", "circles")
PRIORS = ("uniform", "correlated")
NOISES = ("gaussian", "anisotropic", "ar1", "gumbel")
NOISE_STAGES = ("latent", "features")
TARGETS = ("paper", "decision_only", "ddm_bound", "free_rt_paper", "latent")
DDM_TARGETS = ("ddm_bound", "free_rt_paper")
"""Target kinds that are running evidence sums trained with MSE on ``ddm_bound * tanh`` outputs."""
MSE_TARGETS = (*DDM_TARGETS, "latent")
"""Target kinds trained with a squared error (the others: BCE on sigmoid outputs)."""


@dataclass(frozen=True)
class TaskSpec:
    """Every parameter of one task family member. Frozen, validated, JSON round-trips.

    Time is counted in steps (paper: dt = 100 ms). One trial is
    ``fixation_steps + stimulus_steps + delay_steps + decision_steps`` steps long.
    """

    latent_dim: int = 2
    """D: dimension of the hidden latent x* (paper default 2; up to 10 in the paper)."""
    n_tasks: int = 24
    """N: number of binary classifications (paper: 2, 3, 6, 12, 24)."""
    sigma: float = 0.2
    """Per-step evidence noise SD (paper default 0.2; swept over 0.1-0.6): in latent units, or per
    feature when ``noise_stage='features'``."""
    fixation_steps: int = 1
    """Steps before the evidence with the go channel on and no evidence."""
    stimulus_steps: int = 20
    """T: steps of noisy evidence X(t) = x* + eps(t)."""
    delay_steps: int = 0
    """Steps between the evidence and the decision (no evidence, go channel on)."""
    decision_steps: int = 1
    """Steps with the go channel off, at which the report is scored / labels are the target."""
    boundaries: str = "auto"
    """'lines' (D = 2, phi_i = (i + 1/2) pi / N), 'random' unit normals (any D), 'hyperbolic'
    quadrant tasks (D = 2, N divisible by 4), 'circles' (|x*| > r_k, any D);
    'auto' = 'lines' when D = 2 else 'random'."""
    offset_scale: float = 0.0
    """Offsets b_i ~ U[-offset_scale, offset_scale] for the linear families (0: through origin)."""
    prior: str = "uniform"
    """'uniform': x* ~ U[-0.5, 0.5]^D; 'correlated': Gaussian copula Phi(z) - 0.5 with corr rho."""
    rho: float = 0.0
    """Copula correlation between every pair of factors (prior='correlated' only)."""
    noise: str = "gaussian"
    """'gaussian' iid N(0, sigma^2); 'anisotropic' (axes after the first get anisotropy*sigma);
    'ar1' (coefficient ar_coef, stationary SD sigma); 'gumbel' (scale sigma, centred to mean 0)."""
    anisotropy: float = 2.0
    """SD ratio of axes 2..D to axis 1 for noise='anisotropic' (paper: sigma_2 = 2 sigma_1)."""
    ar_coef: float = 0.7
    """AR(1) coefficient for noise='ar1' (paper: 0.7)."""
    encoder: str = field(default="relu_mlp", metadata={"choices": encoder_names})
    """Frozen random observation encoder f (:mod:`envs.encoders`): 'none', 'relu_mlp'
    (D -> 100 -> 100 -> 40, ReLU; the paper's), 'quadratic' (same sizes, element-wise square),
    'place_cells' (K = m^D Gaussian bumps on a grid over [-0.6, 0.6]^D), 'fourier' (random
    Fourier features), or any family added with ``envs.encoders.register_encoder``."""
    encoder_sizes: tuple[int, ...] | None = None
    """Layer widths of the encoder; the last one is the encoded evidence width F. None: the
    family's default ((100, 100, 40) for the MLPs, (100,) for place cells and Fourier features)."""
    encoder_scale: float | None = None
    """The family's one shape parameter: the place cells' width w (default 0.1), the Fourier
    features' frequency omega (default 1). None: the family's default; refused for families
    without one."""
    encoder_mix: bool = False
    """Follow the encoder by a fixed random orthogonal rotation of its F features."""
    noise_stage: str = "latent"
    """Where the noise enters: 'latent' (the paper's: obs_t = f(x* + eps_t)) or 'features'
    (obs_t = f(x*) + eta_t, eta_t ~ N(0, sigma^2) per feature; noise='gaussian' only, not with
    the drift-diffusion targets). See :mod:`envs.encoders` for why it matters."""
    targets: str = "paper"
    """'paper': BCE targets = labels at decision steps, 0.5 elsewhere, loss on every step;
    'decision_only': labels, loss masked to decision steps; 'ddm_bound': running signed evidence
    sum c_i . X(s) clipped at +-ddm_bound (free reaction time, MSE on ddm_bound * tanh);
    'free_rt_paper': the official code's free-reaction-time targets (Fig. 5a): running sum of
    X2(s) - tan(phi_i) X1(s) (not unit-normalised; sign flipped where cos phi_i < 0, to match
    the labels 1[c_i . x* > 0]) absorbed at +-ddm_bound, with evidence also
    arriving at the decision steps, where the probe reads the state (T + 1 samples there).
    Needs boundaries='lines', offset_scale=0, delay_steps=0. See ``envs.trials.free_rt_targets``.
    'latent': no classification at all: D linear outputs regress x* itself (MSE at the decision
    steps, loss masked to them), the positive control of what an architecture can extract from
    the input when asked for x* directly; its choices are read off the estimate (the label of
    x_hat under each task's boundary)."""
    ddm_bound: float = 5.0
    """Bound of the drift-diffusion targets (targets 'ddm_bound' and 'free_rt_paper')."""
    seed: int = 0
    """Seed of the task's fixed random parts (boundary normals, offsets, encoder weights)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Free-form user metadata carried in spec.json (not used by the task)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # numpy scalars -> the Python numbers they hold
            v = getattr(self, f.name)
            if f.name == "encoder_sizes" and isinstance(v, (tuple, list)):
                object.__setattr__(self, f.name, tuple(plain(x) for x in v))
            elif f.name != "extra":
                object.__setattr__(self, f.name, plain(v))
        check = FieldChecker(self)
        check.integer("latent_dim", 1)
        check.integer("n_tasks", 1)
        check.number("sigma", 0.0, 1e6, open_low=True)
        check.integer("fixation_steps", 0)
        check.integer("stimulus_steps", 1)
        check.integer("delay_steps", 0)
        check.integer("decision_steps", 1)
        check.choice("boundaries", BOUNDARIES)
        if self.boundaries == "auto":
            object.__setattr__(self, "boundaries", "lines" if self.latent_dim == 2 else "random")
        if self.boundaries in ("lines", "hyperbolic") and self.latent_dim != 2:
            raise ValueError(
                f"TaskSpec.boundaries={self.boundaries!r} needs latent_dim=2, got latent_dim="
                f"{self.latent_dim}; use 'random' or 'circles' for other dimensions"
            )
        if self.boundaries == "hyperbolic" and self.n_tasks % 4:
            raise ValueError(
                f"TaskSpec.n_tasks must be divisible by 4 for boundaries='hyperbolic' (tasks per "
                f"quadrant), got {self.n_tasks}"
            )
        check.number("offset_scale", 0.0, 0.5, open_low=False)
        if self.offset_scale > 0 and self.boundaries not in ("lines", "random"):
            raise ValueError(
                "TaskSpec.offset_scale applies to linear boundaries ('lines', 'random') only, "
                f"got boundaries={self.boundaries!r}"
            )
        check.choice("prior", PRIORS)
        low = -1.0 / (self.latent_dim - 1) if self.latent_dim > 1 else -1.0
        if not (isinstance(self.rho, (int, float)) and math.isfinite(self.rho)) or not (
            low < self.rho < 1.0
        ):
            raise ValueError(
                f"TaskSpec.rho must lie in ({low:.3g}, 1) for latent_dim={self.latent_dim} "
                f"(equicorrelation must be positive definite), got {self.rho!r}"
            )
        if self.prior == "uniform" and self.rho != 0.0:
            raise ValueError(
                "TaskSpec.rho is only used with prior='correlated'; got prior='uniform'"
            )
        check.choice("noise", NOISES)
        check.number("anisotropy", 0.0, 1e3, open_low=True)
        check.number("ar_coef", -0.999, 0.999, open_low=False)
        self._check_encoder(check)
        check.choice("targets", TARGETS)
        check.number("ddm_bound", 0.0, 1e6, open_low=True)
        if self.targets == "ddm_bound" and not self.is_linear:
            raise ValueError(
                "TaskSpec.targets='ddm_bound' needs linear boundaries ('lines' or 'random'), "
                f"got boundaries={self.boundaries!r}"
            )
        if self.targets == "free_rt_paper":
            # the official free-RT targets are X2 - tan(phi_i) X1 for lines through the origin,
            # and its trial has no delay: evidence runs from stimulus onset to the last step
            want = {"boundaries": "lines", "offset_scale": 0.0, "delay_steps": 0}
            bad = {k: getattr(self, k) for k, v in want.items() if getattr(self, k) != v}
            if bad:
                raise ValueError(
                    "TaskSpec.targets='free_rt_paper' needs boundaries='lines', offset_scale=0 "
                    f"and delay_steps=0, got {bad}"
                )
        check.choice("noise_stage", NOISE_STAGES)
        if self.noise_stage == "features" and (self.noise != "gaussian" or self.ddm_targets):
            raise ValueError(
                "TaskSpec.noise_stage='features' needs noise='gaussian' and targets 'paper' or "
                f"'decision_only', got noise={self.noise!r}, targets={self.targets!r}"
            )
        check.integer("seed", 0)
        if not isinstance(self.extra, dict):
            raise ValueError(f"TaskSpec.extra must be a dict, got {type(self.extra).__name__}")
        self._check_sizes()

    def _check_encoder(self, check: FieldChecker) -> None:
        """The encoder family, its sizes and scale (defaults filled in from the family)."""
        check.choice("encoder", encoder_names())
        family = ENCODER_KINDS[self.encoder]
        if self.encoder_sizes is None:
            object.__setattr__(self, "encoder_sizes", family.default_sizes)
        sizes = self.encoder_sizes
        if type(sizes).__module__ == "numpy" and getattr(sizes, "ndim", 0) == 1:
            sizes = sizes.tolist()  # an array of widths is a sequence of widths
        sizes = tuple(plain(x) for x in sizes) if isinstance(sizes, (tuple, list)) else sizes
        if (
            not isinstance(sizes, tuple)
            or not sizes
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)
        ):
            raise ValueError(
                f"TaskSpec.encoder_sizes must be a non-empty sequence of positive integers, "
                f"got {self.encoder_sizes!r}"
            )
        object.__setattr__(self, "encoder_sizes", sizes)
        if family.scale is None:
            if self.encoder_scale is not None:
                raise ValueError(
                    f"TaskSpec.encoder_scale applies to encoders with a shape parameter "
                    f"({[n for n, e in ENCODER_KINDS.items() if e.scale]}), got "
                    f"encoder={self.encoder!r} with encoder_scale={self.encoder_scale!r}"
                )
        else:
            if self.encoder_scale is None:
                object.__setattr__(self, "encoder_scale", float(family.default_scale))
            check.number("encoder_scale", 0.0, 1e6, open_low=True)
            object.__setattr__(self, "encoder_scale", float(self.encoder_scale))
        if not isinstance(self.encoder_mix, bool):
            check.fail("encoder_mix", f"must be true or false, got {self.encoder_mix!r}")
        if self.encoder_mix and self.encoder == "none":
            raise ValueError("TaskSpec.encoder_mix needs an encoder, got encoder='none'")
        if family.check is not None:
            family.check(self)

    def _check_sizes(self) -> None:
        """Refuse tasks whose fixed parts or single trials would not fit in memory."""
        from multitask_evidence.common.limits import MEMORY_LIMIT, check_bytes

        d, n, t = self.latent_dim, self.n_tasks, self.n_steps
        f = self.evidence_dim
        mix = f * f if self.encoder_mix else 0
        fixed = 8 * (n * (d + 2) + ENCODER_KINDS[self.encoder].n_params(self) + mix)
        check_bytes(
            f"TaskSpec n_tasks={n}, latent_dim={d}, encoder_sizes={list(self.encoder_sizes)} "
            "(task boundaries and encoder weights)",
            fixed,
        )
        check_bytes(
            f"TaskSpec n_tasks={n}, latent_dim={d}, {t} steps, obs_dim={self.obs_dim} (one trial)",
            self.trial_bytes,
            MEMORY_LIMIT / 4096,
        )

    @property
    def trial_bytes(self) -> int:
        """Bytes of one generated trial's arrays (a lower bound): observations and targets
        float32 [T, O] / [T, N], evidence and its running mean float64 [T, D]."""
        return 4 * self.n_steps * (self.obs_dim + self.n_tasks) + 16 * self.n_steps * self.noise_dim

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        """Steps per trial (fixation + stimulus + delay + decision)."""
        return self.fixation_steps + self.stimulus_steps + self.delay_steps + self.decision_steps

    @property
    def stimulus_start(self) -> int:
        """Index of the first evidence step."""
        return self.fixation_steps

    @property
    def evidence_steps(self) -> int:
        """Steps that carry evidence X(t): the stimulus steps, plus the decision steps for
        targets='free_rt_paper' (whose evidence keeps arriving while the answer is read)."""
        extra = self.decision_steps if self.targets == "free_rt_paper" else 0
        return self.stimulus_steps + extra

    @property
    def evidence_stop(self) -> int:
        """Index one past the last evidence step (evidence fills [stimulus_start, evidence_stop))."""
        return self.stimulus_start + self.evidence_steps

    @property
    def n_outputs(self) -> int:
        """Outputs of a network trained on this task: D for targets='latent', else N."""
        return self.latent_dim if self.targets == "latent" else self.n_tasks

    @property
    def mse_targets(self) -> bool:
        """True for the targets trained with a squared error (drift-diffusion sums, x*)."""
        return self.targets in MSE_TARGETS

    @property
    def ddm_targets(self) -> bool:
        """True for the running-evidence-sum targets (MSE on ddm_bound * tanh outputs)."""
        return self.targets in DDM_TARGETS

    @property
    def decision_start(self) -> int:
        """Index of the first decision step."""
        return self.fixation_steps + self.stimulus_steps + self.delay_steps

    @property
    def evidence_dim(self) -> int:
        """Width of the (encoded) evidence part of the observation."""
        return self.latent_dim if self.encoder == "none" else self.encoder_sizes[-1]

    @property
    def noise_dim(self) -> int:
        """Width of the raw evidence, where the noise enters: D (noise_stage='latent') or the
        encoded width F (noise_stage='features')."""
        return self.latent_dim if self.noise_stage == "latent" else self.evidence_dim

    @property
    def obs_dim(self) -> int:
        """Observation width: encoded evidence channels followed by the go channel."""
        return self.evidence_dim + 1

    @property
    def is_linear(self) -> bool:
        """True for the linear boundary families (labels 1[c_i . x* + b_i > 0])."""
        return self.boundaries in ("lines", "random")

    # ---- construction / serialisation ----------------------------------------------------
    def replace(self, **changes: Any) -> TaskSpec:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"unknown TaskSpec field(s) {sorted(unknown)}; allowed: {field_names()}"
            )
        if "encoder" in changes and changes["encoder"] != self.encoder:
            # the old family's filled-in defaults are not the new family's
            old = ENCODER_KINDS[self.encoder]
            if "encoder_sizes" not in changes and self.encoder_sizes == old.default_sizes:
                changes["encoder_sizes"] = None
            if "encoder_scale" not in changes and self.encoder_scale == old.default_scale:
                changes["encoder_scale"] = None
        if "latent_dim" in changes and "boundaries" not in changes:
            # keep 'auto' semantics when only the dimension changes
            if self.boundaries == "lines":
                changes["boundaries"] = "auto"
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["encoder_sizes"] = list(self.encoder_sizes)
        return d

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kwargs))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"unknown TaskSpec field(s) {sorted(unknown)}; allowed: {field_names()}"
            )
        d = dict(d)
        if isinstance(d.get("encoder_sizes"), list):
            d["encoder_sizes"] = tuple(d["encoder_sizes"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        return cls.from_dict(json.loads(text))


def field_names() -> list[str]:
    """Names of every TaskSpec field (for CLI and sweep validation)."""
    return [f.name for f in dataclasses.fields(TaskSpec)]

"""Drawing one trial of the multi-task evidence task as an RGB image (neurogym-style).

:func:`draw_trial` draws, on a shared time axis (one column per step): the raw evidence X(t) of
every latent dimension with the hidden latent x* dashed; the observation the agent sees (the
encoded evidence channels as an image); the go signal (and the opt-out cue when there is one);
the agent's reports per task so far, with the true labels in an extra column once the decision
period is reached; and the ideal observer's posterior P(y_i = 1 | X(1..t)) per task, so the
agent's answers can be read against the Bayes-optimal belief on the same evidence.

The figure is drawn with matplotlib's Agg canvas (no display, no pyplot state), so rendering
works on headless machines and in worker processes. :func:`show_human` puts a frame in a pyplot
window and needs a display (:func:`display_available`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from multitask_evidence.envs.reports import report_kind
from multitask_evidence.envs.trials import DECISION, PERIOD_NAMES, STIMULUS

RENDER_FPS = 10
"""Frames per second for 'human' rendering: one step is 100 ms in the paper's task."""

FIG_SIZE_IN = (6.4, 7.2)
FIG_DPI = 100
RENDER_SHAPE = (720, 640, 3)
"""Shape (H, W, 3) uint8 of every frame ``render()`` returns."""


@dataclass
class TrialView:
    """What :func:`draw_trial` needs from one trial, up to the current step.

    obs:        [T, O'] the trial's observation rows (all of them; only ``shown`` are drawn).
    evidence:   [T, D] raw evidence X(t) (0 outside the stimulus period).
    latent:     [D] x*; labels [N] 0/1.
    period:     [T] period codes.
    actions:    [k, A] the agent's actions at steps 0..k-1 (A = N, plus a commit component for
                free response).
    shown:      observation rows 0..shown-1 are on screen (shown <= T).
    posterior:  [T, N] the ideal observer's P(y_i = 1 | evidence so far); NaN before the stimulus.
    n_obs_channels: encoded evidence channels (the go channel follows, then the cue if any).
    report:     the report kind's name (:data:`envs.reports.REPORT_KINDS`); free: the last
                action component is commit.
    ended:      the trial is over (labels are drawn whatever the period).
    title:      text above the figure.
    """

    obs: np.ndarray
    evidence: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    period: np.ndarray
    actions: np.ndarray
    shown: int
    posterior: np.ndarray
    n_obs_channels: int
    report: str
    free: bool
    ended: bool
    title: str


def report_values(actions: np.ndarray, report: str, free: bool) -> np.ndarray:
    """[k, N] reports as numbers in [0, 1] for the colour map, as the report kind draws them
    (:meth:`envs.reports.ReportKind.display_values`: choice 0/1, wager 0/1 with an opt-out (2)
    drawn as 0.5, confidence as reported)."""
    a = np.asarray(actions, dtype=np.float64)
    if free:
        a = a[:, :-1]
    return report_kind(report).display_values(a)


def draw_trial(view: TrialView) -> np.ndarray:
    """The trial as an RGB array ``RENDER_SHAPE`` uint8 (see the module docstring)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t_all, n = view.obs.shape[0], view.labels.shape[0]
    k = view.shown
    fig = Figure(figsize=FIG_SIZE_IN, dpi=FIG_DPI)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(5, 1, sharex=True, gridspec_kw={"height_ratios": [2.0, 2.0, 0.8, 2.0, 2.0]})
    ax_ev, ax_obs, ax_go, ax_rep, ax_post = axes
    fig.suptitle(view.title, fontsize=9)
    steps = np.arange(t_all)
    xlim = (-0.5, t_all + 0.5)  # one extra column for the labels

    # evidence per latent dimension, with x* dashed; with noise in feature space the evidence
    # is the observation itself (the panel below), so only x* is drawn here
    stim = view.period == STIMULUS
    latent_space = view.evidence.shape[-1] == view.latent.shape[0]
    ev = np.where(stim[:, None], view.evidence, np.nan)[:k]
    for d in range(view.latent.shape[0]):
        if latent_space:
            (line,) = ax_ev.plot(steps[:k], ev[:, d], marker=".", lw=1, label=f"X{d + 1}")
            color = line.get_color()
        else:
            color = f"C{d}"
        ax_ev.axhline(view.latent[d], color=color, ls="--", lw=0.8, label=f"x*{d + 1}")
    if view.latent.shape[0] <= 4:
        ax_ev.legend(fontsize=6, loc="upper left", ncols=view.latent.shape[0])
    ax_ev.set_ylabel("evidence" if latent_space else "x* (noise in features)", fontsize=7)

    # the encoded observation as channels x steps
    img = np.full((view.n_obs_channels, t_all), np.nan)
    img[:, :k] = view.obs[:k, : view.n_obs_channels].T
    ax_obs.imshow(
        img,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(-0.5, t_all - 0.5, view.n_obs_channels - 0.5, -0.5),
    )
    ax_obs.set_ylabel("obs ch.", fontsize=7)

    # go signal (and cue)
    ax_go.step(steps[:k], view.obs[:k, view.n_obs_channels], where="mid", color="k", label="go")
    if view.obs.shape[1] > view.n_obs_channels + 1:
        ax_go.step(steps[:k], view.obs[:k, -1], where="mid", color="tab:orange", label="cue")
        ax_go.legend(fontsize=6, loc="upper right")
    ax_go.set_ylim(-0.2, 1.2)
    ax_go.set_ylabel("go", fontsize=7)

    # the agent's reports, labels in the last column once the decision is reached
    rep = np.full((n, t_all + 1), np.nan)
    a = report_values(view.actions, view.report, view.free)
    rep[:, : a.shape[0]] = a.T
    at_decision = view.ended or (k > 0 and int(view.period[min(k, t_all) - 1]) == DECISION)
    if at_decision:
        rep[:, t_all] = view.labels
        ax_rep.axvline(t_all - 0.5, color="k", lw=1)
    _task_image(ax_rep, rep)
    ax_rep.set_ylabel("report\n(task)", fontsize=7)

    # the ideal observer's posterior per task
    post = np.full((n, t_all + 1), np.nan)
    post[:, :k] = view.posterior[:k].T
    _task_image(ax_post, post)
    ax_post.set_ylabel("ideal P(y=1)\n(task)", fontsize=7)

    for ax in axes:
        ax.tick_params(labelsize=6)
        ax.set_xlim(*xlim)
        for s in np.flatnonzero(view.period == DECISION)[:1]:
            ax.axvline(s - 0.5, color="grey", lw=0.6, ls=":")
    ticks = list(range(0, t_all, max(1, t_all // 10)))
    ax_post.set_xticks(ticks + [t_all], [str(s) for s in ticks] + ["y"])
    ax_post.set_xlabel("step (y: labels)", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    canvas.draw()
    frame = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if frame.shape != RENDER_SHAPE:  # pragma: no cover - guards against a changed figure size
        raise AssertionError(f"frame shape {frame.shape} != {RENDER_SHAPE}")
    return frame


def _task_image(ax: object, values: np.ndarray) -> None:
    """Values [N, T + 1] in [0, 1] (tasks x steps, the last column for the labels) as a
    blue-white-red image on the shared time axis."""
    n, cols = values.shape
    ax.imshow(
        values,
        aspect="auto",
        cmap="coolwarm",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(-0.5, cols - 0.5, n - 0.5, -0.5),
    )


def period_name(code: int) -> str:
    return PERIOD_NAMES[int(code)]


def display_available() -> bool:
    """True where a window can be opened: macOS and Windows, or Linux/BSD with ``DISPLAY`` or
    ``WAYLAND_DISPLAY`` set."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_render_mode(render_mode: str | None) -> None:
    """ValueError for an unknown mode; RuntimeError for 'human' without a display."""
    if render_mode is not None and render_mode not in ("rgb_array", "human"):
        raise ValueError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
    if render_mode == "human" and not display_available():
        raise RuntimeError(
            "render_mode='human' needs a display (DISPLAY / WAYLAND_DISPLAY is not set); use "
            "render_mode='rgb_array' and save or show the returned frames instead"
        )


def available_modes() -> list[str]:
    """The render modes this machine supports now: 'human' only where a display exists."""
    return ["rgb_array", "human"] if display_available() else ["rgb_array"]


class HumanWindow:
    """A pyplot window showing frames at ``RENDER_FPS``."""

    def __init__(self) -> None:
        import matplotlib.pyplot as plt

        self._plt = plt
        self._fig = None
        self._im = None

    def show(self, frame: np.ndarray) -> None:
        plt = self._plt
        if self._fig is None or not plt.fignum_exists(self._fig.number):
            plt.ion()
            self._fig = plt.figure(figsize=FIG_SIZE_IN, dpi=FIG_DPI)
            ax = self._fig.add_axes((0, 0, 1, 1))
            ax.set_axis_off()
            self._im = ax.imshow(frame)
        else:
            self._im.set_data(frame)
        plt.pause(1.0 / RENDER_FPS)

    def close(self) -> None:
        if self._fig is not None:
            self._plt.close(self._fig)
            self._fig = None

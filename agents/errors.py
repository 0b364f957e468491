"""Errors raised by the trainers (supervised and RL)."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run folder keeps the last good checkpoint."""

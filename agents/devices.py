"""Device strings in configs: ``'auto'`` or anything ``torch.device`` parses (``'cpu'``,
``'cuda'``, ``'cuda:1'``, ``'mps'``, ...).

A config checks the spelling when it is built (:func:`check_device`, no hardware needed, so a
config written on a laptop validates anywhere); training checks that the device exists on this
machine (:func:`pick_device`), with an error that says what is available instead.
"""

from __future__ import annotations

import torch

EXAMPLES = "'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'"


def check_device(value: object, owner: str = "TrainConfig") -> str:
    """``value`` if it is 'auto' or a device string ``torch.device`` accepts, else ValueError
    naming ``owner``'s field."""
    if not isinstance(value, str):
        raise ValueError(f"{owner}.device must be a string ({EXAMPLES}), got {value!r}")
    if value == "auto":
        return value
    try:
        torch.device(value)
    except (RuntimeError, ValueError, TypeError) as e:
        why = " ".join(str(e).split())[:160]
        raise ValueError(
            f"{owner}.device must be 'auto' or a torch device string ({EXAMPLES}), got "
            f"{value!r} ({why})"
        ) from None
    return value


def _available() -> list[str]:
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def device_available(device: torch.device) -> bool:
    """Whether this machine can run tensors on ``device`` (index included for cuda)."""
    kind = device.type
    if kind == "cpu":
        return True
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False
        return device.index is None or device.index < torch.cuda.device_count()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    backend = getattr(torch, kind, None)  # xpu, mtia, ... expose is_available()
    is_available = getattr(backend, "is_available", None)
    return bool(is_available()) if callable(is_available) else False


def pick_device(device: str, owner: str = "TrainConfig") -> torch.device:
    """The torch.device to train on: 'auto' -> cuda when available, else cpu; any other string
    must parse and exist on this machine (ValueError naming ``owner``'s field and the devices
    that do exist)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(check_device(device, owner))
    if not device_available(dev):
        raise ValueError(
            f"{owner}.device={device!r} is not available on this machine (available: "
            f"{', '.join(_available())}); use 'auto' or one of those"
        )
    return dev

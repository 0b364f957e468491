"""Field validators of the agents' config classes: :mod:`common.validate`'s checks plus the
fields only agents have (device strings, Gymnasium env ids, JSON option strings).

Every check raises one ``ValueError`` line naming ``Config.field`` and what is allowed.
"""

from __future__ import annotations

import json
from typing import Any

from multitask_evidence.agents.devices import check_device
from multitask_evidence.common.validate import (
    FieldChecker,
    check_choice,
    check_int,
    check_number,
    is_number,
)


class ConfigChecker(FieldChecker):
    """:class:`common.validate.FieldChecker` with the agents' own kinds of field."""

    def device(self, field: str = "device") -> None:
        """'auto' or a device string torch parses (:func:`agents.devices.check_device`)."""
        check_device(self.value(field), self.owner)

    def env_id(self, field: str = "env_id") -> None:
        """A registered Gymnasium id of this package's envs (registered on import): the
        trainers build it with the run's TaskSpec, which no other env takes."""
        import gymnasium as gym

        from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence ids)

        value = self.value(field)
        ours = sorted(
            k
            for k, v in gym.registry.items()
            if str(v.entry_point).startswith("multitask_evidence")
        )
        if value not in ours:
            what = "is not this package's env" if value in gym.registry else "is not registered"
            self.fail(
                field,
                f"must be one of this package's ids {ours} (the trainers give the env its "
                f"TaskSpec); {value!r} {what}",
            )

    def json_object(self, field: str) -> dict[str, Any]:
        """The field's text parsed as a JSON object (returned)."""
        text = self.value(field)
        try:
            d = json.loads(text or "{}")
        except (json.JSONDecodeError, TypeError):
            d = None
        if not isinstance(d, dict):
            self.fail(field, f"must be a JSON object, got {text!r}")
        return d


__all__ = [
    "ConfigChecker",
    "FieldChecker",
    "check_choice",
    "check_int",
    "check_number",
    "is_number",
]

"""The one registry mechanism behind report kinds, architectures, algorithms and figures."""

import pytest

from multitask_evidence.agents.algos import ALGOS
from multitask_evidence.agents.architectures import ARCHITECTURES
from multitask_evidence.common.registry import Registry
from multitask_evidence.envs.reports import REPORT_KINDS
from multitask_evidence.experiments.figures.registry import FIGURES


def test_registry_adds_in_order_refuses_a_taken_name_and_names_the_allowed_ones():
    r: Registry[int] = Registry("colour", "colour")
    assert r.add("red", 1) == 1 and r.add("blue", 2) == 2
    assert list(r) == ["red", "blue"] and r.lookup("blue") == 2
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        r.add("red", 3)
    assert r.add("red", 3, replace=True) == 3 and list(r) == ["red", "blue"]
    with pytest.raises(ValueError, match=r"colour must be one of \['red', 'blue'\], got 'green'"):
        r.lookup("green")
    with pytest.raises(ValueError, match="must be one of"):
        r.lookup(["red"])  # not a name: the same one-line error, no TypeError
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        r.add("", 4)
    r.remove("red")
    r.remove("red")  # a second removal is a no-op
    assert dict(r) == {"blue": 2}


def test_every_extension_point_is_one_of_these_registries():
    for reg, field in ((REPORT_KINDS, "report"), (ARCHITECTURES, "arch"), (ALGOS, "algo"),
                       (FIGURES, "figure")):  # fmt: skip
        assert isinstance(reg, Registry) and reg.field == field and len(reg) >= 3

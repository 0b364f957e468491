"""Packaging: version, licence, citation, changelog and type markers agree with pyproject."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import yaml

from multitask_evidence.experiments import cli

ROOT = Path(__file__).parents[2]
PYPROJECT = (ROOT / "pyproject.toml").read_text()
VERSION = re.search(r'^version = "([^"]+)"', PYPROJECT, re.M).group(1)


def test_mte_version(capsys, monkeypatch):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    installed = importlib.metadata.version("multitask-evidence")
    assert capsys.readouterr().out.strip() == f"mte (multitask-evidence) {installed}"

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.package_version() == VERSION  # read from the checkout's pyproject.toml


def test_license_is_mit_as_declared():
    assert 'license = "MIT"' in PYPROJECT
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_citation_names_the_paper_and_this_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == VERSION
    assert cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Disentangling Representations through Multi-task Learning"
    assert [a["family-names"] for a in paper["authors"]] == ["Vafidis", "Bhargava", "Rangel"]
    assert paper["year"] == 2025 and "ICLR" in paper["conference"]["name"]
    assert "2407.11249" in paper["url"]


def test_changelog_covers_this_version():
    assert f"## {VERSION}" in (ROOT / "CHANGELOG.md").read_text()


def test_py_typed_in_every_package_and_in_package_data():
    assert re.search(r'\[tool\.setuptools\.package-data\]\n"\*" = \["py\.typed"\]', PYPROJECT)
    assert (ROOT / "src" / "multitask_evidence" / "py.typed").is_file()
    for pkg in ("common", "envs", "agents", "probes", "experiments"):
        assert (ROOT / pkg / "py.typed").is_file(), pkg

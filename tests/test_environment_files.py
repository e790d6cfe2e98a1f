"""requirements.txt, environment.yml and pyproject.toml name the same packages and ranges."""

import re
from pathlib import Path

from packaging.requirements import Requirement

COURSE = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def from_requirements_txt():
    lines = [l.strip() for l in (COURSE / "requirements.txt").read_text().splitlines()]
    return {str(Requirement(l)) for l in lines if l and not l.startswith(("#", "-e"))}


def from_pyproject():
    text = (COURSE / "pyproject.toml").read_text()
    lists = re.findall(r"^(?:dependencies|dev) = \[\n(.*?)^\]", text, re.M | re.S)
    assert len(lists) == 2, "expected [project] dependencies and the dev extra"
    return {str(Requirement(item)) for block in lists for item in re.findall(r'"([^"]+)"', block)}


def from_environment_yml():
    found = set()
    dependencies = (COURSE / "environment.yml").read_text().split("\ndependencies:\n", 1)[1]
    for item in re.findall(r"^  - ([^\n:]+)$", dependencies, re.M):
        name = re.match(r"[A-Za-z0-9_.-]+", item).group(0)
        if name not in NOT_PACKAGES:
            found.add(str(Requirement(CONDA_TO_PIP.get(name, name) + item[len(name):])))
    return found


def test_the_three_files_agree():
    pip, project, conda = from_requirements_txt(), from_pyproject(), from_environment_yml()
    assert pip == project, f"requirements.txt vs pyproject.toml: {pip ^ project}"
    assert pip == conda, f"requirements.txt vs environment.yml: {pip ^ conda}"


def test_the_core_packages_are_there_with_ranges_not_pins():
    requirements = {Requirement(r) for r in from_requirements_txt()}
    names = {r.name for r in requirements}
    assert {"torch", "torchvision", "matplotlib", "jupyterlab", "nbval", "ipywidgets", "tqdm", "tensorboard"} <= names
    for requirement in requirements:
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), f"{requirement} is pinned"
        assert any(s.operator in (">=", ">") for s in requirement.specifier), f"{requirement} has no lower bound"


def test_both_files_install_the_course_package_itself():
    assert "-e ." in (COURSE / "requirements.txt").read_text().splitlines()
    assert "      - -e ." in (COURSE / "environment.yml").read_text().splitlines()

"""requirements.txt, environment.yml and pyproject.toml name the same packages and ranges.

pyproject.toml has two lists: what the lessons import (`dependencies`, what Colab installs) and what
running them locally and testing needs on top (the `dev` extra). A package may appear in both, with a
tighter range in `dev` (ipywidgets: Colab draws 7.7, JupyterLab 4 needs 8); requirements.txt and
environment.yml install everything, so they carry the tighter range.
"""

import re
from pathlib import Path

from packaging.requirements import Requirement

from helpers import minilm

COURSE = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}
# Third-party packages trusted by their checked bytes, and so pinned exactly: the version whose files helpers check.
PINNED_BY_THEIR_BYTES = {minilm.PACKAGE: minilm.PACKAGE_VERSION}


def from_requirements_txt():
    lines = [l.split(" #", 1)[0].strip() for l in (COURSE / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    return {str(Requirement(l)) for l in lines if l and not l.startswith(("#", "-e"))}


def from_pyproject():
    """Both lists merged; where a package is in both, the dev extra's range (it must be the tighter one)."""
    text = (COURSE / "pyproject.toml").read_text(encoding="utf-8")
    lists = re.findall(r"^(?:dependencies|dev) = \[\n(.*?)^\]", text, re.M | re.S)
    assert len(lists) == 2, "expected [project] dependencies and the dev extra"
    merged = {}
    for block in lists:  # dependencies first, then dev
        for item in re.findall(r'^\s*"([^"]+)"', block, re.M):
            requirement = Requirement(item)
            if requirement.name in merged:
                wider = merged[requirement.name].specifier
                lowest = next(s.version for s in requirement.specifier if s.operator == ">=")
                assert lowest in wider, f"{requirement}: the dev range must lie inside the lessons' range {wider}"
            merged[requirement.name] = requirement
    return {str(r) for r in merged.values()}


def from_environment_yml():
    found = set()
    dependencies = (COURSE / "environment.yml").read_text(encoding="utf-8").split("\ndependencies:\n", 1)[1]
    conda_items = re.findall(r"^  - ([^\n:]+)$", dependencies, re.M)
    pip_items = [item.split(" #", 1)[0].strip() for item in re.findall(r"^      - ([^\n]+)$", dependencies, re.M)]
    for item in conda_items + [item for item in pip_items if item != "-e ."]:
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
        if requirement.name in PINNED_BY_THEIR_BYTES:
            assert [s.operator for s in requirement.specifier] == ["=="], f"{requirement}: its bytes are checked for one version"
            assert str(requirement.specifier) == f"=={PINNED_BY_THEIR_BYTES[requirement.name]}"
            continue
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), f"{requirement} is pinned"
        assert any(s.operator in (">=", ">") for s in requirement.specifier), f"{requirement} has no lower bound"


def test_both_files_install_the_course_package_itself():
    assert "-e ." in (COURSE / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "      - -e ." in (COURSE / "environment.yml").read_text(encoding="utf-8").splitlines()

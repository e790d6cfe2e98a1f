"""The Colab path, simulated offline: a lesson opened from its badge, run in a Python that has never seen the course.

What Colab does, and how this test plays it:

- the notebook is not inside a clone: it runs from a folder of its own (Colab's /content), so only
  the setup cell can bring the course in;
- `google.colab` is in `sys.modules` from the kernel's start (an IPython startup file puts a fake
  module there);
- PyTorch and the scientific stack are preinstalled: a fresh venv sees this project's packages
  through a `.pth` file, except the course itself, `tqdm` (a dependency the setup cell must install)
  and ipywidgets, for which the venv gets 7.7.1, the version Colab ships and draws;
- the repository URL is a bare clone of this working tree (`COURSE_REPO_URL`, which a learner can
  set too), reached through git's file:// transport, as a fork's URL would be.

The test then executes lesson 00 after the setup cell, and the tests of the course's two widgets under
ipywidgets 7.7.1 (which draws an `interactive` only when it is displayed, unlike 8).
It needs PyPI for ipywidgets 7.7.1 and for pip's build of the course; without it, it is skipped and
says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

COURSE = Path(__file__).resolve().parents[1]
LESSON = "00_setup_and_tour.ipynb"
NOT_PREINSTALLED = ("ipywidgets", "widgetsnbextension", "jupyterlab_widgets", "tqdm", "pytorch_course", "__editable__")
COLAB_IPYWIDGETS = "7.7.1"
FAKE_COLAB = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"


def run(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, encoding="utf-8", **kwargs)


def bare_clone_of_working_tree(tmp: Path) -> Path:
    """A bare repository holding this working tree as it is now (committed or not), as a remote would."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=COURSE, check=True).stdout.split("\0")
    source = tmp / "source"
    for name in filter(None, files):
        if (COURSE / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(COURSE / name, source / name)
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost"]
    for step in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "snapshot"]):
        run(["git", *step], cwd=source, check=True)
    run(["git", "clone", "-q", "--bare", str(source), str(tmp / "course.git")], check=True)
    return tmp / "course.git"


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    if os.name == "nt":
        pytest.skip("Colab is a Linux runtime; the fake one is built from symbolic links, which Windows restricts")
    """A fake Colab runtime: its python, a jupyter path with its kernel, and the environment variables."""
    tmp = tmp_path_factory.mktemp("colab")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    venv_site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True).stdout.strip())

    preinstalled = tmp / "preinstalled"
    preinstalled.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.lower().startswith(NOT_PREINSTALLED) and not entry.name.endswith(".pth"):
            (preinstalled / entry.name).symlink_to(entry)
    (venv_site / "zz_colab_preinstalled.pth").write_text(f"{preinstalled}\n", encoding="utf-8")

    pip = run([str(python), "-m", "pip", "install", "-q", f"ipywidgets=={COLAB_IPYWIDGETS}"])
    if pip.returncode != 0:
        if "Could not find a version" in pip.stderr or "connection" in pip.stderr.lower():
            pytest.skip(f"no package index to install ipywidgets {COLAB_IPYWIDGETS} from: {pip.stderr.strip()[-300:]}")
        pytest.fail(pip.stderr)

    ipython_dir, jupyter_dir, content = tmp / "ipython", tmp / "jupyter", tmp / "content"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-fake-colab.py").write_text(FAKE_COLAB, encoding="utf-8")
    (jupyter_dir / "kernels" / "python3").mkdir(parents=True)
    kernel = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Colab", "language": "python"}
    (jupyter_dir / "kernels" / "python3" / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    content.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    env.update(
        IPYTHONDIR=str(ipython_dir), JUPYTER_PATH=str(jupyter_dir), PYTHONNOUSERSITE="1",
        COURSE_FAST="1", COURSE_OFFLINE="1", COURSE_ROOT=str(content / "pytorch-course"),
        COURSE_REPO_URL=(bare_clone_of_working_tree(tmp).as_uri()),
    )
    return {"python": python, "env": env, "content": content, "site": venv_site}


def execute(colab, notebook: nbformat.NotebookNode, env: dict, allow_errors: bool = False) -> nbformat.NotebookNode:
    """Execute `notebook` in the fake Colab's kernel, from its /content, and return the executed copy."""
    path = colab["content"] / "lesson.ipynb"
    nbformat.write(notebook, path)
    command = [str(colab["python"]), "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path),
               "--ExecutePreprocessor.timeout=600", *(["--allow-errors"] if allow_errors else [])]
    result = run(command, cwd=colab["content"], env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return nbformat.read(path, as_version=4)


def outputs(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) + o.get("evalue", "") for o in cell.outputs)


def test_a_failed_clone_ends_with_a_message_not_a_traceback(colab):
    lesson = nbformat.read(COURSE / "notebooks" / LESSON, as_version=4)
    lesson.cells = lesson.cells[:2]
    missing = colab["content"] / "nowhere.git"
    env = {**colab["env"], "COURSE_REPO_URL": missing.as_uri(), "COURSE_ROOT": str(colab["content"] / "not-cloned")}
    setup = execute(colab, lesson, env, allow_errors=True).cells[1]
    errors = [o for o in setup.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["SystemExit"], outputs(setup)
    assert f"Could not fetch the course from {missing.as_uri()}" in errors[0].evalue
    assert "COURSE_REPO_URL" in errors[0].evalue, "the message should say how to point at another copy"
    assert not any("Traceback" in line or "File " in line for line in errors[0].traceback), errors[0].traceback
    assert not (colab["content"] / "not-cloned").exists() and not (colab["content"] / "not-cloned.partial").exists()


def test_the_setup_cell_installs_the_course_and_lesson_00_runs(colab):
    lesson = nbformat.read(COURSE / "notebooks" / LESSON, as_version=4)
    probe = "import helpers, ipywidgets, tqdm\nprint('helpers:', helpers.__file__)\nprint('ipywidgets:', ipywidgets.__version__)\nprint('tqdm:', tqdm.__file__)"
    lesson.cells.append(nbformat.v4.new_code_cell(probe))
    executed = execute(colab, lesson, colab["env"])

    assert "Mode: fast" in outputs(executed.cells[1]), outputs(executed.cells[1])
    found = dict(line.split(": ", 1) for line in outputs(executed.cells[-1]).splitlines())
    site = str(colab["site"])
    assert found["helpers"].startswith(site), f"helpers should be installed into Colab's Python, not found elsewhere: {found}"
    assert found["tqdm"].startswith(site), f"tqdm, missing from the fake Colab, should have been installed: {found}"
    assert found["ipywidgets"] == COLAB_IPYWIDGETS, "the setup cell should leave Colab's own ipywidgets alone"
    assert (Path(colab["env"]["COURSE_ROOT"]) / "helpers" / "config.py").is_file()


def test_the_widgets_work_with_colabs_ipywidgets(colab):
    clone = Path(colab["env"]["COURSE_ROOT"])
    if not clone.is_dir():
        pytest.skip("the clone is made by test_the_setup_cell_installs_the_course_and_lesson_00_runs")
    # The tests that build and drive the two widgets (the others draw with matplotlib alone).
    command = [str(colab["python"]), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_widgets.py", "-k", "playground or explorer"]
    result = run(command, cwd=clone, env=colab["env"], timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

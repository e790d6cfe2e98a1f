"""CI: the GitHub Actions workflow runs README's test command on every system and version set, weekly too;
the lowest versions come from tools/lowest_constraints.py; and the suite's parallel set-up is in place."""

import importlib.util
import re
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[1]
WORKFLOW = COURSE / ".github" / "workflows" / "tests.yml"
spec = importlib.util.spec_from_file_location("lowest_constraints", COURSE / "tools" / "lowest_constraints.py")
lowest_constraints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lowest_constraints)


@pytest.fixture(scope="module")
def workflow():
    yaml = pytest.importorskip("yaml")  # PyYAML comes with transformers and datasets
    parsed = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    parsed["on"] = parsed.pop(True, parsed.get("on"))  # YAML 1.1 reads the key `on` as the boolean true
    return parsed


def steps(workflow):
    return workflow["jobs"]["test"]["steps"]


def readme():
    return (COURSE / "README.md").read_text(encoding="utf-8")


def test_the_workflow_runs_on_push_pull_requests_by_hand_and_weekly(workflow):
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(workflow["on"])
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert len(crons) == 1
    minute, hour, day_of_month, month, day_of_week = crons[0].split()
    # weekly: one fixed time on one day of the week ("0 * * * *" would be hourly, "0 4 * * *" daily, "0 4 1 * *" monthly)
    assert minute.isdigit() and 0 <= int(minute) < 60 and hour.isdigit() and 0 <= int(hour) < 24, crons[0]
    assert (day_of_month, month) == ("*", "*") and day_of_week.isdigit() and 0 <= int(day_of_week) <= 6, crons[0]


def test_the_matrix_is_three_systems_by_lowest_and_newest(workflow):
    strategy = workflow["jobs"]["test"]["strategy"]
    matrix = strategy["matrix"]
    assert {os.split("-")[0] for os in matrix["os"]} == {"ubuntu", "macos", "windows"}
    assert set(matrix["deps"]) == {"lowest", "newest"}
    pythons = {entry["deps"]: entry["python"] for entry in matrix["include"]}
    assert set(pythons) == {"lowest", "newest"}
    lowest_python = re.search(r'requires-python = ">=(\d+\.\d+)"', (COURSE / "pyproject.toml").read_text(encoding="utf-8"))[1]
    assert pythons["lowest"] == lowest_python, "the lowest job should run the lowest Python the course supports"
    assert tuple(map(int, pythons["newest"].split("."))) > tuple(map(int, pythons["lowest"].split(".")))
    assert strategy["fail-fast"] is False, "one failing system must not cancel the others"
    uses = [step["uses"].split("@")[0] for step in steps(workflow) if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python"]
    setup_python = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/setup-python"))
    assert setup_python["with"]["cache"] == "pip" and setup_python["with"]["python-version"] == "${{ matrix.python }}"


def test_the_lowest_job_installs_under_the_constraints_of_the_script(workflow):
    pin = next(step for step in steps(workflow) if "lowest_constraints.py" in step.get("run", ""))
    assert pin["if"] == "matrix.deps == 'lowest'"
    assert "python tools/lowest_constraints.py requirements.txt" in pin["run"] and "PIP_CONSTRAINT=" in pin["run"]
    assert ">> \"$GITHUB_ENV\"" in pin["run"], "the constraint must reach the later install steps"
    installs = [i for i, step in enumerate(steps(workflow)) if step is not pin and ("pip install" in step.get("run", "") or "make setup" in step.get("run", ""))]
    assert len(installs) == 2 and steps(workflow).index(pin) < min(installs), "the pins must be in place before anything is installed"


def test_the_workflow_runs_readmes_test_command(workflow):
    makefile = (COURSE / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test: setup\n\t(.+)$", makefile, re.M)[1]
    command = "COURSE_FAST=1 COURSE_STRICT=1 .venv/bin/python -m pytest"
    assert recipe.replace("$(BIN)", ".venv/bin") == command
    assert f"```bash\n{command}\n```" in readme() and "```bash\nmake test\n```" in readme()
    assert "make test" in (COURSE / ".ci" / "run").read_text(encoding="utf-8")

    unix = [step for step in steps(workflow) if step.get("if") == "runner.os != 'Windows'"]
    assert [step["run"] for step in unix][-1] == "make test"
    windows = [step for step in steps(workflow) if step.get("if") == "runner.os == 'Windows'"][-1]
    row = re.search(r"^\| `make test` \| `(.+)` \|$", readme(), re.M)[1]  # README's PowerShell equivalent
    variables = dict(re.findall(r'\$env:(\w+) = "(\w+)"', row))
    assert windows["env"] == variables == {"COURSE_FAST": "1", "COURSE_STRICT": "1"}
    assert windows["run"] == row.split("; ")[-1] == r".venv\Scripts\python -m pytest"


def test_the_lowest_constraints_pin_every_requirement_to_its_lower_bound(tmp_path):
    pins = lowest_constraints.lowest_pins(COURSE / "requirements.txt")
    requirements = [line.split("#")[0].strip() for line in (COURSE / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    requirements = [line for line in requirements if line and not line.startswith("-")]
    assert len(pins) == len(requirements) and "-e ." not in pins
    for requirement, pin in zip(requirements, pins):
        name, lower = re.match(r"([\w.-]+).*?(?:>=|==)([\w.]+)", requirement).groups()  # an exact pin (== ) is its own lowest
        assert pin == f"{name}=={lower}", (requirement, pin)
    assert pins[0] == "torch==" + re.search(r"^torch>=([\d.]+)", (COURSE / "requirements.txt").read_text(encoding="utf-8"), re.M)[1]

    out = tmp_path / "constraints.txt"
    assert lowest_constraints.main([str(COURSE / "requirements.txt"), str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1:] == pins


def test_extras_markers_exact_pins_and_comments(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# a comment\n\n-e .\nfoo[bar]>=1.2,<2  # why\nbaz==3.1\nqux >= 0.5 ; python_version < '3.12'\n", encoding="utf-8")
    assert lowest_constraints.lowest_pins(path) == ["foo==1.2", "baz==3.1", "qux==0.5 ; python_version < '3.12'"]


@pytest.mark.parametrize("line", ["torch<3", "numpy", "scipy>1.10", "pillow~=10.0"])
def test_a_requirement_without_a_lower_bound_is_named(tmp_path, line, capsys):
    path = tmp_path / "requirements.txt"
    path.write_text(f"torch>=2.4,<3\n{line}\n", encoding="utf-8")
    with pytest.raises(lowest_constraints.NoLowerBound, match=re.escape(f"{path}:2: {line!r} has no lower bound")):
        lowest_constraints.lowest_pins(path)
    assert lowest_constraints.main([str(path), str(tmp_path / "out.txt")]) == 1
    assert f"{path}:2:" in capsys.readouterr().err and not (tmp_path / "out.txt").exists()


def test_the_suite_runs_on_two_workers_with_notebooks_kept_whole():
    addopts = re.search(r'^addopts = "(.+)"$', (COURSE / "pyproject.toml").read_text(encoding="utf-8"), re.M)[1].split()
    assert addopts[addopts.index("-n") + 1] == "2"
    assert addopts[addopts.index("--dist") + 1] == "loadfile", "a notebook's cells share one kernel: they must stay on one worker"


def test_a_lessons_cells_form_one_group_and_the_longest_start_first():
    spec = importlib.util.spec_from_file_location("tests_conftest", COURSE / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)  # by path: the repository's top level has a conftest.py too
    spec.loader.exec_module(conftest)

    assert conftest.group_of("notebooks/05_fine_tuning_a_resnet.ipynb::Cell 3") == conftest.group_of("notebooks/05_fine_tuning_a_resnet.ipynb::Cell 40") == "lesson05"
    assert conftest.group_of("tests/test_student.py::test_student_copy_holds_no_answer[05_fine_tuning_a_resnet]") == "tests/test_student.py"
    assert conftest.group_of("tests/test_colab.py::test_a") == conftest.group_of("tests/test_colab.py::test_b")
    lesson05 = "notebooks/05_fine_tuning_a_resnet.ipynb::Cell 0"
    order = sorted(["tests/test_config.py::test_x", "notebooks/03_backprop_by_hand.ipynb::Cell 0", lesson05, "notebooks/99_new.ipynb::Cell 0"],
                   key=lambda nodeid: -conftest.expected_seconds(nodeid))
    assert order == ["notebooks/99_new.ipynb::Cell 0", lesson05, "notebooks/03_backprop_by_hand.ipynb::Cell 0", "tests/test_config.py::test_x"]

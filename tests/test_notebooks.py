"""The conventions every lesson follows (COURSE_DESIGN.md §7); nbval runs the lessons themselves."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

COURSE = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((COURSE / "notebooks").glob("*.ipynb"))


def test_lessons_are_numbered_from_00_and_every_gap_is_announced():
    assert NOTEBOOKS, "no notebook in notebooks/"
    names = [p.name for p in NOTEBOOKS]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names
    numbers = [int(n[:2]) for n in names]
    assert numbers[0] == 0 and len(set(numbers)) == len(numbers), names
    readme = (COURSE / "README.md").read_text(encoding="utf-8")
    for missing in sorted(set(range(numbers[-1])) - set(numbers)):
        announced = re.search(rf"^\| {missing:02d} \| [^|]*\*\(in preparation\)\*", readme, re.M)
        assert announced, f"there is no lesson {missing:02d}, and README's lesson table does not mark it as in preparation"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts (run nbstripout)"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.metadata["kernelspec"]["language"] == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_lesson_conventions(path):
    cells = nbformat.read(path, as_version=4).cells
    intro, setup = cells[0], cells[1]
    assert intro.cell_type == "markdown" and intro.source.startswith(f"# {path.name[:2]} · ")
    assert "**Learning goals.**" in intro.source and "colab-badge.svg" in intro.source
    assert setup.cell_type == "code" and "google.colab" in setup.source and "config.report()" in setup.source
    headings = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")]
    assert "## Summary" in headings and "## Exercises" in headings, f"{path.name}: needs a summary and exercises"
    solutions = sum(c.source.count("### BEGIN SOLUTION") for c in cells)
    assert solutions >= 2 and solutions == sum(c.source.count("### END SOLUTION") for c in cells)


def test_every_notebook_has_the_badge_and_setup_cell_of_tools_set_setup_cells():
    result = subprocess.run([sys.executable, str(COURSE / "tools" / "set_setup_cells.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_lists_every_lesson():
    readme = (COURSE / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        title = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"][0].strip().removeprefix("# ")
        assert f"notebooks/{path.name}" in readme, f"README does not link {path.name}"
        assert title.split(" · ", 1)[1] in readme, f"README does not name the lesson '{title}'"

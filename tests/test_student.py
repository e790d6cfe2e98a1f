"""Student copies: generated from the lessons, up to date, free of answers, and runnable to the end."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
make_student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_student)


def lesson_notebook(tmp_path, cells, name="07_example.ipynb"):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 07 · Example\n(badge: /blob/main/notebooks/07_example.ipynb)")] + cells)
    path = tmp_path / name
    nbformat.write(notebook, path)
    return path


def test_committed_student_copies_are_up_to_date():
    for lesson in LESSONS:
        expected = nbformat.writes(make_student.student_notebook(lesson)).rstrip("\n") + "\n"
        committed = ROOT / "student" / lesson.name
        assert committed.is_file(), f"{committed} is missing: run `make student`"
        assert committed.read_text(encoding="utf-8") == expected, f"{committed} is out of date: run `make student`"
    assert sorted(p.name for p in (ROOT / "student").glob("*.ipynb")) == [p.name for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_student_copy_holds_no_answer(lesson):
    student = make_student.student_notebook(lesson)
    original = nbformat.read(lesson, as_version=4)
    solutions = [make_student.SOLUTION.search(c.source).group(1) for c in original.cells if make_student.BEGIN in c.source]
    assert "SOLUTION" not in "\n".join(c.source for c in student.cells)
    # the lesson itself may teach the same lines; only the exercise cells must not hold the answer
    text = "\n".join(c.source for c in student.cells if "# TODO (Exercise" in c.source)
    for solution in solutions:
        body = [line for line in solution.splitlines() if line.strip() and not re.match(r"\s*(def|class) ", line)]
        assert not any(line in text.splitlines() for line in body), f"{lesson.name}: a line of an answer is in the student copy"
    assert text.count("# TODO (Exercise") == len(solutions) >= 2
    assert "/blob/main/student/" in student.cells[0].source and "Student copy" in student.cells[0].source


def test_stubs_for_functions_classes_and_values(tmp_path):
    path = lesson_notebook(tmp_path, [nbformat.v4.new_code_cell(
        "### BEGIN SOLUTION\n"
        "class Thing(Base):\n    def __init__(self, a, *, b=2):\n        self.a = a\n\n"
        "def helper(x, y=1):\n    return x + y\n"
        "scratch = 3\n"
        "answer, other = helper(scratch), 4\n"
        "### END SOLUTION\n"
        "exercises.check_thing(Thing, helper, answer)"
    )])
    source = make_student.student_notebook(path).cells[1].source
    assert "class Thing(Base):\n    def __init__(self, a, *, b=2):\n        raise NotImplementedError(\"Exercise 07.1: write Thing.__init__ here\")" in source
    assert "def helper(x, y=1):\n    raise NotImplementedError(\"Exercise 07.1: write helper() here\")" in source
    assert "answer = TODO" in source and "scratch" not in source and "other" not in source
    assert source.endswith("exercises.check_thing(Thing, helper, answer)")
    namespace = {}
    exec(compile(source.replace("exercises.check_thing", "print"), "student", "exec"), {"Base": object, "print": lambda *a: namespace.update(args=a)})
    thing, helper, answer = namespace["args"]
    with pytest.raises(NotImplementedError, match="Exercise 07.1"):
        helper(1)
    with pytest.raises(NotImplementedError, match="Thing.__init__"):
        thing(1)
    assert repr(answer) == "TODO"


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nprint(x)", "not followed by a call to a check"),
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nexercises.check_y(y)", "none of the names"),
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION\nexercises.check(x, y)", "one ### BEGIN SOLUTION"),
    ],
)
def test_malformed_exercises_are_named(tmp_path, source, message):
    path = lesson_notebook(tmp_path, [nbformat.v4.new_code_cell(source)])
    with pytest.raises(make_student.StudentCopyError, match=rf"07_example.ipynb, cell 1: .*{message}"):
        make_student.student_notebook(path)


def test_a_lesson_without_exercises_is_refused(tmp_path):
    path = lesson_notebook(tmp_path, [nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(make_student.StudentCopyError, match="07_example.ipynb: no exercise"):
        make_student.student_notebook(path)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_student_copy_is_the_lesson_up_to_its_exercises(lesson):
    """What lets the lesson's nbval run stand for a run of its student copy (see conftest.py at the top).

    The exercises come last, and every code cell before the first one is the lesson's, verbatim: so when
    nbval reaches the first exercise, the kernel holds what a learner's kernel holds there.
    """
    original = nbformat.read(lesson, as_version=4).cells
    student = make_student.student_notebook(lesson).cells
    assert len(student) == len(original)
    exercises = [i for i, cell in enumerate(original) if cell.cell_type == "code" and make_student.BEGIN in cell.source]
    later = [i for i, cell in enumerate(original) if cell.cell_type == "code" and i > exercises[0] and i not in exercises]
    assert not later, f"{lesson.name}: code cells {later} come after the first exercise; put the exercises last"
    for i in range(exercises[0]):
        if original[i].cell_type == "code":
            assert student[i].source == original[i].source, f"{lesson.name}, cell {i}: the student copy's code differs"
    assert all("# TODO (Exercise" in student[i].source for i in exercises)


def run_lesson(path):
    """pytest with nbval and this repository's settings on one notebook, in a child process, as `make test` runs it."""
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "-p", "conftest", "-n", "0", "-q", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_lesson_run_executes_the_student_exercises_before_the_answers(tmp_path):
    """conftest.py's hook, on a lesson in notebooks/: a stub that fails, or that prints nothing, fails the run."""
    (tmp_path / "notebooks").mkdir()
    lesson = tmp_path / "notebooks" / "99_student_hook_probe.ipynb"
    def notebook(check_body):
        cells = [
            nbformat.v4.new_markdown_cell("# 99 · Probe\n(badge: /blob/main/notebooks/99_student_hook_probe.ipynb)"),
            nbformat.v4.new_code_cell("seen = []\ndef check_double(f):\n" + check_body),
            nbformat.v4.new_code_cell("### BEGIN SOLUTION\ndef double(x):\n    return 2 * x\n### END SOLUTION\ncheck_double(double)"),
        ]
        return nbformat.v4.new_notebook(cells=cells)

    # the answer's check insists that the stub ran before it, in the same kernel
    good = ("    try:\n        assert f(2) == 4\n        assert seen == ['stub'], seen\n        seen.append('answer')\n"
            "    except NotImplementedError:\n        seen.append('stub')\n        print('not done yet')\n")
    silent = good.replace("print('not done yet')", "pass")
    nbformat.write(notebook(good), lesson)
    result = run_lesson(lesson)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-3000:]
    nbformat.write(notebook(silent), lesson)
    result = run_lesson(lesson)
    assert result.returncode != 0 and "did not say 'not done yet'" in result.stdout, result.stdout[-3000:]
    nbformat.write(notebook(good.replace("seen.append('stub')", "seen.append(undefined_name)")), lesson)
    result = run_lesson(lesson)
    assert result.returncode != 0 and "exercise cell 1 of 1 raised" in result.stdout and "undefined_name" in result.stdout, result.stdout[-3000:]

"""Student copies: generated from the lessons, up to date, free of answers, and runnable to the end."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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
def test_student_copy_runs_to_the_end_and_says_not_done(lesson, monkeypatch):
    """Executes the student copy in fast mode: no cell fails, and every exercise reports 'not done yet'."""
    monkeypatch.setenv("COURSE_FAST", "1")
    student = make_student.student_notebook(lesson)
    NotebookClient(student, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "student")}}).execute()
    exercise_outputs = [
        "".join(output.get("text", "") for output in cell.outputs)
        for cell in student.cells
        if cell.cell_type == "code" and "# TODO (Exercise" in cell.source
    ]
    assert len(exercise_outputs) >= 2
    for output in exercise_outputs:
        assert "not done yet" in output, output

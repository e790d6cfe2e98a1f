"""Run each lesson's student copy inside the lesson's own nbval run, instead of executing it a second time.

A student copy (tools/make_student.py) is its lesson with the answers of the exercises replaced by stubs,
and every lesson keeps its exercises at the end. So the student copy is the lesson's cells up to the
first exercise, verbatim (tests/test_student.py asserts this), followed by the stubbed exercise cells.
When nbval reaches a lesson's first exercise cell, its kernel holds exactly the state the student
copy has at that point; the hook below runs the student's exercise cells there, in order, and fails
the cell's test if one raises or does not say "not done yet". Only then does nbval run the lesson's
own answers. One execution of the lesson thereby checks both notebooks, as two executions did before.

This file sits at the top of the repository so that it applies to a run of one notebook as well.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from queue import Empty

import pytest

ROOT = Path(__file__).resolve().parent
LESSON = re.compile(r"\d\d_\w+\.ipynb")


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_exercise_cells(lesson: Path) -> tuple[str, list[str]]:
    """The source of the lesson's first exercise cell, and the student copy's code cells from there on."""
    make_student = _make_student()
    import nbformat

    cells = nbformat.read(lesson, as_version=4).cells
    first = next(i for i, cell in enumerate(cells) if cell.cell_type == "code" and make_student.BEGIN in cell.source)
    student = make_student.student_notebook(lesson).cells
    return cells[first].source, [cell.source for cell in student[first:] if cell.cell_type == "code"]


def run_in_kernel(kernel, source: str, timeout: float) -> tuple[str, list[str]]:
    """Execute `source` in nbval's kernel; return its printed text and the tracebacks of any errors."""
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    try:
        kernel.await_reply(msg_id, timeout=timeout)
    except Empty:
        kernel.interrupt()
        raise
    text, errors = [], []
    while True:
        msg = kernel.get_message(stream="iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content["text"])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(text), errors


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    lesson = Path(str(item.path))
    if type(item).__name__ != "IPyNbCell" or lesson.parent.name != "notebooks" or not LESSON.fullmatch(lesson.name):
        return
    if not hasattr(item.parent, "student_exercises"):  # worked out once per notebook
        item.parent.student_exercises = student_exercise_cells(lesson)
    first, stubs = item.parent.student_exercises
    if item.cell.source != first:
        return
    timeout = item.config.option.nbval_cell_timeout
    for number, source in enumerate(stubs, 1):
        text, errors = run_in_kernel(item.parent.kernel, source, timeout)
        where = f"student/{lesson.name}, exercise cell {number} of {len(stubs)}"
        if errors:
            raise AssertionError(f"{where} raised (a learner who skips this exercise hits it):\n" + "\n".join(errors))
        if "not done yet" not in text:
            raise AssertionError(f"{where} did not say 'not done yet'; it printed:\n{text}")

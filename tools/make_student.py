"""Write the student copies of the lessons, every reference answer replaced by a TODO.

    python tools/make_student.py            # notebooks/*.ipynb -> student/*.ipynb
    python tools/make_student.py --check    # exit 1 if student/ differs from what it would write

A lesson holds the reference answer to each exercise between `### BEGIN SOLUTION` and
`### END SOLUTION` (the nbgrader convention), in a code cell that then calls a check from
`helpers.exercises`. The student copy keeps everything else and puts in place of the answer:

- for each function the answer defines: the same signature, with a body that raises NotImplementedError;
- for each class: the same class, each method raising NotImplementedError;
- for each other name that the cell's check receives: `name = TODO`.

A check given a TODO, or a function that raises NotImplementedError, prints "not done yet" instead
of failing, so a student copy runs from top to bottom.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SOLUTION = re.compile(rf"^{BEGIN}\n(.*?)^{END}\n?", re.S | re.M)


class StudentCopyError(ValueError):
    pass


def checked_names(code: str) -> set[str]:
    """Names passed to `exercises.check_*(...)` / `check_*(...)` calls in `code`."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function.startswith("check_"):
                names |= {arg.id for arg in node.args if isinstance(arg, ast.Name)}
    return names


def raising(name: str, exercise: str, indent: str) -> str:
    return f'{indent}raise NotImplementedError("{exercise}: write {name} here")'


def stub(solution: str, checked: set[str], exercise: str) -> str:
    """The student's version of one solution region."""
    lines = [f"# TODO ({exercise}): replace the lines below with your answer."]
    values = []
    for node in ast.parse(solution).body:
        if isinstance(node, ast.FunctionDef):
            lines += [f"def {node.name}({ast.unparse(node.args)}):", raising(f"{node.name}()", exercise, "    "), ""]
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(base) for base in node.bases)
            lines.append(f"class {node.name}({bases}):" if bases else f"class {node.name}:")
            methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
            for method in methods:
                lines += [f"    def {method.name}({ast.unparse(method.args)}):", raising(f"{node.name}.{method.name}", exercise, "        "), ""]
            if not methods:
                lines.append("    pass")
            lines.append("")
        else:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                for name in ast.walk(target) if target is not None else []:
                    if isinstance(name, ast.Name) and name.id in checked and name.id not in values:
                        values.append(name.id)
    if values:
        lines += ["from helpers.exercises import TODO", ""] + [f"{name} = TODO" for name in values]
    return "\n".join(lines).rstrip() + "\n"


NOTE = ("\n\n> **Student copy.** The {number} exercises at the end hold a TODO where your answer goes; "
        "the check under each one says whether your answer is right, or what to look at. "
        "The lesson with the reference answers is `notebooks/{name}`.")


def student_notebook(path: Path, notebook=None, note: str = NOTE):
    """The student copy of the lesson at `path` (or of `notebook`, the lesson at that path), as a notebook object.

    `note` (with {number} and {name}) is added to the first cell; tools/make_translation.py passes its own language's.
    """
    notebook = nbformat.read(path, as_version=4) if notebook is None else notebook
    student = copy.deepcopy(notebook)
    lesson = path.name[:2]
    number = 0
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        regions = SOLUTION.findall(cell.source)
        if len(regions) != 1 or cell.source.count(BEGIN) != 1:
            raise StudentCopyError(f"{path.name}, cell {index}: expected one {BEGIN} ... {END} region, found {cell.source.count(BEGIN)}")
        number += 1
        exercise = f"Exercise {lesson}.{number}"
        after = cell.source[SOLUTION.search(cell.source).end():]
        checked = checked_names(after)
        if not checked:
            raise StudentCopyError(f"{path.name}, cell {index}: the solution is not followed by a call to a check from helpers.exercises")
        solution = regions[0]
        assigned = {n.id for n in ast.walk(ast.parse(solution)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        assigned |= {n.name for n in ast.parse(solution).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        unanswered = checked & assigned
        if not unanswered:
            raise StudentCopyError(f"{path.name}, cell {index}: the check receives none of the names the solution defines")
        separator = "" if after.startswith("\n") else "\n"
        cell.source = SOLUTION.sub(lambda _: stub(solution, unanswered, exercise) + separator, cell.source, count=1)
    if number == 0:
        raise StudentCopyError(f"{path.name}: no exercise with a {BEGIN} region")
    first = student.cells[0]
    # notebooks/ -> student/, and zh/notebooks/ -> zh/student/: the badge opens the student copy
    first.source = re.sub(r"(/blob/main/(?:[a-z]{2}/)?)notebooks/", r"\1student/", first.source) + note.format(number=number, name=path.name)
    return student


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "student")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    lessons = sorted(args.lessons.glob("[0-9][0-9]_*.ipynb"))
    expected = {path.name: nbformat.writes(student_notebook(path)).rstrip("\n") + "\n" for path in lessons}
    if args.check:
        present = {path.name for path in args.out.glob("*.ipynb")} if args.out.is_dir() else set()
        stale = sorted(name for name, text in expected.items() if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text)
        extra = sorted(present - set(expected))
        for name in stale:
            print(f"{args.out / name}: out of date; run `make student`")
        for name in extra:
            print(f"{args.out / name}: has no lesson in {args.lessons}; remove it")
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {args.out / name}")
    for path in args.out.glob("*.ipynb"):
        if path.name not in expected:
            path.unlink()
            print(f"removed {path} (no such lesson)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""List every text read or write that relies on the platform's default encoding.

    python tools/check_encoding.py [PATH ...]   # default: helpers, tests, tools, benchmarks, notebooks

Windows' default encoding is cp1252, which cannot decode the UTF-8 the course's files hold, so
every `open()` in text mode and every `Path.read_text()` / `Path.write_text()` must say
`encoding="utf-8"`. Ruff's unspecified-encoding rule (PLW1514) catches `open()`, but not
`read_text()` on a path it cannot prove is a `Path`; this check catches both, in .py files and in
the code cells of notebooks. Exits 1 and lists `file:line` for each one found.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["helpers", "tests", "tools", "benchmarks", "notebooks"]


def sources(paths: list[Path]):
    """(where, code) for each .py file and each notebook code cell under `paths`."""
    for top in paths:
        for path in sorted([top] if top.is_file() else [*top.rglob("*.py"), *top.rglob("*.ipynb")]):
            if path.suffix == ".py":
                yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
            elif path.suffix == ".ipynb":
                for number, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
                    if cell["cell_type"] == "code":
                        lines = [magic_as_pass(line) for line in "".join(cell["source"]).splitlines()]
                        yield f"{path.relative_to(ROOT)} cell {number}", "\n".join(lines)


def magic_as_pass(line: str) -> str:
    """IPython's %magic and !shell lines are not Python: read them as `pass`, at the same indentation."""
    code = line.lstrip()
    return line[: len(line) - len(code)] + "pass" if code.startswith(("%", "!")) else line


def is_binary_mode(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and "b" in str(mode.value)


def path_open_in_text_mode(call: ast.Call) -> bool:
    """`path.open()`, `path.open("w")`: Path.open's first argument is the mode. Calls whose first
    argument is something else (PIL's Image.open(file), urllib's opener.open(url)) are not text files."""
    mode = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None:
        return not call.args
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" not in mode.value


def unencoded(code: str) -> list[int]:
    """Line numbers of text-mode open() / read_text() / write_text() calls without encoding=."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call) or any(k.arg in ("encoding", None) for k in node.keywords):
            continue
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr in ("read_text", "write_text"):
            found.append(node.lineno)
        elif isinstance(function, ast.Attribute) and function.attr == "open" and path_open_in_text_mode(node):
            found.append(node.lineno)
        elif isinstance(function, ast.Name) and function.id == "open" and not is_binary_mode(node):
            found.append(node.lineno)
    return found


def main(arguments: list[str]) -> int:
    paths = [Path(a).resolve() for a in arguments] or [ROOT / d for d in DEFAULT]
    problems = []
    for where, code in sources(paths):
        try:
            problems += [f"{where}:{line}" for line in unencoded(code)]
        except SyntaxError as error:
            problems.append(f"{where}:{error.lineno}: not valid Python ({error.msg})")
    for problem in problems:
        print(problem if "not valid Python" in problem else f"{problem}: text opened without encoding= (breaks on Windows)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Execute lessons headless; write the executed notebooks and HTML pages to build/.

    python tools/run_notebooks.py                  # every lesson in notebooks/
    python tools/run_notebooks.py notebooks/01_*   # some of them

Prints one line per notebook (PASS or FAIL, and the time it took) and exits non-zero if any
failed. The mode is whatever COURSE_FAST says (full by default).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbclient.exceptions import CellTimeoutError
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
CELL_TIMEOUT_S = 1800


def run(path: Path) -> bool:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    error = None
    try:
        ExecutePreprocessor(timeout=CELL_TIMEOUT_S, kernel_name="python3").preprocess(notebook, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as failure:
        error = f"{failure.ename}: {failure.evalue}" + ("" if failure.evalue else " (see the cell in the executed copy)")
    except CellTimeoutError as failure:  # the outputs so far are still written: they show how far the lesson got
        error = f"a cell ran longer than {CELL_TIMEOUT_S} s ({str(failure).splitlines()[0]})"
    seconds = time.perf_counter() - started
    BUILD.mkdir(exist_ok=True)
    nbformat.write(notebook, BUILD / path.name)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    (BUILD / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
    status = "PASS" if error is None else "FAIL"
    print(f"{status} {path.name:40s} {seconds:7.1f} s" + (f"  {error}" if error else ""), flush=True)
    return error is None


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    results = [run(path) for path in paths]
    print(f"{sum(results)} of {len(results)} notebooks ran without error; executed copies and HTML in {BUILD}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""tools/run_notebooks.py: a lesson that runs too long still leaves its executed copy, showing how far it got."""

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebooks)


def test_a_cell_that_times_out_fails_the_run_and_keeps_the_outputs_so_far(tmp_path, monkeypatch, capsys):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print("reached the first cell")'),
                                               nbformat.v4.new_code_cell("import time\ntime.sleep(60)")])
    path = tmp_path / "slow.ipynb"
    nbformat.write(notebook, path)
    monkeypatch.setattr(run_notebooks, "CELL_TIMEOUT_S", 3)
    monkeypatch.setattr(run_notebooks, "BUILD", tmp_path / "build")
    assert run_notebooks.run(path) is False
    printed = capsys.readouterr().out
    assert "FAIL slow.ipynb" in printed and "a cell ran longer than 3 s" in printed
    executed = nbformat.read(tmp_path / "build" / "slow.ipynb", as_version=4)
    assert "reached the first cell" in executed.cells[0].outputs[0]["text"], "the outputs before the timeout were lost"
    assert (tmp_path / "build" / "slow.html").is_file()

"""Write every lesson's Colab badge and setup cell from one template and the URL in pyproject.toml.

    python tools/set_setup_cells.py          # rewrite the notebooks' badge and setup cell
    python tools/set_setup_cells.py --check  # only report notebooks that disagree; exit 1 if any
    python tools/set_setup_cells.py notebooks/00_*.ipynb   # only these notebooks

The repository URL lives in one place, `Repository = "..."` under [project.urls] in pyproject.toml.
A fork changes that line and runs `make badges`: every badge then opens the fork's notebooks in
Colab, and every setup cell clones the fork. A learner can also point one session at another copy
without editing anything, with `os.environ["COURSE_REPO_URL"] = "..."` before the setup cell.

The setup cell is the same in every lesson (cell 1). In Colab it clones the course (into a
temporary folder, renamed into place only when the clone is complete, so an interrupted clone
never leaves a half-filled folder behind), checks that what it cloned is this course, and
installs the course with its dependencies: pip installs only what Colab lacks and leaves Colab's
own PyTorch alone. A failure ends the cell with a message that says what to do, not a traceback.
Elsewhere the cell only imports `helpers` and reports versions, device and mode.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+)")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")

SETUP_CELL = '''\
# Setup. In Colab: fetch the course and install what Colab lacks. Elsewhere: report the environment.
import importlib.util, os, shutil, subprocess, sys

if "google.colab" in sys.modules:
    COURSE = os.environ.setdefault("COURSE_ROOT", "/content/{repo}")
    REPO_URL = os.environ.get("COURSE_REPO_URL", "{url}")
    if not os.path.isfile(os.path.join(COURSE, "helpers", "config.py")):
        shutil.rmtree(COURSE + ".partial", ignore_errors=True)
        step = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, COURSE + ".partial"], capture_output=True, text=True)
        if step.returncode != 0:
            raise SystemExit(f"Could not fetch the course from {{REPO_URL}}:\\n{{step.stderr.strip()}}\\n"
                             "Check that this runtime is connected to the internet, then run this cell again. "
                             "For another copy of the course: os.environ['COURSE_REPO_URL'] = '<its URL>'.")
        with open(os.path.join(COURSE + ".partial", "pyproject.toml"), encoding="utf-8") as f:
            if 'name = "pytorch-course"' not in f.read():
                raise SystemExit(f"{{REPO_URL}} does not hold this course: its pyproject.toml names no pytorch-course.")
        shutil.rmtree(COURSE, ignore_errors=True)
        os.rename(COURSE + ".partial", COURSE)
    if importlib.util.find_spec("helpers") is None:
        step = subprocess.run([sys.executable, "-m", "pip", "install", "-q", COURSE], capture_output=True, text=True)
        if step.returncode != 0:
            raise SystemExit(f"Could not install the course from {{COURSE}}:\\n{{step.stderr.strip()[-2000:]}}")
        importlib.invalidate_caches()

from helpers import config

config.report();'''


def repository_url() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M)
    if not match or not GITHUB.fullmatch(match.group(1)):
        raise SystemExit("pyproject.toml: [project.urls] Repository must be a https://github.com/OWNER/REPO URL")
    return match.group(1)


def expected(url: str, notebook: Path) -> tuple[str, str]:
    """The badge link and the whole setup cell that `notebook` should contain."""
    owner, repo = GITHUB.fullmatch(url).group("owner", "repo")
    try:  # notebooks/NN_*.ipynb, student/..., zh/notebooks/...: the path inside the repository
        inside = notebook.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        inside = f"{notebook.parent.name}/{notebook.name}"
    badge = f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/{inside}"
    return badge, SETUP_CELL.format(url=url, repo=repo)


def main(check: bool, paths: list[Path]) -> int:
    url, stale, broken = repository_url(), [], []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        badge, setup = expected(url, path)
        intro, setup_cell = notebook.cells[0], notebook.cells[1]
        new_intro = BADGE.sub(badge, intro.source)
        if badge not in new_intro or setup_cell.cell_type != "code" or "google.colab" not in setup_cell.source:
            print(f"{path}: no Colab badge in the first cell, or the second cell is not the setup cell")
            broken.append(path)
            continue
        if (new_intro, setup) != (intro.source, setup_cell.source):
            stale.append(path)
            if check:
                print(f"{path}: badge or setup cell differs from tools/set_setup_cells.py with {url} (run make badges)")
            else:
                intro.source, setup_cell.source = new_intro, setup
                nbformat.write(notebook, path)
                print(f"{path.name}: badge and setup cell now use {url}")
    return 1 if broken or (check and stale) else 0


if __name__ == "__main__":
    named = [Path(a).resolve() for a in sys.argv[1:] if a != "--check"]
    sys.exit(main(check="--check" in sys.argv[1:], paths=named or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))))

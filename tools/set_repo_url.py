"""Write the repository URL from pyproject.toml into every notebook (badge and setup cell).

    python tools/set_repo_url.py          # rewrite the notebooks
    python tools/set_repo_url.py --check  # only report notebooks that disagree; exit 1 if any

A fork changes one line, `Repository = "..."` in pyproject.toml, then runs `make badges`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"https://github\.com/(?P<owner>[^/\s\"]+)/(?P<repo>[^/\s\")]+)")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")
SETUP = re.compile(r'REPO_URL, COURSE = "[^"]*", "[^"]*"')


def repository_url() -> str:
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if not match or not GITHUB.fullmatch(match.group(1)):
        raise SystemExit("pyproject.toml: [project.urls] Repository must be a https://github.com/OWNER/REPO URL")
    return match.group(1)


def expected_cells(url: str, notebook: Path) -> tuple[str, str]:
    """The badge link and the setup cell's assignment that `notebook` should contain."""
    owner, repo = GITHUB.fullmatch(url).group("owner", "repo")
    badge = f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/notebooks/{notebook.name}"
    return badge, f'REPO_URL, COURSE = "{url}", "/content/{repo}"'


def main(check: bool) -> int:
    url, stale, broken = repository_url(), [], []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        badge, setup = expected_cells(url, path)
        intro, setup_cell = notebook.cells[0], notebook.cells[1]
        new_intro, new_setup = BADGE.sub(badge, intro.source), SETUP.sub(setup, setup_cell.source)
        if badge not in new_intro or setup not in new_setup:
            print(f"{path.name}: no Colab badge in the first cell or no REPO_URL line in the setup cell")
            broken.append(path)
            continue
        if (new_intro, new_setup) != (intro.source, setup_cell.source):
            stale.append(path)
            if check:
                print(f"{path.name}: badge or setup cell does not use {url}")
            else:
                intro.source, setup_cell.source = new_intro, new_setup
                nbformat.write(notebook, path)
                print(f"{path.name}: now uses {url}")
    return 1 if broken or (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv[1:]))

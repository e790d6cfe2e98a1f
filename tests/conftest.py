import shutil
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root, offline: a test sees only what it puts there."""
    root = tmp_path / "data-root"
    root.mkdir()
    monkeypatch.setenv("COURSE_DATA_ROOT", str(root))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    return root


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """A copy of the course's data/samples under a new COURSE_ROOT, safe to damage."""
    root = tmp_path / "course"
    shutil.copytree(COURSE / "data" / "samples", root / "data" / "samples")
    monkeypatch.setenv("COURSE_ROOT", str(root))
    return root

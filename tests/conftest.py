import gzip
import hashlib
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def forget_failed_hosts():
    """helpers.data remembers a host that just failed for a while; every test starts with a clean slate."""
    from helpers import data

    getattr(data, "_failed_hosts", {}).clear()
    yield
    getattr(data, "_failed_hosts", {}).clear()


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


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
    """Play a dataset's download mirror with a web server on localhost, serving the embedded sample.

    `serve(datasets.MNIST)` points the class's `mirrors` and `resources` at the server, so that
    torchvision's own download code runs unchanged and fetches the sample files as the dataset.
    """
    servers = []

    def serve(dataset_class):
        mirror = tmp_path / f"mirror-{dataset_class.__name__}"
        mirror.mkdir()
        resources = []
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            packed = gzip.compress((COURSE / "data" / "samples" / dataset_class.__name__ / "raw" / name).read_bytes(), mtime=0)
            (mirror / f"{name}.gz").write_bytes(packed)
            resources.append((f"{name}.gz", hashlib.md5(packed).hexdigest()))

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(mirror), **kwargs)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy set on this machine must not catch the local mirror
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        monkeypatch.setattr(dataset_class, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
        monkeypatch.setattr(dataset_class, "resources", resources)

    yield serve
    for server in servers:
        server.shutdown()


# --- Running the suite on several workers (pytest-xdist: `-n 2 --dist loadfile` in pyproject.toml) --------------------
# A group of tests runs on one worker, in collection order; the groups are scheduled here (pytest_xdist_make_scheduler):
# - a notebook's cells: nbval runs them one after another in one kernel (loadfile alone already keeps them together,
#   so a run of one notebook, which does not load this file, is safe too). The student copy of a lesson runs
#   inside its lesson's run (conftest.py at the top of the repository), so it needs no group of its own;
# - any other test module is one group, so that a module-scoped fixture (test_colab's fake Colab, for one)
#   is built once, not once per worker.
# (xdist's own `--dist loadgroup` cannot do this here: with pytest 9 it no longer sees the groups and splits notebooks.)
# The longest groups start first, so that the workers finish together. The figures are the seconds each took
# on the 2-core CI machine (a lesson: its fast mode, one torch thread, including the ResNet-18 that 05 and 06 each pretrain once); a lesson not listed is new,
# is assumed long and goes first; a module not listed is assumed quick.
LESSON_SECONDS = {"05": 300, "06": 290, "10": 200, "07": 160, "09": 90, "02": 115, "04": 70, "08": 30, "01": 15, "03": 12, "00": 10}
MODULE_SECONDS = {"tests/test_prefetch.py": 175, "tests/test_browser.py": 100, "tests/test_colab.py": 80, "tests/test_pretrained.py": 60,
                  "tests/test_lm.py": 45, "tests/test_ddp.py": 30}


def group_of(nodeid: str) -> str:
    """'lesson05' for a cell of notebooks/05_*.ipynb; else the test's module."""
    module = nodeid.split("::")[0]
    if re.fullmatch(r"notebooks/\d\d_\w+\.ipynb", module):
        return "lesson" + module[len("notebooks/") :][:2]
    return module


def expected_seconds(nodeid: str) -> float:
    group = group_of(nodeid)
    if group.startswith("lesson"):
        return LESSON_SECONDS.get(group.removeprefix("lesson"), 1e6)
    return MODULE_SECONDS.get(group, 0)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -expected_seconds(item.nodeid))  # a stable sort: a notebook's cells keep their order


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class LessonScheduling(LoadScopeScheduling):
        """xdist's scheduling by scope, with the groups above as the scopes, taken in collection order."""

        def _split_scope(self, nodeid):
            return group_of(nodeid)

    config.option.loadscopereorder = False  # xdist's default reorders scopes by their number of tests
    return LessonScheduling(config, log)


def pytest_configure(config):
    """On an xdist worker, give torch (and every kernel the worker starts) its share of the cores.

    Two workers with torch's default thread count each (one per core) would run twice as many busy
    threads as there are cores. An OMP_NUM_THREADS set by the caller is kept.
    """
    worker = getattr(config, "workerinput", None)
    if worker is not None and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(worker["workercount"])))

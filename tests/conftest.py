import gzip
import hashlib
import http.server
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

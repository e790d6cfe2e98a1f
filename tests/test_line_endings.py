"""A Windows clone of the course: the embedded data must keep its bytes, and so its checksums.

Git for Windows installs with `core.autocrlf=true`: every file git takes for text is checked out with
CRLF line ends. Before `.gitattributes` existed, that turned data/samples/sentiment/sentences.tsv, both
labels.csv and SHA256SUMS into CRLF files, their SHA-256 no longer matched, and lessons 01 and 08 raised
DataError. `git clone -c core.autocrlf=true` makes the same LF -> CRLF conversion on Linux and macOS, so
these tests simulate a Windows learner's clone on any system.

They clone this repository as committed (a clone sees only committed files: `.gitattributes` must be
committed for them to pass) and run the course's own check, `helpers.data.verify_samples`, on the clone.
The control takes the attributes out of that same clone and checks the data out again: the files come
back with CRLF and the check fails, so it is the attributes that protect the data.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import data

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = "data/samples/sentiment/sentences.tsv"
# Variables that a git hook or an outer git command may have set would point git at another repository.
GIT_ENV = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}


def git(*args: str, cwd: Path) -> bytes:
    result = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True)
    assert result.returncode == 0, f"git {' '.join(args)} failed: {result.stderr.decode('utf-8', 'replace')}"
    return result.stdout


@pytest.fixture
def windows_clone(tmp_path, monkeypatch) -> Path:
    """A clone of this repository's HEAD with core.autocrlf=true, made the course's root (COURSE_ROOT)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=ROOT, env=GIT_ENV, capture_output=True)
    if top.returncode != 0 or not Path(top.stdout.decode("utf-8").strip()).samefile(ROOT):
        pytest.skip(f"{ROOT} is not a git repository (an unpacked archive?): there is nothing to clone")
    if git("status", "--porcelain", "--", ".gitattributes", cwd=ROOT):
        pytest.fail(".gitattributes has changes that are not committed, and a clone sees only committed files: "
                    "commit it, then run this test")
    clone = tmp_path / "clone"
    git("clone", "-q", "-c", "core.autocrlf=true", str(ROOT), str(clone), cwd=tmp_path)
    monkeypatch.setenv("COURSE_ROOT", str(clone))
    return clone


def check_out_the_data_again(clone: Path) -> None:
    """Delete data/samples and check it out again, with the attributes the clone has now.

    Deleted first: a file whose size and time still match the index is not written again by `git checkout`,
    whatever the attributes say.
    """
    shutil.rmtree(clone / "data" / "samples")
    git("checkout", "--", "data/samples", cwd=clone)


def remove_the_attributes(clone: Path) -> None:
    """The clone as it was before .gitattributes existed: no attributes, the data checked out with CRLF."""
    git("rm", "-q", ".gitattributes", cwd=clone)  # from the index too: checkout falls back on the index's copy
    check_out_the_data_again(clone)


def test_a_clone_with_windows_line_endings_verifies_every_checksum(windows_clone):
    listed = (windows_clone / "data" / "samples" / "SHA256SUMS").read_bytes().count(b"\n")
    assert data.verify_samples() == listed  # raises DataError, naming the file, on the first mismatch
    assert b"\r" not in (windows_clone / SENTENCES).read_bytes()
    # The simulation is real, and only the data is exempt: the code is checked out with CRLF like any text.
    assert b"\r\n" in (windows_clone / "helpers" / "data.py").read_bytes()


def test_without_the_attributes_the_same_clone_gets_crlf_and_fails_its_checksums(windows_clone):
    committed = git("show", f"HEAD:{SENTENCES}", cwd=windows_clone)
    remove_the_attributes(windows_clone)
    assert (windows_clone / SENTENCES).read_bytes() == committed.replace(b"\n", b"\r\n")
    with pytest.raises(data.DataError, match=r"sentences\.tsv: checksum mismatch"):
        data.verify_samples("sentiment/")
    with pytest.raises(data.DataError, match=r"labels\.csv: checksum mismatch"):
        data.verify_samples("digits-png/")


def test_a_clone_made_before_the_attributes_is_repaired_by_checking_the_data_out_again(windows_clone):
    remove_the_attributes(windows_clone)
    git("checkout", "HEAD", "--", ".gitattributes", cwd=windows_clone)  # what pulling the fix brings
    check_out_the_data_again(windows_clone)
    assert data.verify_samples() == (windows_clone / "data" / "samples" / "SHA256SUMS").read_bytes().count(b"\n")

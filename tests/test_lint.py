"""Windows reads text files as cp1252 unless told otherwise: every text read and write names its encoding.

Two checks, because neither sees everything: ruff's unspecified-encoding rule (PLW1514, configured in
pyproject.toml; pre-commit runs it too) finds `open()` calls, in .py files and notebooks alike, and
`tools/check_encoding.py` also finds `read_text()` / `write_text()` on paths ruff cannot type.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

COURSE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(COURSE / "tools"))

import check_encoding  # noqa: E402


def test_ruff_finds_no_text_file_opened_without_an_encoding():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=COURSE, capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_read_text_or_write_text_without_an_encoding():
    result = subprocess.run([sys.executable, str(COURSE / "tools" / "check_encoding.py")], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_encoding_check_finds_what_it_should_and_only_that():
    code = textwrap.dedent("""
        text = path.read_text()
        path.write_text(text)
        with open(name) as f: pass
        with open(name, "w") as f: pass
        with path.open() as f: pass
        with path.open("w") as f: pass
        ok = path.read_text(encoding="utf-8")
        ok = path.open("rb")
        ok = opener.open(request, timeout=10)
        ok = open(name, "rb")
        ok = open(name, mode="wb")
        ok = Image.open(name)
        ok = gzip.open(name)
        ok = path.read_bytes()
    """)
    assert check_encoding.unencoded(code) == [2, 3, 4, 5, 6, 7]
    assert check_encoding.magic_as_pass("    %tensorboard --logdir runs") == "    pass"

"""Write a benchmark's result table into benchmarks/README.md, between its markers."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}: written by make bench -->", f"<!-- end of {name} -->"
    text = README.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{README}: no markers for the section {name!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    stamp = f"*Measured {datetime.date.today()} on {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}.*"
    README.write_text(f"{head}{start}\n{stamp}\n\n{body}\n{end}{tail}", encoding="utf-8")

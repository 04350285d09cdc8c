"""The Chinese lessons are held to the English ones by tests, not by care.

* A Chinese notebook has the English notebook's cells in the same order; every code cell and
  every stored output is identical (so it is never run again: nbval skips notebooks/zh).
* Every markdown cell has a current translation: a cell whose English text changed since it
  was translated is reported as stale, with its cell named.
* The Chinese notebook on disk is what the translation builds today (nobody edits the .ipynb).
* The translation uses the glossary's Chinese term wherever the English cell uses the term.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))
import translation  # noqa: E402

TRANSLATED = sorted(p.stem for p in translation.ZH_SOURCES.glob("[0-9][0-9]_*.md"))


def english(name: str) -> nbformat.NotebookNode:
    return translation.english(name)


def chinese(name: str) -> nbformat.NotebookNode:
    return nbformat.read(translation.ZH_NOTEBOOKS / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", TRANSLATED)
def test_code_and_outputs_are_the_english_ones(name):
    en, zh = english(name), chinese(name)
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells]
    for i, (a, b) in enumerate(zip(en.cells, zh.cells)):
        if a.cell_type == "code":
            assert b.source == a.source, f"{name} cell {i}: code differs from the English"
            assert json.dumps(b.outputs, sort_keys=True) == json.dumps(a.outputs, sort_keys=True), (
                f"{name} cell {i}: stored outputs differ from the English (rebuild: "
                f"python notebooks/build.py --zh {name})"
            )


@pytest.mark.parametrize("name", TRANSLATED)
def test_every_markdown_cell_has_a_current_translation(name):
    _, problems = translation.align(english(name), translation.read_blocks(
        translation.ZH_SOURCES / f"{name}.md"))  # fmt: skip
    assert not problems, f"{name}: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("name", TRANSLATED)
def test_the_notebook_is_built_from_the_translation(name):
    found, _ = translation.align(english(name), translation.read_blocks(
        translation.ZH_SOURCES / f"{name}.md"))  # fmt: skip
    zh = chinese(name)
    for index, block in found.items():
        assert zh.cells[index].source == block.text, (
            f"{name} cell {index} differs from its translation: run "
            f"python notebooks/build.py --zh {name} (never edit notebooks/zh by hand)"
        )


def glossary() -> list[tuple[str, list[str]]]:
    """(English term, its Chinese forms) from docs/glossary.md's table."""
    terms = []
    for line in (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 4 or cols[0] in ("English", "---") or not translation.CJK.search(cols[1]):
            continue
        en = re.sub(r"\s*\(.*?\)", "", cols[0]).strip()
        forms = [f.strip(" `") for f in re.split(r"[/（）()]", cols[1]) if f.strip(" `")]
        for part in en.split(" / "):
            terms.append((part.strip(), forms))
    return terms


def uses(text: str, term: str) -> bool:
    plain = re.sub(r"`[^`]*`|\([^)]*\.ipynb[^)]*\)|https?://\S+", " ", text)
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", plain, re.IGNORECASE) is not None


@pytest.mark.parametrize("name", TRANSLATED)
def test_glossary_terms_are_used(name):
    en = english(name)
    found, _ = translation.align(en, translation.read_blocks(
        translation.ZH_SOURCES / f"{name}.md"))  # fmt: skip
    missing = []
    for index, block in found.items():
        for term, forms in glossary():
            if uses(en.cells[index].source, term) and not any(f in block.text for f in forms):
                missing.append(f"cell {index}: '{term}' -> {' / '.join(forms)}")
    assert not missing, f"{name}: the glossary's Chinese term is missing: " + "; ".join(missing)


def test_nbval_does_not_run_the_chinese_notebooks_again():
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks/zh" in options["norecursedirs"]


# -- the alignment itself ----------------------------------------------------------------------
def _nb(*texts: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for t in texts:
        nb.cells.append(nbformat.v4.new_markdown_cell(t))
        nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    return nb


def _blocks(*pairs: tuple[str, str]) -> list[translation.Block]:
    return [translation.Block(translation.cell_hash(en), en[:10], zh) for en, zh in pairs]


def test_a_changed_english_cell_is_stale_and_named():
    blocks = _blocks(("One.", "一。"), ("Two.", "二。"), ("Three.", "三。"))
    found, problems = translation.align(_nb("One.", "Two, changed.", "Three."), blocks)
    assert [(p.cell, p.kind) for p in problems] == [(2, "stale")]
    assert "Two, changed." in str(problems[0])
    assert found[2].text == "二。"  # the old translation stands in until it is updated


def test_an_inserted_cell_is_missing_and_a_removed_one_is_dropped():
    blocks = _blocks(("One.", "一。"), ("Two.", "二。"), ("Three.", "三。"))
    _, problems = translation.align(_nb("One.", "New.", "Two.", "Three."), blocks)
    assert [(p.cell, p.kind) for p in problems] == [(2, "missing")]
    found, problems = translation.align(_nb("One.", "Three."), blocks)
    assert not problems and found[2].text == "三。"


def test_a_block_without_chinese_is_untranslated():
    blocks = _blocks(("One.", translation.TODO + "\nOne."))
    _, problems = translation.align(_nb("One."), blocks)
    assert [p.kind for p in problems] == ["untranslated"]


# -- the exercises in Chinese -------------------------------------------------------------------
from labkit import exercises  # noqa: E402
from labkit.exercises import translations  # noqa: E402

WITH_EXERCISES = [n for n in TRANSLATED if int(n[:2]) in exercises.LESSONS]


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_every_exercise_has_current_chinese_texts(name):
    number = int(name[:2])
    assert not translations.problems(number, exercises.exercises_of(number), "zh")


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_the_chinese_notebook_states_the_chinese_questions(name):
    number = int(name[:2])
    held = exercises.lesson(number, lang="zh").exercises
    stated = {}
    for cell in chinese(name).cells:
        if cell.cell_type == "markdown" and (
            m := re.match(r"\*\*练习 (\d+)\.\*\*\s*", cell.source)
        ):
            stated[int(m[1])] = cell.source[m.end() :]
    assert sorted(stated) == sorted(held)
    for k, ex in held.items():
        assert stated[k].split() == ex.question.split(), f"{name} exercise {k}"


def test_lesson_in_chinese_uses_the_same_checkers(tmp_path, monkeypatch, capsys):
    english = exercises.exercises_of(2)
    texts = "\n".join(
        f'[{k}]\nen = "{translations.english_hash(ex)}"\nquestion = "问题 {k}"\n'
        f'hints = {["提示"] * len(ex.hints)!r}\nwhy = "因为"\n'
        for k, ex in english.items()
    )
    (tmp_path / "zh" / "exercises").mkdir(parents=True)
    (tmp_path / "zh" / "exercises" / "lesson02.toml").write_text(texts, encoding="utf-8")
    monkeypatch.setattr(translations, "TRANSLATIONS", tmp_path)
    assert not translations.problems(2, english, "zh")
    hint, check, answer = zh = exercises.lesson(2, lang="zh")
    zh.question(1)
    hint(1)
    check(1, ...)
    out = capsys.readouterr().out
    assert "练习 1. 问题 1" in out and "练习 1 的提示 1/" in out and "还没有答案" in out
    check(1, english[1].solution())  # the English worked solution passes the same checker
    assert "练习 1：正确！" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no exercises in 'fr'"):
        exercises.lesson(2, lang="fr")


def test_a_lesson_in_the_zh_folder_speaks_chinese_without_being_asked(tmp_path, monkeypatch):
    """The Chinese notebook's code is the English code (`lesson(n)`), so the language comes
    from where the kernel runs: a folder named zh."""
    english = exercises.exercises_of(2)
    (tmp_path / "zh" / "exercises").mkdir(parents=True)
    (tmp_path / "zh" / "exercises" / "lesson02.toml").write_text("\n".join(
        f'[{k}]\nen = "{translations.english_hash(ex)}"\nquestion = "问题 {k}"\n'
        f'hints = {["提示"] * len(ex.hints)!r}\nwhy = "因为"\n' for k, ex in english.items()
    ), encoding="utf-8")  # fmt: skip
    monkeypatch.setattr(translations, "TRANSLATIONS", tmp_path)
    monkeypatch.chdir(tmp_path / "zh")
    assert exercises.lesson(2).exercises[1].question == "问题 1"
    monkeypatch.chdir(tmp_path)
    assert exercises.lesson(2).exercises[1].question == english[1].question


def test_a_stale_block_stays_to_do_after_skeleton(tmp_path, monkeypatch):
    """skeleton gives a stale block the new hash, but marks it: it is not current until a
    translator updates the text and removes the mark."""
    monkeypatch.setattr(translation, "ZH_SOURCES", tmp_path)
    monkeypatch.setattr(translation, "english", lambda name: _nb("One.", "Two, changed."))
    translation.write_blocks(tmp_path / "x.md", _blocks(("One.", "一。"), ("Two.", "二。")))
    translation.skeleton("x")
    found, problems = translation.align(_nb("One.", "Two, changed."),
                                        translation.read_blocks(tmp_path / "x.md"))  # fmt: skip
    assert [(p.cell, p.kind) for p in problems] == [(2, "untranslated")]
    assert "二。" in found[2].text and "Two, changed." in found[2].text


def test_every_lesson_is_translated():
    """Every English lesson has its Chinese translation and notebook (none left behind)."""
    english_lessons = translation.lessons()
    assert TRANSLATED == english_lessons, (
        f"lessons with no Chinese translation: {sorted(set(english_lessons) - set(TRANSLATED))}"
    )
    built = sorted(p.stem for p in translation.ZH_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert built == english_lessons


def test_readme_says_how_to_open_the_chinese_lessons_in_both_languages():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = next(p for p in readme.split("\n\n") if "--lang zh" in p)
    assert "Chinese" in paragraph and translation.CJK.search(paragraph)

"""The Chinese lessons: each English lesson's markdown, translated, kept in step by hashes.

A lesson's translation is one file, ``notebooks/src/zh/NN_topic.md``: a block per markdown cell
of the English lesson, in order, each opened by a header that names the English cell it
translates, by a hash of its text and its first words::

    <!-- en 3f2a9c1e0b7d: ## Is this machine ready? -->
    ## 这台机器准备好了吗？
    ...

The Chinese notebook ``notebooks/zh/NN_topic.ipynb`` is the English *built* notebook with each
markdown cell replaced by its translation: code cells and their stored outputs are the English
ones, byte for byte, so it is never run again. When an English cell changes, its hash no longer
matches: the block that stood there is *stale*, and is reported with the cell it belongs to.

    python notebooks/translation.py status              # every lesson: stale and missing cells
    python notebooks/translation.py skeleton 04_sync_vs_async   # add blocks for missing cells
    python notebooks/build.py --zh                      # write notebooks/zh/*.ipynb (no run)
"""

from __future__ import annotations

import copy
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ZH_SOURCES = HERE / "src" / "zh"
ZH_NOTEBOOKS = HERE / "zh"
HEADER = re.compile(r"^<!-- en ([0-9a-f]{12}): (.*?) -->$", re.MULTILINE)
TODO = "<!-- TODO: translate -->"
CJK = re.compile(r"[\u4e00-\u9fff]")


def cell_hash(source: str) -> str:
    """The hash that ties a translation to the exact English text it was made from."""
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()[:12]


def first_words(source: str, n: int = 60) -> str:
    line = next((ln for ln in source.strip().splitlines() if ln.strip()), "")
    line = line.replace("-->", "- ->")
    return line[:n]


@dataclass
class Block:
    en_hash: str
    en_start: str
    text: str


@dataclass
class Problem:
    cell: int  # index of the English cell
    kind: str  # "stale", "missing", "untranslated"
    start: str  # its first words, to find it

    def __str__(self) -> str:
        what = {
            "stale": "changed since it was translated",
            "missing": "has no translation",
            "untranslated": "has a block with no Chinese text yet",
        }[self.kind]
        return f"cell {self.cell} ({self.start!r}) {what}"


def read_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    heads = list(HEADER.finditer(text))
    blocks = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        blocks.append(Block(m.group(1), m.group(2), text[m.end() : end].strip("\n")))
    return blocks


def write_blocks(path: Path, blocks: list[Block]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<!-- en {b.en_hash}: {b.en_start} -->\n{b.text.strip()}\n" for b in blocks]
    path.write_text("\n".join(parts), encoding="utf-8")


def markdown_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def align(nb: nbformat.NotebookNode, blocks: list[Block]) -> tuple[dict[int, Block], list[Problem]]:
    """Each English markdown cell's translation, and the cells that have none that is current.

    Blocks are matched by hash; a block left over between two matched cells stands where a
    changed English cell stands, so that cell is *stale* (its old translation is still used,
    until someone updates it); a cell with nothing at its place is *missing*.
    """
    cells = markdown_cells(nb)
    by_hash: dict[str, list[Block]] = {}
    for b in blocks:
        by_hash.setdefault(b.en_hash, []).append(b)
    found: dict[int, Block] = {}
    problems = []
    position = {id(b): k for k, b in enumerate(blocks)}
    last = -1  # position of the last block used
    for n, (index, source) in enumerate(cells):
        later = [b for b in by_hash.get(cell_hash(source), []) if position[id(b)] > last]
        block = later[0] if later else None
        if block is not None:
            found[index] = block
            last = position[id(block)]
            if TODO in block.text or not CJK.search(block.text):
                problems.append(Problem(index, "untranslated", first_words(source)))
            continue
        following = [cell_hash(s) for _, s in cells[n + 1 :]]
        nxt = blocks[last + 1] if last + 1 < len(blocks) else None
        if nxt is not None and nxt.en_hash not in following:
            found[index] = nxt  # the old translation of this very cell
            last += 1
            problems.append(Problem(index, "stale", first_words(source)))
        else:
            problems.append(Problem(index, "missing", first_words(source)))
    return found, problems


def english(name: str) -> nbformat.NotebookNode:
    return nbformat.read(HERE / f"{name}.ipynb", as_version=4)


def build_zh(name: str) -> tuple[Path, list[Problem]]:
    """Write ``notebooks/zh/NAME.ipynb`` from the built English notebook and its translation."""
    nb = english(name)
    found, problems = align(nb, read_blocks(ZH_SOURCES / f"{name}.md"))
    zh = copy.deepcopy(nb)
    zh.metadata["language_info"] = {**nb.metadata.get("language_info", {}), "name": "python"}
    zh.metadata["asynclab"] = {"lang": "zh-Hans", "translated_from": f"../{name}.ipynb"}
    for index, block in found.items():
        zh.cells[index].source = block.text
    target = ZH_NOTEBOOKS / f"{name}.ipynb"
    target.parent.mkdir(exist_ok=True)
    nbformat.write(zh, target)
    return target, problems


def skeleton(name: str) -> int:
    """Add a block (English text, marked TODO) for every missing cell; keep every other block.
    A stale block keeps its old translation, marked TODO with the English it must now say, so
    it counts as untranslated until someone updates it and removes the mark."""
    nb = english(name)
    path = ZH_SOURCES / f"{name}.md"
    blocks = read_blocks(path)
    found, problems = align(nb, blocks)
    missing = {p.cell for p in problems if p.kind == "missing"}
    out = []
    for index, source in markdown_cells(nb):
        if index in missing:
            out.append(Block(cell_hash(source), first_words(source), f"{TODO}\n{source}"))
        else:
            block = found[index]
            if block.en_hash != cell_hash(source):  # stale: keep the text, show the new English
                english_now = source.replace("-->", "- ->")
                text = f"{TODO}\n<!-- the English now reads:\n{english_now}\n-->\n{block.text}"
                block = Block(cell_hash(source), first_words(source), text)
            out.append(block)
    write_blocks(path, out)
    return len(missing)


def _toml_string(text: str) -> str:
    return '"""\n' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'


def exercise_skeleton(name: str) -> int:
    """Add English texts (to translate) for each exercise of the lesson that has none yet."""
    import tomllib

    from labkit import exercises
    from labkit.exercises import translations

    number = int(name[:2])
    if number not in exercises.LESSONS:
        return 0
    path = translations.texts_file(number, "zh")
    have = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    added = []
    for k, ex in exercises.exercises_of(number).items():
        if str(k) in have:
            continue
        hints = ",\n".join(f"    {_toml_string(h)}" for h in ex.hints)
        added.append(
            f'[{k}]\nen = "{translations.english_hash(ex)}"  # {TODO}\n'
            f"question = {_toml_string(ex.question)}\nhints = [\n{hints},\n]\n"
            f"why = {_toml_string(ex.why)}\n"
        )
    if added:
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(old + "\n".join(added), encoding="utf-8")
    return len(added)


def lessons() -> list[str]:
    return sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str]) -> int:
    if argv[:1] == ["skeleton"] and len(argv) > 1:
        for name in argv[1:]:
            print(f"{name}: {skeleton(name)} blocks, {exercise_skeleton(name)} exercises added")
        return 0
    if argv[:1] == ["status"]:
        bad = 0
        for name in argv[1:] or lessons():
            _, problems = align(english(name), read_blocks(ZH_SOURCES / f"{name}.md"))
            bad += len(problems)
            print(f"{name}: {'up to date' if not problems else f'{len(problems)} to do'}")
            for p in problems:
                print(f"  {p}")
        return 1 if bad else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

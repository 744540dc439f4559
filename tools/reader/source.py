"""What the site is made of, read as text: the twin files cut at their section headers, the
docs pages cut at their headings, and the tests' `proves` markers. Never imports jax or torch."""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass

from shared import registry
from tools.docs_markdown import MARKDOWN
from tools.reader.frame import DOC_GROUPS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SECTION = re.compile(r"^# -- (.+) --$", re.MULTILINE)


PROVES = re.compile(r"^@pytest\.mark\.proves\(([^)]*)\)\s*$", re.MULTILINE)


TEST_DEF = re.compile(r"^def (test_\w+)\(", re.MULTILINE)


@dataclass(frozen=True)
class Section:
    name: str  # "config", "layers", ..., or "" for the text before the first header
    code: str


def sections(source: str) -> list[Section]:
    """A twin file cut at its `# -- name --` headers; the text above the first is the preamble."""
    marks = list(SECTION.finditer(source))
    out = [Section("", source[: marks[0].start()] if marks else source)]
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(source)
        out.append(Section(m.group(1), source[m.end() : end].strip("\n")))
    return out


def explanations(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """A docs page cut at its `## ` headings (as Markdown parses them, so not at a `## ` line
    inside a code block): the text above the first, and `(heading, text)` for each in order."""
    tokens = MARKDOWN.parse(markdown)
    lines = markdown.split("\n")
    heads = [  # (first line, line after the heading, heading text)
        (t.map[0], t.map[1], tokens[i + 1].content.strip())
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2" and t.level == 0
    ]
    ends = [start for start, _, _ in heads[1:]] + [len(lines)] * bool(heads)  # none: no parts
    parts = [
        (head, "\n".join(lines[after:end]).strip())
        for (_, after, head), end in zip(heads, ends, strict=True)
    ]
    first = heads[0][0] if heads else len(lines)
    return "\n".join(lines[:first]).strip(), parts


def heading_sections(heading: str) -> list[str]:
    """The sections a docs heading explains: what stands before its colon, split at commas and
    "and" ("Loss and train step" -> loss, train step; "Layers: the cells" -> layers)."""
    head = heading.split(":")[0].lower()
    return [p.strip() for p in re.split(r",| and ", head) if p.strip()]


def explanation_for(name: str, parts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The `(heading, text)` of a docs page that explains the section `name`, if any."""
    return next(((h, t) for h, t in parts if name and name in heading_sections(h)), None)


def proofs() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """`(model, section) -> [(test file, test name)]`, read as text from the tests' markers
    `@pytest.mark.proves("model", "section", ...)` (the test below the marker proves those
    sections of that model's twins)."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        text = read(f"tests/{name}")
        for m in PROVES.finditer(text):
            model, *names = re.findall(r'"([^"]+)"', m.group(1))
            test = TEST_DEF.search(text, m.end())
            for section in names:
                out.setdefault((model, section), []).append((f"tests/{name}", test.group(1)))
    return out


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


SIDE_TWINS = ("layers", "interface")  # twins beside the models, each with a page of its own
LEVEL1 = "level1"  # the level-1 MLPs, functional/level1/mlp.py against oop/level1/mlp.py


def twin_path(side: str, name: str) -> str:
    """`functional/models/mlp.py`; `functional/layers.py` for a twin beside the models;
    `functional/level1/mlp.py` for the level-1 page."""
    if name == LEVEL1:
        return f"{side}/level1/mlp.py"
    return f"{side}/{name}.py" if name in SIDE_TWINS else f"{side}/models/{name}.py"


def twin_names() -> list[str]:
    """Every twin pair with a page: the level-1 MLPs, the model files in the order the course
    climbs (`shared.registry`, the mlp first), then the layers and the interface they share."""
    return [f for f in (LEVEL1, *registry.FILES, *SIDE_TWINS)
            if all(os.path.exists(os.path.join(ROOT, twin_path(side, f)))
                   for side in ("functional", "oop"))]  # fmt: skip


def doc_names() -> list[str]:
    """The docs pages beside the models' (`docs/NAME.md`), in the index's order."""
    first = ["levels", *(d for _, items in DOC_GROUPS for d, _ in items)]  # the sidebar's
    found = {f[:-3] for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md")}
    return [d for d in first if d in found] + sorted(found - set(first))


def check_proofs(models: list[str], proved: dict) -> None:
    """A `proves` marker must name a model that has twins and a section its files have."""
    for model, section in proved:
        known = (
            [s.name for s in sections(read(twin_path("functional", model)))]
            if model in models
            else []
        )
        if section not in known:
            tests = ", ".join(t for _, t in proved[(model, section)])
            raise ValueError(f"{tests}: proves({model!r}, {section!r}), which no twin file has")


def reused(code: str, source: str) -> list[tuple[str, str, str]]:
    """`(module file, function name, its source)` for each `name = module.function` line of a
    section that reuses another model's function (`train_step = mlp.train_step`)."""
    modules = {}  # the alias a file imports a module under -> that module's file
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                path = f"{node.module.replace('.', '/')}/{alias.name}.py"
                if os.path.exists(os.path.join(ROOT, path)):
                    modules[alias.asname or alias.name] = path
    found = []
    for node in ast.parse(code).body:
        value = getattr(node, "value", None)
        if (isinstance(node, ast.Assign) and isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name) and value.value.id in modules):  # fmt: skip
            path = modules[value.value.id]
            text = read(path)
            for d in ast.parse(text).body:
                if isinstance(d, ast.FunctionDef) and d.name == value.attr:
                    first = d.decorator_list[0].lineno if d.decorator_list else d.lineno
                    lines = text.split("\n")[first - 1 : d.end_lineno]
                    found.append((path, d.name, "\n".join(lines)))
    return found

"""The side-by-side reader's site: one aligned page per pair of twin files, two ladder pages,
the docs rendered, an index, nothing fetched from the network, links from each section to the
tests that prove it, and no link that leads nowhere. The layout itself is tested in a browser
(tests/test_browser.py)."""

from __future__ import annotations

import html
import json
import re

import pytest

from shared import registry
from shared.cli import train as cli
from tools import reader
from tools.docs_markdown import Links, slug
from tools.reader.runs import runs_page_body


def test_the_site_has_an_aligned_page_for_every_twin_pair(site):
    written = {p.name for p in site.iterdir()}
    models = reader.twin_names()
    assert models == ["level1", *registry.FILES, "layers", "interface"]  # in reading order
    docs = reader.doc_names()
    assert {"architecture", "levels", "traps", "optimizers", "benchmarks", "reading"} <= set(docs)
    assert written == {f"{m}.html" for m in models} | {f"{d}.html" for d in docs} | {
        "ladder-functional.html",
        "ladder-oop.html",
        "index.html",
        "style.css",
        "search-index.js",
        "search.js",
        "grid.js",
        "runs.html",
    } | {
        f"tests-{f.split('/')[1][:-3]}.html" for found in reader.proofs().values() for f, _ in found
    }
    for m in models:
        text = (site / f"{m}.html").read_text()
        functional = reader.sections(reader.read(reader.twin_path("functional", m)))
        # one row per section, a functional and an OOP cell in each, in the files' order
        cell = 'class="code" data-side='
        assert text.count(f'{cell}"functional">') == text.count(f'{cell}"OOP">')
        assert text.count(f'{cell}"functional">') == len(functional)
        heads = re.findall(r'<div class="section" id="([^"]+)">', text)
        assert heads == ["module"] + [slug(s.name) for s in functional[1:]]
        assert 'class="highlight"' in text and 'class="k"' in text  # Pygments' keyword spans
    assert not re.search(
        r'(src|href)="(https?:)?//', "".join((site / f).read_text() for f in written)
    )  # nothing from the network


def test_a_models_page_holds_every_side_that_builds_it_and_picks_two(site):
    """A model other sides build besides the twins (`shared.sides`: the grid's other corners,
    the Keras side) has, in each row, a cell for each of those sides and a head for each, the
    others' hidden, and two selectors that list them all, the twins picked (functional left,
    OOP right) and revealed by `grid.js`; the MLP's page adds Keras's pure step on JAX as a view
    (`grid.VIEWS`), its train step beside the twins'. A corner's section that reuses another
    model's function shows that function, as the twins' do. Pages no other side builds (the
    layers, the interface, the level-1 MLPs) and the ladders have no selector and no script."""
    from shared.sides import GRID, SIDES
    from tools.reader import grid as reader_grid

    grid = [m for m in reader.twin_names() if all(m in SIDES[s].models for s in GRID)]
    assert "cnn_bn" in grid and "rnn" not in grid  # the page tests/test_browser.py switches
    for m in [*reader.twin_names(), "ladder-functional", "ladder-oop"]:
        text = (site / f"{m}.html").read_text()
        others = [s for s in SIDES if s not in ("functional", "oop") and m in SIDES[s].models]
        others += [v for v, (_, page, _) in reader_grid.VIEWS.items() if page == m]
        if m in ("layers", "interface", "level1") or m.startswith("ladder"):
            assert not others or m in ("layers", "interface"), m
            assert "<select" not in text and "grid.js" not in text, m
            assert 'data-side="keras3"' not in text and 'data-side="oop_jax"' not in text, m
            continue
        assert ("oop_jax" in others) == (m in grid) and "keras3" in others, m
        rows = len(reader.sections(reader.read(reader.twin_path("functional", m))))
        for side in others:
            assert text.count(f'<div class="code" data-side="{side}" hidden>') == rows, side
            assert text.count(f'<div class="head" data-side="{side}" hidden>') == 1, side
        picks = re.findall(r'<select data-column="(\d)">(.*?)</select>', text)
        assert [column for column, _ in picks] == ["0", "1"]
        for (_, options), default in zip(picks, ("functional", "OOP"), strict=True):
            values = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)<', options)
            assert [v for v, _, _ in values] == ["functional", "OOP", *others]
            assert [v for v, chosen, _ in values if chosen] == [default]
            names = [name for _, _, name in values]
            assert "objects · Keras 3 on JAX, PyTorch or TensorFlow" in names
            assert ("objects · JAX (Flax NNX, optax)" in names) == (m in grid)
        assert '<label class="pick" hidden>' in text and '<script src="grid.js"></script>' in text
    mlp = (site / "mlp.html").read_text()
    parts = mlp.split('<div class="code" data-side="keras3_pure" hidden>')[1:]
    cells = dict(zip([sec.name for sec in reader.sections(reader.read("functional/models/mlp.py"))],
                     [re.sub("<[^>]+>", "", p.split('<div class="code" data-side=')[0])
                      for p in parts], strict=True))  # fmt: skip
    assert "stateless_apply" in cells["train step"] and "jax.jit" in cells["train step"]
    empty = mlp.count('<div class="code" data-side="keras3_pure" hidden></div>')
    assert empty == len(cells) - 2  # the view: its preamble and the update, the rest empty
    cnn_bn = (site / "cnn_bn.html").read_text()
    assert "crossover/functional_torch/models/cnn_bn.py</a></div>" in cnn_bn  # its head's link
    assert "<code>train_step</code> of crossover/oop_jax/models/mlp.py" in cnn_bn
    index = (site / "search-index.js").read_text()
    found = {e["u"]: e["t"] for e in json.loads(index.removeprefix("var SEARCH = ")[:-2])}
    assert "nnx" in found["cnn_bn.html#model"]  # the corners' code is searched too
    assert "functional_call" in found["cnn_bn.html#model"]
    assert "left column" not in found["cnn_bn.html"]  # but not the selectors


def test_a_section_a_corner_lacks_is_an_empty_cell_and_one_only_it_has_is_refused():
    twins = '"""m"""\n# -- model --\nx = 1\n# -- loss --\ny = 2\n'
    corner = ("c.py", '"""c"""\n# -- model --\nz = 3\n', "")
    docs = "## Model\n\nthe model\n"
    page = reader.twin_page("m", twins, twins, docs, {}, corners={"oop_jax": corner})
    assert page.count('<div class="code" data-side="oop_jax" hidden></div>') == 1  # the loss
    assert page.count('<div class="code" data-side="oop_jax" hidden>') == 3  # still one a row
    corner = ("c.py", corner[1] + "# -- extra --\n", "")
    with pytest.raises(ValueError, match=r"c.py has sections the twins lack: \['extra'\]"):
        reader.twin_page("m", twins, twins, docs, {}, corners={"oop_jax": corner})


def test_each_section_links_the_tests_that_prove_it(site):
    """Read from the tests' `@pytest.mark.proves(model, *sections)` markers, as text."""
    proved = reader.proofs()
    assert ("tests/test_gpt.py", "test_one_adamw_step_and_100_in_float64") in proved[
        ("gpt", "train step")
    ]
    text = (site / "gpt.html").read_text()
    assert 'href="' in text and ">test_one_adamw_step_and_100_in_float64</a>" in text
    for model in registry.FILES:  # every model has its train step proved
        assert (model, "train step") in proved, model


def test_a_sections_explanation_comes_from_the_docs_heading_of_that_name():
    docs = "intro\n## Config\nthe sizes\n## Loss and train step\nthe objective\n"
    preamble, parts = reader.explanations(docs)
    assert preamble == "intro"
    assert reader.explanation_for("config", parts) == ("Config", "the sizes")
    assert reader.explanation_for("loss", parts) == ("Loss and train step", "the objective")
    assert reader.explanation_for("train step", parts) == ("Loss and train step", "the objective")
    assert reader.explanation_for("evaluate", parts) is None
    assert reader.heading_sections("Layers: the cells, and a loop") == ["layers"]
    assert reader.heading_sections("Loss, train step and evaluate: the MLP's") == [
        "loss",
        "train step",
        "evaluate",
    ]


def plain(html: str) -> str:
    """A page's text: tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("model", reader.twin_names())
def test_every_section_is_explained_by_the_models_docs_page(model, site):
    """docs/models/NAME.md has a `## ` heading naming each section of the twins ("Model",
    "Layers: which BatchNorm", "Loss and train step"); its text stands above that row, once,
    and every heading of the page is an anchor of the built page."""
    title, text = reader.title_and_body(reader.read(f"docs/models/{model}.md"), model)
    _, parts = reader.explanations(text)
    names = [
        s.name for s in reader.sections(reader.read(reader.twin_path("functional", model)))[1:]
    ]
    missing = [n for n in names if reader.explanation_for(n, parts) is None]
    assert missing == [], f"docs/models/{model}.md has no heading for {missing}"
    built = (site / f"{model}.html").read_text()
    for heading, body in parts:
        assert f'id="{slug(heading)}"' in built, heading
        start = plain(reader.MARKDOWN.render(body))[:80]  # the links differ; the text does not
        assert plain(built).count(start) == 1, f"{heading}: shown {plain(built).count(start)}x"


def test_the_docs_are_rendered_and_the_index_links_every_page(site):
    written = sorted(p.name for p in site.iterdir())
    index = (site / "index.html").read_text()
    beside = ("style.css", "search-index.js", "search.js", "grid.js")  # what the pages load
    for name in written:
        if name not in ("index.html", *beside) and not (
            name.startswith("tests-")  # reached from the "proved by" links, not the sidebar
        ):
            assert f'href="{name}"' in index, name
    assert "<h2" in index and "Quick start" in index  # the README, rendered
    traps = (site / "traps.html").read_text()
    assert "<table>" in traps and 'id="jax-is-32-bit-by-default"' in traps
    assert 'href="#jax-is-32-bit-by-default"' in traps
    pages = "".join((site / f).read_text() for f in written)
    assert not re.search(r'href="[^"]*\.md(#[^"]*)?"', pages)  # every docs link goes to a page
    for src in re.findall(r'<img src="([^"]+)"', pages):
        assert (site / src).is_file(), src  # figures resolve from the site's folder


def test_a_link_to_no_file_or_no_heading_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## `x.std()` is unbiased\n")
    links = Links(str(tmp_path), str(tmp_path / "site"), {"docs/b.md": "b.html"})
    html = links.render(
        "[ok](b.md#xstd-is-unbiased) [gone](b.md#nothing) [lost](figures/c.png) "
        "[web](https://example.org/x.md)",
        "docs/a.md",
    )
    assert 'href="b.html#xstd-is-unbiased"' in html and 'href="https://example.org/x.md"' in html
    assert links.broken == [
        "docs/a.md: b.md#nothing (no heading with that anchor)",
        "docs/a.md: figures/c.png (no such file)",
    ]


def test_links_are_decoded_and_repeated_headings_numbered_as_on_github(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## σ gate\n\n## Example\n\n## Example\n")
    links = Links(str(tmp_path), str(tmp_path / "site"), {"docs/b.md": "b.html"})
    html = links.render(
        "[s](b.md#σ-gate) [q](b.md?plain=1#example-1) [e](b.md#example-2)", "docs/a.md"
    )
    assert 'href="b.html#σ-gate"' in html and 'href="b.html?plain=1#example-1"' in html
    assert links.broken == ["docs/a.md: b.md#example-2 (no heading with that anchor)"]
    page = links.render("## Example\n\n## Example\n", "docs/b.md")
    assert 'id="example"' in page and 'id="example-1"' in page
    links.render('<img src="figures/x.png">\n', "docs/b.md")  # raw HTML: not checked, so refused
    assert links.broken[-1].endswith("(write it in Markdown)")


def test_a_docs_page_is_cut_at_its_headings_not_at_lines_in_code():
    docs = "# T\n\nintro\n\n## Model\n\n```python\n## not a heading\n```\n\n## Loss\n\nx\n"
    title, text = reader.title_and_body(docs, "m")
    preamble, parts = reader.explanations(text)
    assert title == "T" and preamble == "intro"
    assert parts == [("Model", "```python\n## not a heading\n```"), ("Loss", "x")]
    assert reader.title_and_body("# Only a title", "m") == ("Only a title", "")
    assert reader.explanations("only text") == ("only text", [])  # no heading: no parts
    assert reader.explanations("") == ("", [])
    twins = "# -- model --\nx = 1\n"
    with pytest.raises(ValueError, match="two headings with the anchor"):
        reader.twin_page("m", twins, twins, "## Model\n\na\n\n## Model\n\nb\n", {})


def test_heading_anchors_are_githubs():
    """The anchors the docs already use on GitHub must work in the site."""
    assert (
        slug("`clip_grad_norm_` divides by norm + 1e-6") == "clip_grad_norm_-divides-by-norm--1e-6"
    )
    assert (
        slug("BatchNorm: state in, state out — or buffers")
        == "batchnorm-state-in-state-out--or-buffers"
    )
    assert slug("`nn.GRU` defaults to `batch_first=False`") == "nngru-defaults-to-batch_firstfalse"


def test_every_model_page_shows_commands_that_parse(site, tmp_path):
    """The commands a model page gives to train its twins are accepted by the training
    scripts' parser as written (the model, its data set, the out folder)."""
    for entry in registry.ENTRIES:
        text = (site / f"{entry.file}.html").read_text()
        shown = rf"\.venv/bin/python -m functional\.train (--model {entry.name} [^\n<]*)"
        argv = re.search(shown, html.unescape(text)).group(1).split()
        argv[argv.index("--out") + 1] = str(tmp_path / entry.name)
        train_cfg, model, _ = cli.parse("functional", argv)
        assert (train_cfg.model, train_cfg.dataset) == (entry.name, entry.bench_data)
        assert f"-m shared.compare runs/{entry.name}-" in text


def test_your_runs_page_shows_each_pair_of_twins_and_the_commands_that_made_them(tmp_path, site):
    """The pair's table and plot, and commands that rebuild both runs' every setting (parsed
    back and compared with what the runs wrote). The page's body is built on its own (the
    whole site takes 2 s); the site's own runs.html is the one built from no runs."""
    import functional.train
    import oop.train
    from shared import compare
    from shared.config import train_config_from_dict

    runs = tmp_path / "runs"
    flags = ["--dataset", "moons", "--width", "4", "--dry-run", "--no-progress", "--seed", "3",
             "--optimizer", "sgd", "--momentum", "0.9", "--schedule", "cosine", "--lr", "0.0123",
             "--batch-size", "16", "--clip-norm", "1.0"]  # fmt: skip
    assert functional.train.main([*flags, "--out", str(runs / "f")]) == 0
    init = str(runs / "f/init.safetensors")
    assert oop.train.main([*flags, "--out", str(runs / "o"), "--init", init]) == 0
    assert compare.main([str(runs / "f"), str(runs / "o")]) == 0
    (runs / "old").mkdir()  # a folder from another version: listed, skipped, no traceback
    (runs / "old/config.json").write_text('{"side": "oop"}')
    (runs / "old/metrics.jsonl").write_text("")
    out = tmp_path / "site"
    text = html.unescape(runs_page_body(str(runs), str(out)))
    assert "<h2" in text and "f and o" in text and "max |Δloss| (all steps)" in text
    assert "config.json unreadable: skipped" in text
    src = re.search(r'<img src="([^"]+)" alt="f and o"', text).group(1)
    assert (out / src).resolve() == (runs / "o/compare.png").resolve()
    made = re.findall(r"\.venv/bin/python -m (\w+)\.train (.*?) --out (\S+)", text)
    assert [(side, folder) for side, _, folder in made] == [
        ("functional", str(runs / "f")), ("oop", str(runs / "o"))
    ]  # fmt: skip
    assert made[1][1].endswith(f"--init {init}")
    for side, shown, folder in made:
        stored = json.loads((tmp_path / folder / "config.json").read_text())
        written = train_config_from_dict(stored["train_config"])
        argv = [*shown.split(), "--out", str(tmp_path / f"again-{side}")]
        train_cfg, model, _ = cli.parse(side, argv)
        assert train_cfg == written and model.width == 4, side
    assert "No runs under" in (site / "runs.html").read_text()

"""The side-by-side reader's site: one aligned page per pair of twin files, two ladder pages,
an index, nothing fetched from the network, and links from each section to the tests that prove
it. The layout itself is tested in a browser (tests/test_browser.py)."""

from __future__ import annotations

import re

from shared import reader


def test_the_site_has_an_aligned_page_for_every_twin_pair(tmp_path):
    written = reader.build(str(tmp_path))
    models = reader.twin_names()
    assert {"mlp", "cnn", "cnn_bn", "cnn_dropout", "rnn", "gpt"} <= set(models)
    assert set(written) == {f"{m}.html" for m in models} | {
        "ladder-functional.html",
        "ladder-oop.html",
        "index.html",
        "style.css",
    }
    for m in models:
        text = (tmp_path / f"{m}.html").read_text()
        functional = reader.sections(reader.read(f"functional/models/{m}.py"))
        # one row per section, a functional and an OOP cell in each, in the files' order
        assert text.count('data-side="functional"') == text.count('data-side="OOP"')
        assert text.count('data-side="functional"') == len(functional)
        heads = re.findall(r'<div class="section" id="([^"]+)">', text)
        assert heads == ["module"] + [s.name for s in functional[1:]]
        assert 'class="highlight"' in text and 'class="k"' in text  # Pygments' keyword spans
    assert not re.search(
        r'(src|href)="(https?:)?//', "".join((tmp_path / f).read_text() for f in written)
    )  # nothing from the network


def test_each_section_links_the_tests_that_prove_it(tmp_path):
    """Read from the tests' `@pytest.mark.proves(model, *sections)` markers, as text."""
    proved = reader.proofs()
    assert ("tests/test_gpt.py", "test_one_adamw_step_and_100_in_float64") in proved[
        ("gpt", "train step")
    ]
    reader.build(str(tmp_path))
    text = (tmp_path / "gpt.html").read_text()
    assert 'href="' in text and ">test_one_adamw_step_and_100_in_float64</a>" in text
    for model in reader.twin_names():  # every model has its train step proved
        assert (model, "train step") in proved, model


def test_a_sections_explanation_comes_from_the_docs_heading_of_that_name():
    docs = "intro\n## Config\nthe sizes\n## Loss and train step\nthe objective\n"
    texts = reader.explanations(docs)
    assert reader.explanation_for("config", texts) == "the sizes"
    assert reader.explanation_for("train step", texts) == "the objective"
    assert reader.explanation_for("evaluate", texts) == ""

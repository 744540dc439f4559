"""The reader's model pages in a real browser: headless Chromium (Debian's `chromium` package)
driven by Playwright with the system browser's executable; no browser is ever downloaded.

At 1400 px the two columns stand side by side and each section's functional and OOP code start
at the same height, and the column heads stay in view as the page scrolls; highlighting is
there; nothing is logged as an error. At 800 px the columns stack, with the section headers
kept. On a page of a model that every side of the grid builds, the reader's pick of sides puts
the grid's other corners in the columns, still aligned. A screenshot of each page's first
screen at each width goes to `test-artifacts/` (the whole page would cost a second per page and
shows nothing more about the layout).
Without Chromium or Playwright the test is skipped, and says why.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tools import reader

ARTIFACTS = os.path.join(reader.ROOT, "test-artifacts")
PIXEL = 1.0  # layout positions are whole CSS pixels; allow one for subpixel rounding


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on this machine: apt-get install chromium (.ci/run does)")


@pytest.fixture(scope="module")
def tab():
    """One browser tab for the module: a new context and tab per test cost 0.2 s each."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path = chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b.new_page()
        b.close()


@pytest.fixture
def page(tab):
    """The tab at 1400 x 900 in light mode, collecting console errors and uncaught exceptions
    into `page.errors` for this test only."""
    tab.set_viewport_size({"width": 1400, "height": 900})
    tab.emulate_media(color_scheme="light")
    tab.errors = []
    console = lambda m: tab.errors.append(m.text) if m.type == "error" else None
    thrown = lambda e: tab.errors.append(str(e))
    tab.on("console", console)
    tab.on("pageerror", thrown)
    yield tab
    tab.remove_listener("console", console)
    tab.remove_listener("pageerror", thrown)


def boxes(page, selector: str) -> list[dict]:
    """The layout boxes of every element `selector` matches, in one round trip to the browser
    (Playwright's bounding_box() is one per element)."""
    return page.evaluate(
        "s => Array.from(document.querySelectorAll(s)).map(e => {"
        " const r = e.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })",
        selector,
    )


def code(side: str) -> str:
    return f'.code[data-side="{side}"]'


@pytest.mark.parametrize("model", reader.twin_names())
def test_model_page_aligns_the_twins_and_stacks_when_narrow(model, page, site):
    page.goto((site / f"{model}.html").as_uri())
    left, right = boxes(page, code("functional")), boxes(page, code("OOP"))
    assert len(left) == len(right) > 1
    for a, b in zip(left, right, strict=True):
        assert a["x"] + a["width"] <= b["x"] + PIXEL  # side by side, functional on the left
        assert abs(a["y"] - b["y"]) <= PIXEL  # each section starts at the same height
        assert a["width"] > 400 and b["width"] > 400  # both columns visible
    assert page.locator(".highlight .k").count() > 0  # Pygments' keyword spans, styled
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")  # mid-page:
    heads = boxes(page, ".twins > .head:not([hidden])")  # a grid model's corners' are hidden
    assert [round(h["y"]) for h in heads] == [0, 0]  # the column heads stay in view
    page.evaluate("window.scrollTo(0, 0)")
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"{model}-1400.png"))

    page.set_viewport_size({"width": 800, "height": 900})
    left, right = boxes(page, code("functional")), boxes(page, code("OOP"))
    for a, b in zip(left, right, strict=True):
        assert b["y"] >= a["y"] + a["height"] - PIXEL  # stacked: OOP below functional
        assert a["x"] + a["width"] <= 800 + PIXEL  # and no wider than the window
    assert page.locator(".section h2").first.is_visible()  # section headers kept
    page.screenshot(path=os.path.join(ARTIFACTS, f"{model}-800.png"))
    assert page.errors == []


@pytest.mark.parametrize("name", ["index", "ladder-functional", "ladder-oop"] + reader.doc_names())
def test_docs_page_loads_its_figures_without_errors(name, page, site):
    """The rendered docs: every figure found on disk and decoded, no console errors, and the
    text no wider than the window (a wide table or code block scrolls inside itself)."""
    page.goto((site / f"{name}.html").as_uri())
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.getAttribute('src'))"
    )
    assert broken == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert page.errors == []


def shown(page) -> list[dict]:
    """The code cells the page shows, in the document's order (the two of a row, left then
    right): each one's side, layout box and text."""
    return page.evaluate(
        "Array.from(document.querySelectorAll('.twins > .code')).filter(e => e.checkVisibility())"
        ".map(e => { const r = e.getBoundingClientRect();"
        " return {side: e.dataset.side, x: r.x, y: r.y, width: r.width, text: e.innerText}; })"
    )


def test_the_reader_picks_which_two_corners_of_the_grid_stand_side_by_side(page, site):
    """The cnn_bn page, which all four sides build: functional | OOP until the reader picks;
    the right column switched to objects on JAX shows the NNX code and its head, torch's OOP
    code hidden, the left to functions on torch shows `functional_call`, and each section of
    the two shown starts at one height. Picking the other column's side swaps the two."""
    page.goto((site / "cnn_bn.html").as_uri())
    left, right = page.locator('select[data-column="0"]'), page.locator('select[data-column="1"]')
    assert (left.input_value(), right.input_value()) == ("functional", "OOP")
    assert {c["side"] for c in shown(page)} == {"functional", "OOP"}
    right.select_option("oop_jax")
    cells = shown(page)
    assert [c["side"] for c in cells] == ["functional", "oop_jax"] * (len(cells) // 2)
    assert "nnx." in " ".join(c["text"] for c in cells[1::2])
    assert page.locator(code("OOP")).evaluate_all("l => l.some(e => e.checkVisibility())") is False
    heads = page.locator(".twins > .head:not([hidden])")
    assert "crossover/oop_jax/models/cnn_bn.py" in heads.nth(1).inner_text()
    left.select_option("functional_torch")
    cells = shown(page)
    assert [c["side"] for c in cells] == ["functional_torch", "oop_jax"] * (len(cells) // 2)
    assert "functional_call" in " ".join(c["text"] for c in cells[::2])
    for a, b in zip(cells[::2], cells[1::2], strict=True):
        assert a["x"] + a["width"] <= b["x"] + PIXEL and abs(a["y"] - b["y"]) <= PIXEL
    loss = page.evaluate(  # the `# -- loss --` row's two shown cells: their tops
        "Array.from(document.querySelectorAll('#loss ~ .code')).filter(e => e.checkVisibility())"
        ".slice(0, 2).map(e => e.getBoundingClientRect().y)"
    )
    assert len(loss) == 2 and abs(loss[0] - loss[1]) <= PIXEL
    page.locator("#loss").scroll_into_view_if_needed()
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "grid-switch.png"))
    right.select_option("functional_torch")  # the left column's side: the two columns swap
    assert (left.input_value(), right.input_value()) == ("oop_jax", "functional_torch")
    assert [c["side"] for c in shown(page)][:2] == ["oop_jax", "functional_torch"]
    assert page.errors == []


def test_keras_stands_beside_either_twin_and_its_pure_step_beside_the_functional_one(page, site):
    """The rnn page, which no other corner builds, offers the Keras side: picked on the right, its
    code stands beside the functional twin's. On the MLP's page, Keras's pure step on JAX
    (`keras3/stateless.py`) picked on the right puts `stateless_call` in the train step's row,
    level with the functional twin's step."""
    page.goto((site / "rnn.html").as_uri())
    right = page.locator('select[data-column="1"]')
    right.select_option("keras3")
    cells = shown(page)
    assert [c["side"] for c in cells] == ["functional", "keras3"] * (len(cells) // 2)
    assert "keras.layers" in " ".join(c["text"] for c in cells[1::2])
    page.goto((site / "mlp.html").as_uri())
    page.locator('select[data-column="1"]').select_option("keras3_pure")
    step = page.evaluate(  # the `# -- train step --` row's two shown cells
        "Array.from(document.querySelectorAll('#train-step ~ .code'))"
        ".filter(e => e.checkVisibility()).slice(0, 2)"
        ".map(e => ({side: e.dataset.side, y: e.getBoundingClientRect().y, text: e.innerText}))"
    )
    assert [c["side"] for c in step] == ["functional", "keras3_pure"]
    assert "stateless_call" in step[1]["text"] and abs(step[0]["y"] - step[1]["y"]) <= PIXEL
    assert page.errors == []


def test_a_student_can_find_their_way_in_light_and_dark(page, site):
    """The cnn_bn page at its train step: the anchor lands below the sticky column heads, the
    OOP cell shows the MLP's train_step it reuses (marked as shared), code lines keep their
    indentation (a long line scrolls its pane instead of wrapping to column 0), the sidebar
    marks the page and every figure opens full size; in dark mode the page is dark."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.goto((site / "cnn_bn.html").as_uri() + "#train-step")
    heading = page.locator("#train-step h2").bounding_box()
    head = page.locator(".twins > .head").first.bounding_box()
    assert heading["y"] >= head["y"] + head["height"] - PIXEL  # not hidden under the heads
    shared = page.locator('#train-step ~ .code[data-side="OOP"] .shared').first
    assert "train_step of oop/models/mlp.py" in shared.inner_text()
    assert "optimizer.zero_grad(" in shared.inner_text()  # the torch code itself is there
    assert page.evaluate(
        "Array.from(document.querySelectorAll('.code pre'))"
        ".every(p => getComputedStyle(p).whiteSpace === 'pre')"
    )
    assert page.evaluate(  # at least one long line overflows its pane rather than wrapping
        "Array.from(document.querySelectorAll('.code pre'))"
        ".some(p => p.scrollWidth > p.clientWidth)"
    )
    assert page.locator("nav.side a.here").inner_text() == "CNN + BatchNorm"
    proof = page.locator("#train-step ~ .proofs a").first  # "proved by": lands on the test
    test = proof.inner_text()
    proof.click()
    assert page.url.endswith(f"#{test}") and page.locator(f"#{test} h2").is_visible()
    page.go_back()
    assert page.locator("nav.toc a").count() >= 5 and page.locator("a[rel=next]").count() == 1
    page.screenshot(path=os.path.join(ARTIFACTS, "cnn_bn-train-step-light.png"))
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")

    page.emulate_media(color_scheme="dark")
    page.goto((site / "cnn_bn.html").as_uri() + "#train-step")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(13, 17, 23)")
    page.screenshot(path=os.path.join(ARTIFACTS, "cnn_bn-train-step-dark.png"))
    page.goto((site / "traps.html").as_uri())
    figures = page.locator("main img")
    assert figures.count() > 40
    assert page.locator("a.figure > img").count() == figures.count()  # each opens full size
    assert page.errors == []


@pytest.mark.parametrize("side", ["functional", "oop"])
def test_the_ladder_aligns_its_three_levels_section_by_section(side, page, site):
    page.goto((site / f"ladder-{side}.html").as_uri())
    levels = [boxes(page, code(f"level {i}")) for i in range(3)]
    assert len(levels[0]) == len(levels[1]) == len(levels[2]) >= 6
    for row in zip(*levels, strict=True):
        assert max(b["y"] for b in row) - min(b["y"] for b in row) <= PIXEL
    assert page.locator("#train-step").count() == 1
    page.screenshot(path=os.path.join(ARTIFACTS, f"ladder-{side}-1400.png"))


def test_the_search_finds_code_and_docs_without_a_server(page, site):
    """Typed into the sidebar's box: a word of the code finds the twin page's section, a word
    of the docs finds the docs page's heading; nothing is fetched (the index is a script)."""
    page.goto((site / "index.html").as_uri())
    page.fill("#search", "value_and_grad has_aux")
    hits = page.locator("#results a")
    assert hits.count() >= 1
    assert any(
        h.endswith("cnn_bn.html#train-step") for h in hits.evaluate_all("l => l.map(a => a.href)")
    )
    page.fill("#search", "zero_grad accumulate")
    found = hits.evaluate_all("l => l.map(a => a.href)")
    assert any("traps.html#no-zero_grad-gradients-accumulate" in h for h in found), found
    page.screenshot(path=os.path.join(ARTIFACTS, "search-1400.png"))
    page.fill("#search", "qqqxyzzy")
    assert page.locator("#results li").inner_text() == "no match"
    assert page.errors == []

"""The docs quote program output; these tests keep the quotes current."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import runpy

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_adam_state_quoted_in_the_optimizers_page_is_what_the_example_prints():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # in this process: jax and torch are loaded already
        runpy.run_path(str(ROOT / "docs/examples/adam_state.py"), run_name="__main__")
    page = (ROOT / "docs/optimizers.md").read_text()
    lines = out.getvalue().strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["optax", "torch"]
    for line in lines:
        assert line in page, f"docs/optimizers.md does not quote: {line}"


def test_every_trap_figure_the_catalogue_names_exists():
    page = (ROOT / "docs/traps.md").read_text()
    names = re.findall(r"figures/traps/([\w-]+)\.png", page)
    assert names, "docs/traps.md names no figures"
    for name in names:
        assert (ROOT / "docs/figures/traps" / f"{name}.png").is_file(), name

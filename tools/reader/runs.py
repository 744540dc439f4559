"""The "your runs" page: every run folder under `runs/` (a training script's `--out`), and for
each pair of twins (a run started with `--init` from another run's init) the comparison table,
its overlay plot and the commands that made the two runs, rebuilt from their config.json."""

from __future__ import annotations

import html
import json
import os

from shared import compare, registry
from shared.cli import resume
from shared.config import train_config_from_dict
from tools.docs_markdown import slug

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_folders(root: str) -> list[str]:
    """Folders under `root` holding a run: a config.json and a metrics log."""
    if not os.path.isdir(root):
        return []
    found = []
    for here, dirs, files in os.walk(root):
        dirs.sort()
        if "config.json" in files and "metrics.jsonl" in files:
            found.append(here)
    return found


def config_of(folder: str) -> dict:
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def command(folder: str, cfg: dict) -> str:
    """The training command that rebuilds this run: every setting that differs from its
    optimizer's defaults (`shared.cli.resume.as_flags`), and how it started."""
    train = train_config_from_dict(cfg["train_config"])
    model = registry.entry(cfg["model"]).config(**cfg["model_config"])
    start = cfg.get("start", {})
    flags = resume.as_flags(train, model)
    flags += [f"--{k.replace('_', '-')} {start[k]}" for k in ("init", "resume") if start.get(k)]
    flags += [f"--{k.replace('_', '-')}" for k in ("control", "jitter_init") if start.get(k)]
    return f".venv/bin/python -m {cfg['side']}.train " + " ".join(flags) + f" --out {folder}"


def resolve_init(init: str) -> list[str]:
    """Where a stored `--init` may point: it was given relative to the folder the training
    ran in, most often the project root."""
    if os.path.isabs(init):
        return [os.path.realpath(init)]
    return [os.path.realpath(os.path.join(ROOT, init)), os.path.realpath(init)]


def twins(folders: list[str]) -> list[tuple[str, str]]:
    """`(a, b)` where run b started from run a's init.safetensors."""
    real = {os.path.realpath(os.path.join(f, "init.safetensors")): f for f in folders}
    pairs = []
    for b in folders:
        init = config_of(b).get("start", {}).get("init")
        found = [real[p] for p in resolve_init(init) if p in real] if init else []
        if found and found[0] != b:
            pairs.append((found[0], b))
    return pairs


def readable(folder: str) -> dict | None:
    """The run's config.json, or None where it cannot be read as this package writes it (a
    damaged file, one from an older version)."""
    try:
        cfg = config_of(folder)
        command(folder, cfg)  # every field the page uses is there and valid
        return cfg
    except (OSError, ValueError, KeyError, TypeError):
        return None


def runs_page_body(root: str, out: str) -> str:
    """The page's HTML: a table of the runs, then each pair of twins."""
    folders = run_folders(root)
    if not folders:
        return (f"<p>No runs under <code>{html.escape(root)}</code> yet. <code>make demo</code> "
                "writes a pair; any training script's <code>--out runs/NAME</code> adds one, "
                "and <code>make docs</code> lists it here.</p>")  # fmt: skip
    rows = ["<table><tr><th>run</th><th>side</th><th>model</th><th>data</th><th>updates</th>"
            "<th>final loss</th><th>test accuracy</th></tr>"]  # fmt: skip
    configs = {f: readable(f) for f in folders}
    loaded = {}
    for f, cfg in configs.items():
        where = f"<td><code>{html.escape(os.path.relpath(f, root))}</code></td>"
        if cfg is None:
            rows.append(f'<tr>{where}<td colspan="6">config.json unreadable: skipped</td></tr>')
            continue
        try:
            loaded[f] = run = compare.load_run(f)
            loss, accuracy = f"{run.losses[-1]:.4f}", f"{run.test_accuracy:.4f}"
        except ValueError as e:  # a run cut short before its first record
            loss, accuracy = html.escape(str(e)), ""
        t = cfg["train_config"]
        rows.append(f"<tr>{where}<td>{cfg['side']}</td><td>{cfg['model']}</td>"
                    f"<td>{t['dataset']}</td><td>{t['steps']}</td><td>{loss}</td>"
                    f"<td>{accuracy}</td></tr>")  # fmt: skip
    rows.append("</table>")
    for a, b in twins([f for f in folders if configs[f] is not None]):
        if a not in loaded or b not in loaded:
            continue
        name = f"{os.path.relpath(a, root)} and {os.path.relpath(b, root)}"
        rows.append(f'<h2 id="{slug(os.path.relpath(b, root))}">{html.escape(name)}</h2>')
        rows.append(f"<pre>{html.escape(compare.table(loaded[a], loaded[b]))}</pre>")
        plot = os.path.join(b, "compare.png")
        if os.path.exists(plot):
            src = html.escape(os.path.relpath(plot, out))
            rows.append(f'<img src="{src}" alt="{html.escape(name)}">')
        made = [command(a, configs[a]), command(b, configs[b])]
        made.append(f".venv/bin/python -m shared.compare {a} {b}")
        rows.append("<p>Made by:</p><pre>" + html.escape("\n".join(made)) + "</pre>")
    return "\n".join(rows)

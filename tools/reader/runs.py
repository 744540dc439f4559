"""The "your runs" page: every run folder under `runs/` (a training script's `--out`), and for
each pair of twins (a run started with `--init` from another run's init) the comparison table,
its overlay plot and the commands that made the two runs, rebuilt from their config.json."""

from __future__ import annotations

import html
import json
import os

from shared import compare, registry


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
    """The training command that writes this run (flags that differ from no default dropped)."""
    t, start = cfg["train_config"], cfg.get("start", {})
    entry = registry.entry(cfg["model"])
    flags = [f"--model {cfg['model']}", f"--dataset {t['dataset']}", f"--steps {t['steps']}",
             f"--dtype {t['dtype']}", f"--optimizer {t['optimizer']['name']}",
             f"--lr {t['optimizer']['lr']:g}"]  # fmt: skip
    sizes = entry.flag_values(registry.entry(cfg["model"]).config(**cfg["model_config"]))
    flags += [f"--{k} {v}" for k, v in sizes.items() if v is not None]
    flags += [f"--{k.replace('_', '-')} {start[k]}" for k in ("init", "resume") if start.get(k)]
    flags += [f"--{k.replace('_', '-')}" for k in ("control", "jitter_init") if start.get(k)]
    return f".venv/bin/python -m {cfg['side']}.train " + " ".join(flags) + f" --out {folder}"


def twins(folders: list[str]) -> list[tuple[str, str]]:
    """`(a, b)` where run b started from run a's init.safetensors."""
    real = {os.path.realpath(os.path.join(f, "init.safetensors")): f for f in folders}
    pairs = []
    for b in folders:
        init = config_of(b).get("start", {}).get("init")
        if init and os.path.realpath(init) in real and real[os.path.realpath(init)] != b:
            pairs.append((real[os.path.realpath(init)], b))
    return pairs


def runs_page_body(root: str, out: str) -> str:
    """The page's HTML: a table of the runs, then each pair of twins."""
    folders = run_folders(root)
    if not folders:
        return (f"<p>No runs under <code>{html.escape(root)}</code> yet. <code>make demo</code> "
                "writes a pair; any training script's <code>--out runs/NAME</code> adds one, "
                "and <code>make docs</code> lists it here.</p>")  # fmt: skip
    rows = ["<table><tr><th>run</th><th>side</th><th>model</th><th>data</th><th>updates</th>"
            "<th>final loss</th><th>test accuracy</th></tr>"]  # fmt: skip
    loaded = {}
    for f in folders:
        cfg = config_of(f)
        try:
            loaded[f] = run = compare.load_run(f)
            loss, accuracy = f"{run.losses[-1]:.4f}", f"{run.test_accuracy:.4f}"
        except ValueError as e:  # a run cut short before its first record
            loss, accuracy = html.escape(str(e)), ""
        t = cfg["train_config"]
        rows.append(f"<tr><td><code>{html.escape(os.path.relpath(f, root))}</code></td>"
                    f"<td>{cfg['side']}</td><td>{cfg['model']}</td><td>{t['dataset']}</td>"
                    f"<td>{t['steps']}</td><td>{loss}</td><td>{accuracy}</td></tr>")  # fmt: skip
    rows.append("</table>")
    for a, b in twins(folders):
        if a not in loaded or b not in loaded:
            continue
        name = f"{os.path.relpath(a, root)} and {os.path.relpath(b, root)}"
        rows.append(f'<h2 id="{html.escape(os.path.basename(b))}">{html.escape(name)}</h2>')
        rows.append(f"<pre>{html.escape(compare.table(loaded[a], loaded[b]))}</pre>")
        plot = os.path.join(b, "compare.png")
        if os.path.exists(plot):
            rows.append(f'<img src="{html.escape(os.path.relpath(plot, out))}" alt="{name}">')
        made = [command(a, config_of(a)), command(b, config_of(b))]
        made.append(f".venv/bin/python -m shared.compare {a} {b}")
        rows.append("<p>Made by:</p><pre>" + html.escape("\n".join(made)) + "</pre>")
    return "\n".join(rows)

"""The architecture, checked: layering between the floors, and twin files that mirror."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^# -- (.+) --$", re.M)
CANONICAL_ORDER = ["config", "layers", "model", "loss", "train step", "evaluate"]


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    return names


# The frameworks a package must never load.
FORBIDDEN = {
    "functional": ["torch"],
    "oop": ["jax", "jaxlib", "equinox", "optax", "chex"],
    "shared": ["torch", "jax", "jaxlib", "equinox", "optax", "chex"],
}


def loads_no_other_framework(package: str, script: str | None = None, argv=()) -> str:
    """The code of a fresh interpreter that runs `script` as `python -m script *argv` would
    (runpy, as `__main__`; an exit code 0 counts as success), then imports every other module of
    `package`, and prints the forbidden frameworks that got loaded. tests/test_scripts.py runs
    each side's training script so; `shared`, which has no such script, is checked here."""
    lines = ["import importlib, runpy, sys"]
    if script:
        lines += [f"sys.argv = [{script!r}, *{list(argv)!r}]", "try:",
                  f"    runpy.run_module({script!r}, run_name='__main__', alter_sys=True)",
                  "except SystemExit as e:", "    if e.code:", "        raise"]  # fmt: skip
    names = [n for n in modules(package) if n != script]
    lines += [f"for name in {names!r}:", "    importlib.import_module(name)"]
    lines.append(f"print('loaded:', sorted(m for m in {FORBIDDEN[package]!r} if m in sys.modules))")
    return "\n".join(lines) + "\n"


def test_importing_shared_loads_no_framework():
    """In a fresh interpreter, import every module of `shared` and list what got loaded."""
    result = subprocess.run([sys.executable, "-c", loads_no_other_framework("shared")], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "loaded: []", f"shared {result.stdout.strip()}"


def twin_pairs() -> list[tuple[str, str]]:
    pairs = []
    for folder in ("models", "level1"):
        for f in sorted((ROOT / "functional" / folder).glob("*.py")):
            if f.name != "__init__.py":
                pairs.append((f"functional/{folder}/{f.name}", f"oop/{folder}/{f.name}"))
    return pairs


@pytest.mark.parametrize("functional_file,oop_file", twin_pairs())
def test_twin_files_carry_the_same_section_headers(functional_file, oop_file):
    assert (ROOT / oop_file).exists(), f"{functional_file} has no twin {oop_file}"
    a = HEADER.findall((ROOT / functional_file).read_text())
    b = HEADER.findall((ROOT / oop_file).read_text())
    assert a == b, f"{functional_file} {a} vs {oop_file} {b}"
    assert a == [h for h in CANONICAL_ORDER if h in a], f"headers out of order: {a}"
    assert {"model", "loss", "train step", "evaluate"} <= set(a)


def test_every_oop_model_has_a_functional_twin():
    for folder in ("models", "level1"):
        for f in (ROOT / "oop" / folder).glob("*.py"):
            assert (ROOT / "functional" / folder / f.name).exists(), f"oop/{folder}/{f.name}"


def test_model_registries_agree():
    import functional.models
    import oop.models
    from shared.config import MODEL_CONFIGS

    assert functional.models.MODELS.keys() == oop.models.MODELS.keys() == MODEL_CONFIGS.keys()


def test_twin_models_have_the_same_attribute_names_in_the_same_order(mlp_config):
    import jax

    import functional.convert as fconvert
    import functional.models.mlp as f2
    import oop.models.mlp as o2

    f_names = list(fconvert.to_canonical(f2.init_model(mlp_config, key=jax.random.PRNGKey(0))))
    o_names = list(o2.init_model(mlp_config, seed=0).state_dict())
    assert f_names == o_names == list(mlp_config.weight_shapes())

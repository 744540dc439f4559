"""The architecture, checked: layering between the tiers, and twin files that mirror."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re
import subprocess
import sys

import pytest

from shared import registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^# -- (.+) --$", re.M)
CANONICAL_ORDER = ["config", "layers", "model", "loss", "train step", "evaluate"]


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    return names


# The frameworks a package must never load.
JAX_FAMILY = ["jax", "jaxlib", "equinox", "optax", "chex", "flax"]
FORBIDDEN = {
    "functional": ["torch"],
    "oop": JAX_FAMILY,
    "shared": ["torch", *JAX_FAMILY],
    "crossover.oop_jax": ["torch"],
    "crossover.functional_torch": JAX_FAMILY,
}
# Each side by import path, with its framework: a side imports only sides of its own framework
# (a grid corner reuses its framework's native side, never the other framework's).
SIDE_FRAMEWORK = {"functional": "jax", "crossover.oop_jax": "jax", "oop": "torch",
                  "crossover.functional_torch": "torch", "keras3": "keras"}  # fmt: skip
CORNERS = ("crossover/oop_jax", "crossover/functional_torch")


def loads_no_other_framework(
    package: str, script: str | None = None, argv=(), *, then: tuple[tuple[str, list], ...] = ()
) -> str:
    """The code of a fresh interpreter that runs `script` as `python -m script *argv` would
    (runpy, as `__main__`; an exit code 0 counts as success), then each `(package, argv)` of
    `then` the same way (its `package.train`: one interpreter per framework family, not one per
    side), then imports every other module of those packages, and prints the forbidden
    frameworks that got loaded (the packages of one call must share FORBIDDEN's list).
    tests/test_scripts.py runs each family's training scripts so; `shared`, which has no such
    script, is checked here."""
    runs = ([(package, script, list(argv))] if script else []) + [
        (other, f"{other}.train", list(args)) for other, args in then
    ]
    forbidden = FORBIDDEN[package]
    assert all(FORBIDDEN[p] == forbidden for p, _, _ in runs), "one family per interpreter"
    lines = ["import importlib, runpy, sys"]
    for _, name, args in runs:
        lines += [f"sys.argv = [{name!r}, *{args!r}]", "try:",
                  f"    runpy.run_module({name!r}, run_name='__main__', alter_sys=True)",
                  "except SystemExit as e:", "    if e.code:", "        raise"]  # fmt: skip
    scripts = {name for _, name, _ in runs}
    names = [n for p in dict.fromkeys([package, *(p for p, _, _ in runs)]) for n in modules(p)
             if n not in scripts]  # fmt: skip
    lines += [f"for name in {names!r}:", "    importlib.import_module(name)"]
    lines.append(f"print('loaded:', sorted(m for m in {forbidden!r} if m in sys.modules))")
    return "\n".join(lines) + "\n"


def test_importing_shared_loads_no_framework():
    """In a fresh interpreter, import every module of `shared` and list what got loaded."""
    result = subprocess.run([sys.executable, "-c", loads_no_other_framework("shared")], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == "loaded: []", f"shared {result.stdout.strip()}"


# Sections that one twin needs and the other does not, with the reason: the differences between
# the paradigms, named. Every other section header appears in both twins, in the same order.
ONE_SIDED = {
    ("functional/convert.py", "model state (BatchNorm statistics)"):
        "equinox keeps BatchNorm's statistics in an eqx.nn.State apart from the model; torch's "
        "state_dict() holds them beside the weights, so to_canonical already covers them",
    ("functional/convert.py", "a model with its state"):
        "the same reason: only the functional side carries a model and its state (None "
        "without one, as functional.interface.init gives it) as a pair",
    ("functional/train.py", "the ensemble"):
        "--ensemble maps one pure step over a stack of models (jax.vmap): the functional "
        "paradigm's own feature; an in-place step on one module has nothing to map",
    ("crossover/functional_torch/train.py", "the ensemble"):
        "the same feature on torch: torch.func.stack_module_state and torch.func.vmap",
    ("crossover/oop_jax/convert.py", "random streams"):
        "NNX keeps each Dropout's random stream (a key and a count) as variables of the module, "
        "which a checkpoint must carry; torch's generator is global (oop/train.py saves it as "
        "rng.torch) and the functional sides derive each update's key or generator from the seed",
    ("functional/optim.py", "transforms torch defines differently"):
        "optax's own clipping, Adam and Adagrad round or order otherwise than torch.optim; the "
        "OOP side simply is torch.optim",
}  # fmt: skip
# Files of one side with no twin, and why.
NO_TWIN = {
    "oop/data.py": "torch's Dataset, Sampler and DataLoader; the functional loop indexes NumPy "
    "batches from shared.data directly",
}


def twin_pairs() -> list[tuple[str, str]]:
    """Every file of functional/ (its models, its level 1, its entry points, layers and
    interface) with its oop/ twin; and every file of a grid corner with the native sides' files
    of the same name (`crossover/oop_jax/models/mlp.py` with `functional/models/mlp.py` and
    `oop/models/mlp.py`)."""
    pairs = []
    for folder in ("models", "level1", "."):
        for f in sorted((ROOT / "functional" / folder).glob("*.py")):
            rel = f.relative_to(ROOT / "functional").as_posix()
            if f.name != "__init__.py" and f"functional/{rel}" not in NO_TWIN:
                pairs.append((f"functional/{rel}", f"oop/{rel}"))
    for rel, twin in corner_files():
        pairs += [(twin, rel)] if twin.startswith("functional/") else [(rel, twin)]
    return pairs


def corner_files() -> list[tuple[str, str]]:
    """`(corner file, native twin)` for every file of the grid's corners and each native side's
    file of the same relative path (a corner file with none is reported by its own test)."""
    out = []
    for corner in CORNERS:
        for f in sorted((ROOT / corner).rglob("*.py")):
            if f.name != "__init__.py":
                rel = f.relative_to(ROOT / corner).as_posix()
                out += [(f"{corner}/{rel}", f"{side}/{rel}") for side in ("functional", "oop")
                        if (ROOT / side / rel).exists()]  # fmt: skip
    return out


def sections(path: str) -> list[str]:
    return HEADER.findall((ROOT / path).read_text())


@pytest.mark.parametrize("functional_file,oop_file", twin_pairs())
def test_twin_files_carry_the_same_section_headers(functional_file, oop_file):
    assert (ROOT / oop_file).exists(), f"{functional_file} has no twin {oop_file}"
    a = [h for h in sections(functional_file) if (functional_file, h) not in ONE_SIDED]
    b = [h for h in sections(oop_file) if (oop_file, h) not in ONE_SIDED]
    assert a == b, f"{functional_file} {a} vs {oop_file} {b}"
    assert a, f"{functional_file} has no section headers"
    if "/models/" in functional_file or "/level1/" in functional_file:
        assert a == [h for h in CANONICAL_ORDER if h in a], f"headers out of order: {a}"
        assert {"model", "loss", "train step", "evaluate"} <= set(a)


def test_one_sided_sections_exist():
    """The list of one-sided sections names only sections that are there."""
    for path, header in ONE_SIDED:
        assert header in sections(path), f"{path} has no section {header!r} any more"


@pytest.mark.parametrize("functional_file,oop_file", twin_pairs())
def test_every_section_holds_code(functional_file, oop_file):
    """A section is code under its header, not a comment over an import: each holds at least
    one statement that is not an import, and no file imports below its first header."""
    for path in (functional_file, oop_file):
        text = (ROOT / path).read_text()
        body = text[text.index("# -- ") :] if "# -- " in text else ""
        parts = HEADER.split(body)[1:]  # header, code, header, code, ...
        for header, code in zip(parts[::2], parts[1::2], strict=True):
            statements = ast.parse(code).body if code.strip() else []
            assert any(not isinstance(n, ast.Import | ast.ImportFrom) for n in statements), (
                f"{path}: section {header!r} holds no code"
            )
            assert not any(isinstance(n, ast.Import | ast.ImportFrom) for n in statements), (
                f"{path}: section {header!r} imports; imports go to the top of the file"
            )


def test_every_oop_file_has_a_functional_twin():
    for path in sorted((ROOT / "oop").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name != "__init__.py" and rel not in NO_TWIN:
            twin = ROOT / "functional" / path.relative_to(ROOT / "oop")
            assert twin.exists(), f"{rel} has no twin {twin.relative_to(ROOT)}"
    for rel in NO_TWIN:
        assert (ROOT / rel).exists(), f"NO_TWIN names {rel}, which is gone"


def test_every_corner_file_has_a_native_twin_and_its_models_are_its_sides():
    """A corner's file mirrors a file of the native sides, and its models/ holds exactly the
    files of the models `shared.sides` says it has."""
    from shared import sides

    twinned = {c for c, _ in corner_files()}
    for corner in CORNERS:
        for f in sorted((ROOT / corner).rglob("*.py")):
            rel = f.relative_to(ROOT).as_posix()
            assert f.name == "__init__.py" or rel in twinned, f"{rel} has no twin on a native side"
        side = sides.SIDES[corner.split("/")[1]]
        files = {f.stem for f in (ROOT / corner / "models").glob("*.py") if f.stem != "__init__"}
        assert files == {registry.BY_NAME[m].file for m in side.models}, (corner, files)


def test_model_registries_agree():
    import functional.models
    import oop.models
    from shared.config import MODEL_CONFIGS

    names = list(registry.NAMES)
    assert list(functional.models.MODELS) == list(oop.models.MODELS) == names
    assert list(MODEL_CONFIGS) == names


@pytest.mark.parametrize("side", ["functional", "oop"])
def test_every_model_file_is_registered_and_every_entry_has_its_files(side):
    """Adding a model is one registry entry: a model file on a side that the registry does not
    name, or an entry without its file on both sides, fails here."""
    folder = ROOT / side / "models"
    files = {f.stem for f in folder.glob("*.py") if f.name != "__init__.py"}
    assert files == set(registry.FILES), (
        f"{side}/models/ holds {sorted(files - set(registry.FILES))} unregistered; "
        f"the registry names {sorted(set(registry.FILES) - files)} without a file there"
    )


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.name)
def test_registry_entries_are_consistent(entry):
    """Each entry's flags set fields its config has, its bench data set exists and builds the
    config, and a flag it does not take is refused by name."""
    import dataclasses

    from shared import data

    fields = {f.name for f in dataclasses.fields(entry.config)}
    assert {f.field for f in entry.flags.values()} <= fields
    assert set(entry.flags) <= set(registry.SIZE_FLAGS)
    ds = data.load(entry.bench_data)
    config = entry.config.for_data(ds)
    assert entry.flag_values(config) == {
        k: (entry.default(k) if k in entry.flags else None) for k in registry.SIZE_FLAGS
    }
    for flag in set(registry.SIZE_FLAGS) - set(entry.flags):
        with pytest.raises(ValueError, match=f"the {entry.name} takes no --{flag}"):
            entry.fields({flag: 1})


def test_twin_models_have_the_same_attribute_names_in_the_same_order(mlp_config):
    import jax

    import functional.convert as fconvert
    import functional.models.mlp as f2
    import oop.models.mlp as o2

    f_names = list(fconvert.to_canonical(f2.init_model(mlp_config, key=jax.random.PRNGKey(0))))
    o_names = list(o2.init_model(mlp_config, seed=0).state_dict())
    assert f_names == o_names == list(mlp_config.weight_shapes())


# -- imports: the layering inside shared/, and no circles anywhere --
PACKAGES = ("shared", "functional", "oop", "crossover", "keras3", "tools")
# The contract, the base tier: what both sides and every command stand on. Above it, inside
# shared/, the rooms of commands: shared.cli (but its leaf `base`), shared.bench, and level 0,
# a rung of the ladder run as a script like the sides' level 1.
ROOMS = ("shared.cli.", "shared.bench.", "shared.level0.")
LEAVES = ("shared.cli", "shared.cli.base")  # the house argparse classes: imports nothing


def all_modules() -> dict[str, pathlib.Path]:
    """Every module of the packages and every helper module of tests/, by import name (the
    suite's helpers are imported by their bare names: `import rounding`)."""
    found = {}
    for package in PACKAGES:
        for name, path in zip(
            modules(package), sorted((ROOT / package).rglob("*.py")), strict=True
        ):
            found[name] = path
    for path in [*(ROOT / "tests").glob("*.py"), *(ROOT / "tests" / "traps").glob("*.py")]:
        found.setdefault(path.stem, path)
    return found


def imported(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The modules of `known` that the file imports, anywhere in it (a deferred import inside a
    function closes a circle as surely as one at the top)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
    return out & set(known)


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    known = all_modules()
    return {name: imported(path, known) - {name} for name, path in known.items()}


UPPER = ("functional", "oop", "crossover", "keras3")


def side_of(module: str) -> str | None:
    """The side a module belongs to (`crossover.oop_jax` for its models too), or None."""
    return next((s for s in sorted(SIDE_FRAMEWORK, key=len, reverse=True)
                 if module == s or module.startswith(s + ".")), None)  # fmt: skip


def contract(name: str) -> bool:
    return name.startswith("shared") and name not in LEAVES and not name.startswith(ROOMS)


def test_the_contract_imports_no_command_room_and_shared_no_upper_tier(import_graph):
    """The contract modules (data, configs, registry, optim, checkpoint, metrics, run, compare,
    ngram, ...) import only each other and the leaf `shared.cli.base`; nothing in shared/
    imports a side or tools/; the sides import neither each other nor tools/."""
    wrong = []
    for name, deps in import_graph.items():
        for dep in deps:
            if contract(name) and dep.startswith(ROOMS) and dep not in LEAVES:
                wrong.append(f"{name} (the contract) imports {dep} (a command room)")
            if name.startswith("shared") and dep.split(".")[0] in (*UPPER, "tools"):
                wrong.append(f"{name} imports {dep}, a tier above shared/")
            mine, theirs = side_of(name), side_of(dep)
            if mine and (
                dep.startswith("tools")
                or (
                    theirs
                    and theirs != mine
                    and (SIDE_FRAMEWORK[theirs] != SIDE_FRAMEWORK[mine] or "." in theirs)
                )
            ):
                wrong.append(f"{name} imports {dep}")  # fmt: skip
    assert not wrong, "; ".join(sorted(wrong))


def test_no_import_circles(import_graph):
    """Depth-first search for a cycle in the import graph of the packages and the suite's
    helpers; the first one found is named in full."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for dep in sorted(import_graph[name]):
            if state.get(dep) == 1:
                return [*path, name, dep][[*path, name].index(dep) :]
            if dep not in state and (cycle := visit(dep, [*path, name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(import_graph):
        if name not in state and (cycle := visit(name, [])):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_no_folder_or_module_shadows_an_installed_library():
    """A folder or module named like an installed distribution's top-level package, or like a
    standard-library module, would shadow it wherever its folder is on sys.path (`keras3/`,
    never `keras/`)."""
    theirs = {name for name, dists in importlib.metadata.packages_distributions().items()
              if set(dists) != {"paradigms"}} | set(sys.stdlib_module_names)  # fmt: skip
    names = set(PACKAGES) | {"tests"}
    for top in (*PACKAGES, "tests"):
        for path in (ROOT / top).rglob("*"):
            if "__pycache__" not in path.parts and (path.is_dir() or path.suffix == ".py"):
                names.add(path.stem)
    names -= {"__init__", "conftest"}
    assert not sorted(names & theirs), f"these names shadow libraries: {sorted(names & theirs)}"


BACKEND_LIBRARIES = {"jax", "jaxlib", "torch", "tensorflow", "flax", "equinox", "optax"}


BACKEND_FILES = {"keras3/stateless.py"}  # the JAX backend's pure step: it imports jax


def test_the_keras_side_imports_keras_alone():
    """One Keras file runs on three backends only if it never reaches past Keras to one: no
    module of keras3/ imports jax, torch or tensorflow, but the one file that belongs to a
    backend (`BACKEND_FILES`); the gradients' per-backend bridge lives in
    tests/keras_worker.py, which only the tests import."""
    found = []
    for path in sorted((ROOT / "keras3").rglob("*.py")):
        if str(path.relative_to(ROOT)) in BACKEND_FILES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names
                      if n.split(".")[0] in BACKEND_LIBRARIES]  # fmt: skip
    assert not found, f"a backend imported by the Keras side: {found}"

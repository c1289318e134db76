"""The shape of the code: dependencies point one way, one place picks the task, packages are found."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "galzoo_tf"
TASK_TYPES = ("VoteModel", "ParameterModel", "VoteTask", "ParameterTask", "VoteTraining", "ParameterTraining",
              "PredictOptions", "ParameterPredictOptions")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in LIBRARY.rglob("*.py")}


def imported(path: Path, known: set[str]) -> set[str]:
    """galzoo_tf modules a module imports anywhere in it (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("galzoo_tf"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("galzoo_tf"))
    return found & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_library_modules():
    known = modules()
    graph = {name: imported(path, set(known)) - {name} for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_task_subpackages_pick_a_task_by_type():
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(TASK_TYPES) + r")\b"  # a type check on a task
                         r"|\btask\b[\"']?\]?\)?\s*[!=]=|[!=]=\s*[\"'](votes|parameters)[\"']")  # or on its name
    offenders = [f"{path.relative_to(ROOT)}:{number}" for folder in (LIBRARY, ROOT / "galzoo_cli")
                 for path in folder.rglob("*.py") if "tasks" not in path.relative_to(ROOT).parts
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_cli_imports_no_task_module():
    """The CLI reaches tasks through the library's entry points, never a task's own modules."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "galzoo_cli").glob("*.py")
                 if re.search(r"galzoo_tf\.tasks\.(votes|parameters)", path.read_text())]
    assert offenders == []


def test_importing_the_package_does_not_import_tensorflow():
    """`import galzoo_tf` stays light (galzoo fraction, galzoo --help); its API loads on first use."""
    code = "import sys, galzoo_tf; assert 'tensorflow' not in sys.modules; print(galzoo_tf.__version__)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_plain_keras_loads_a_galzoo_model_after_import_galzoo_tf(tiny_bar):
    """Layers and losses register themselves when Keras is imported, whichever galzoo module came first."""
    model = tiny_bar[1] / "model.keras"
    for first in ("import galzoo_tf", "import galzoo_tf.training.model_dir"):  # Keras first from a galzoo module
        code = (f"{first}\nimport keras\nmodel = keras.saving.load_model({str(model)!r}, safe_mode=True)\n"
                "assert type(model.loss).__name__ == 'BinomialVoteLoss', model.loss")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, (first, run.stderr[-1500:])

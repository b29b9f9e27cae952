"""The code layout the README describes: the original release's scripts and modeling,
tokenization and optimization at the root, one package (krbert) for the rest, and imports
that only go downward.

Layers, bottom up:
- base: krbert.cli, krbert.tf_compat, krbert.bert_config, krbert.files.*, krbert.tokenizers.*;
- the root modules modeling, tokenization and optimization;
- the rest of krbert (pretraining, corpus, vocab, classifier, checkpoints, estimator);
- the scripts (a root module that runs as ``python NAME.py``).
"""

import ast
import glob
import io
import os

from conftest import ROOT

ROOT_MODULES = {"modeling", "tokenization", "optimization"}
BASE_PREFIXES = ("krbert.cli", "krbert.tf_compat", "krbert.bert_config", "krbert.files",
                 "krbert.tokenizers")


def module_path(name):
    """The file of a dotted project module name."""
    path = os.path.join(ROOT, *name.split("."))
    return os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"


def read_module(name):
    with io.open(module_path(name), encoding="utf-8") as f:
        return f.read()


def project_modules():
    """Dotted names of the root modules and of every module of the krbert package."""
    names = {os.path.splitext(os.path.basename(path))[0]
             for path in glob.glob(os.path.join(ROOT, "*.py"))} - {"setup"}
    for path in glob.glob(os.path.join(ROOT, "krbert", "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
        if rel[-1] == "__init__":
            rel = rel[:-1]
        names.add(".".join(rel))
    return names


def imported_names(name):
    """Every dotted name module ``name`` imports (``from a.b import c`` gives a.b and a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(read_module(name))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update("%s.%s" % (node.module, alias.name) for alias in node.names)
    return found


def imports_of(name, modules):
    """The project modules that module ``name`` imports, anywhere in its body (a package
    named only on the way to one of its modules is left out)."""
    found = imported_names(name) & modules
    parents = {dep.rsplit(".", 1)[0] for dep in found if "." in dep}
    return found - parents - {name}


def import_graph():
    modules = project_modules()
    return {name: imports_of(name, modules) for name in modules}


def is_script(name):
    return "." not in name and '__name__ == "__main__"' in read_module(name)


def layer(name):
    """0 base, 1 modeling/tokenization/optimization, 2 the rest of krbert, 3 a script."""
    if name.startswith(BASE_PREFIXES):
        return 0
    if name in ROOT_MODULES:
        return 1
    if name == "krbert" or name.startswith("krbert."):
        return 2
    return 3


def find_cycle(graph):
    """A list of modules that import each other in a ring, or None."""
    state = {}

    def visit(name, path):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep, path + [dep])
                if cycle:
                    return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name, [name])
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_ring_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_layers_of_known_modules():
    assert [layer(n) for n in ("krbert.cli", "krbert.files.atomic", "krbert.tokenizers.fast",
                               "tokenization", "krbert.pretraining.records", "run_pretraining")
            ] == [0, 0, 0, 1, 2, 3]


def test_the_root_holds_the_scripts_and_the_three_original_modules():
    roots = {name for name in project_modules() if "." not in name and name != "krbert"}
    scripts = {name for name in roots if is_script(name)}
    assert {"run_pretraining", "run_classifier", "create_pretraining_data", "extract_features",
            "build_vocab", "predict", "convert_checkpoint", "shard_corpus"} <= scripts
    assert roots - scripts == ROOT_MODULES


def test_project_modules_import_without_a_cycle():
    assert find_cycle(import_graph()) is None


def test_imports_go_downward_only():
    """Base modules import only base modules; modeling/tokenization/optimization import only
    base modules; the rest of krbert imports no script."""
    for name, deps in import_graph().items():
        if layer(name) == 3:
            continue
        above = {dep for dep in deps if layer(dep) > layer(name)
                 or (layer(name) == 1 and layer(dep) == 1)}
        assert not above, (name, above)


def test_no_module_imports_a_script():
    graph = import_graph()
    scripts = {name for name in graph if is_script(name)}
    assert {"run_pretraining", "run_classifier", "create_pretraining_data"} <= scripts
    for name, deps in graph.items():
        assert not deps & scripts, (name, deps & scripts)


def module_globals(name):
    """Names the module assigns at its top level."""
    return {target.id for node in ast.parse(read_module(name)).body
            if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}


def test_libraries_hold_no_global_flags():
    for name in project_modules():
        if not is_script(name):
            assert "FLAGS" not in module_globals(name), name

"""The code layout the README describes: scripts on top, libraries below, no import cycle.

A script is a top-level module that runs as ``python NAME.py`` (it ends in
``if __name__ == "__main__"``); ``NAME_lib.py`` holds machinery only that script uses.
"""

import ast
import glob
import io
import os

from conftest import ROOT


def read_module(name):
    with io.open(os.path.join(ROOT, name + ".py"), encoding="utf-8") as f:
        return f.read()


def project_modules():
    names = {os.path.splitext(os.path.basename(path))[0]
             for path in glob.glob(os.path.join(ROOT, "*.py"))}
    return names - {"setup"}


def imports_of(name, modules):
    """The project modules that module ``name`` imports, anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(read_module(name))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & modules - {name}


def import_graph():
    modules = project_modules()
    return {name: imports_of(name, modules) for name in modules}


def is_script(name):
    return '__name__ == "__main__"' in read_module(name)


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


def test_project_modules_import_without_a_cycle():
    assert find_cycle(import_graph()) is None


def test_no_module_imports_a_script():
    graph = import_graph()
    scripts = {name for name in graph if is_script(name)}
    assert {"run_pretraining", "run_classifier", "create_pretraining_data"} <= scripts
    for name, deps in graph.items():
        assert not deps & scripts, (name, deps & scripts)


def test_every_lib_module_belongs_to_its_script_alone():
    graph = import_graph()
    libs = sorted(name for name in graph if name.endswith("_lib"))
    assert libs, "no NAME_lib.py modules found"
    for lib in libs:
        script = lib[:-len("_lib")]
        assert script in graph and is_script(script), (lib, "has no script %s.py" % script)
        users = {name for name, deps in graph.items() if lib in deps}
        assert users == {script}, (lib, users)


def module_globals(name):
    """Names the module assigns at its top level."""
    return {target.id for node in ast.parse(read_module(name)).body
            if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}


def test_libraries_hold_no_global_flags():
    for name in project_modules():
        if not is_script(name):
            assert "FLAGS" not in module_globals(name), name

"""The code layout the README describes: the original release's scripts and modeling,
tokenization and optimization at the root, one package (krbert) for the rest, and imports
that only go downward.

Layers, bottom up:
- base: krbert.cli, krbert.tf_compat, krbert.bert_config, krbert.files.*, krbert.tokenizers.*;
- the root modules modeling, tokenization and optimization;
- the rest of krbert (pretraining, corpus, vocab, classifier, checkpoints, estimator);
- the scripts (a root module that runs as ``python NAME.py``).

The names of modules and files in comments, docstrings and docs name what is there, and the
README's layout table names every module of every package of krbert.
"""

import ast
import glob
import io
import os
import re

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


# ---------------------------------------------------------------------------------------
# Names of modules and files in the code's comments and docstrings and in the docs


ORIGINAL_ONLY_FILES = {"modeling_test.py", "optimization_test.py", "tokenization_test.py"}
"""Files of the original BERT release that this tree does not hold (scripts/original_tests.sh
fetches them)."""

PLACEHOLDERS = {"NAME.py"}

OUTSIDE_FILES = {"evaluate-v1.0.py"}
"""Files named in the docs that are kept outside this tree: KorQuAD 1.0's official scorer,
which tests/test_span_metrics.py runs when KORQUAD_EVALUATE points to it."""

SOURCE_EXTENSIONS = {"", ".py", ".c", ".h", ".md"}
"""What a krbert/ path may end in to be checked: a folder, a module, the C tokenizer's
source; other names under krbert/ (``krbert/pretrain_tpu.status`` on a TPU VM, where the
code is unpacked into a folder of that name) are files of a run."""

_SKIPPED_FOLDERS = {"data", "build", "node_modules", "__pycache__"}


def prose_files():
    """Every Python, C and Markdown file of the project (data, environments and builds
    aside), relative to the root."""
    found = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = sorted(name for name in subfolders
                               if not name.startswith(".") and name not in _SKIPPED_FOLDERS
                               and not name.endswith(".egg-info"))
        found += [os.path.relpath(os.path.join(folder, name), ROOT) for name in sorted(names)
                  if name.endswith((".py", ".md", ".c", ".h"))]
    return found


def built_modules():
    """Dotted names of the C extensions setup.py builds."""
    with io.open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        return set(re.findall(r'Extension\(\s*"([\w.]+)"', f.read()))


def top_level_names(path):
    """Names a module file defines at its top level: functions, classes, assignments and
    imports."""
    with io.open(path, encoding="utf-8") as f:
        body = ast.parse(f.read()).body
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def missing_dotted_module(name, built=frozenset()):
    """The part of a dotted name ``krbert.PACKAGE.MODULE.NAME`` that names nothing, or None:
    every part up to the first module must be a package or a module, and the part after the
    module a name the module defines (what follows that is not checked)."""
    path = ROOT
    parts = name.split(".")
    for i, part in enumerate(parts):
        path = os.path.join(path, part)
        if ".".join(parts[:i + 1]) in built:
            return None
        if os.path.isfile(path + ".py"):
            if i + 1 < len(parts) and parts[i + 1] not in top_level_names(path + ".py"):
                return ".".join(parts[:i + 2])
            return None
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            return ".".join(parts[:i + 1])
    return None


def missing_file_names(text, files, tests_defined, built=frozenset(), markdown=False):
    """The module and file names in ``text`` that name nothing in the tree.

    Checked: paths under krbert/ (``krbert/files/atomic.py``, ``krbert/estimator/``),
    dotted names (``krbert.files.atomic``, ``krbert.files.atomic.commit``), file names
    ending in .py (the base name must be a file of the tree), and in Markdown the test
    modules or tests (``test_data_safety``).
    """
    basenames = {os.path.basename(path) for path in files}
    missing = []
    for match in re.finditer(r"(?<![\w./-])(krbert/[\w./-]*[\w/])", text):
        if os.path.splitext(match.group(1))[1] not in SOURCE_EXTENSIONS:
            continue  # not a module or a folder: a file a run writes (krbert/x.status)
        if not os.path.exists(os.path.join(ROOT, match.group(1))):
            missing.append(match.group(1))
    for match in re.finditer(r"(?<![\w./-])krbert(?:\.\w+)+", text):
        if missing_dotted_module(match.group(0), built):
            missing.append(match.group(0))
    for match in re.finditer(r"(?<![\w.-])([\w/.-]*?)(\w+\.py)\b", text):
        name = match.group(2)
        if match.group(1).startswith("krbert/"):
            continue  # a path, checked above
        whole = os.path.basename(match.group(0))
        if name not in basenames and not {name, whole} & (ORIGINAL_ONLY_FILES | PLACEHOLDERS
                                                          | OUTSIDE_FILES):
            missing.append(match.group(0))
    if markdown:
        for match in re.finditer(r"\btest_\w+\b(?!\.\w)", text):  # not test_results.tsv
            if match.group(0) not in tests_defined:
                missing.append(match.group(0))
    return missing


def test_missing_file_names_finds_a_module_that_is_gone():
    files = ["krbert/files/atomic.py", "tokenization.py", "tests/test_layout.py"]
    text = ("See krbert/files/atomic.py, krbert/files/gone.py, krbert/estimator/, "
            "krbert.files.atomic.commit, krbert.files.atomic.gone, krbert.files.gone, "
            "krbert.gone, tokenization.py, fast_tokenization.py and [test_layout, test_gone].")
    assert missing_file_names(text, files, {"test_layout"}, markdown=True) == [
        "krbert/files/gone.py", "krbert.files.atomic.gone", "krbert.files.gone", "krbert.gone",
        "fast_tokenization.py", "test_gone"]


def test_docstrings_and_docs_name_only_modules_and_files_that_exist():
    files = prose_files()
    tests_defined = {os.path.splitext(os.path.basename(path))[0] for path in files
                     if path.startswith("tests" + os.sep)}
    for path in files:
        if path.startswith("tests" + os.sep) and path.endswith(".py"):
            with io.open(os.path.join(ROOT, path), encoding="utf-8") as f:
                tests_defined.update(re.findall(r"^def (test_\w+)", f.read(), re.M))
    built = built_modules()
    assert "krbert.tokenizers._fast_tokenizer" in built
    stale = []
    for path in files:
        if os.path.join(ROOT, path) == os.path.abspath(__file__):
            continue  # this file's examples name modules that are gone
        with io.open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        stale += ["%s: %s" % (path, name) for name in missing_file_names(
            text, files, tests_defined, built, markdown=path.endswith(".md"))]
    assert stale == []


def layout_rows():
    """{folder: the text of its row} of the README's layout table, for krbert/'s packages."""
    with io.open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return dict(re.findall(r"^\| `(krbert/\w+/)` \|(.*)$", f.read(), re.M))


def test_the_readme_layout_names_every_module_of_every_package():
    rows = layout_rows()
    packages = sorted(os.path.relpath(os.path.dirname(path), ROOT) + "/" for path in
                      glob.glob(os.path.join(ROOT, "krbert", "*", "__init__.py")))
    assert sorted(rows) == packages
    for package in packages:
        modules = {os.path.splitext(os.path.basename(path))[0] for path in
                   glob.glob(os.path.join(ROOT, package, "*.py"))} - {"__init__"}
        named = set(re.findall(r"`(\w+)`", rows[package]))
        assert modules - named == set(), package
        assert named - modules == set(), package

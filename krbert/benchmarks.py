"""The benchmark list: every task scripts/evaluate.sh can fine-tune a checkpoint on.

    Benchmark(name, script, data_files, flags, metrics, headline, scale=100.0)

- ``name``: the task as users name it (KORNLI, KORSTS, ...), what TASKS= chooses;
- ``script``: the root script that fine-tunes it (run_classifier.py, ...);
- ``data_files``: paths relative to DATA_DIR that must all exist for the task to run;
- ``flags``: "--flag=value" strings; ``{data_dir}`` and ``{output_dir}`` are filled in;
- ``metrics``: the keys of the result files to show (``key = value`` lines of
  eval_results.txt and <split>_eval_results.txt, whose ``split = `` line says dev or test);
- ``headline``: the metric the benchmark reports (shown first);
- ``scale``: what the script's figures are multiplied by in the table: 100 for fractions
  (accuracy, correlations), 1 for scripts that write percentages already (run_squad.py's
  exact match and F1, run_ner.py's F1s); a loss is always shown as it is.

The entries come from the task modules: krbert.classifier.tasks.BENCHMARKS and, when
present, krbert.span.tasks.BENCHMARKS and krbert.tagging.tasks.BENCHMARKS.
"""

import collections
import importlib
import math
import os

Benchmark = collections.namedtuple("Benchmark",
                                   "name script data_files flags metrics headline scale",
                                   defaults=(100.0,))

MODULES = ("krbert.classifier.tasks", "krbert.span.tasks", "krbert.tagging.tasks")
RESULT_FILES = ("eval_results.txt", "test_eval_results.txt", "test_results.txt")


def all_benchmarks():
    """Every Benchmark of the task modules present, in MODULES' order."""
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            if getattr(e, "name", None) and name.startswith(e.name):
                continue  # the module (or its package) is not in this tree
            raise
        for entry in getattr(module, "BENCHMARKS", ()):
            found.append(entry if isinstance(entry, Benchmark) else Benchmark(**entry))
    return found


def select(benchmarks, names):
    """The benchmarks named in ``names`` (case-insensitive; all when empty), in their order;
    ValueError naming an unknown one."""
    if not names:
        return list(benchmarks)
    known = {b.name.upper(): b for b in benchmarks}
    unknown = [n for n in names if n.upper() not in known]
    if unknown:
        raise ValueError("TASKS=%s: unknown %s; choose from %s" % (
            " ".join(names), " ".join(unknown), " ".join(sorted(known))))
    return [known[n.upper()] for n in names]


def missing_files(benchmark, data_dir):
    """The data files of ``benchmark`` not present in ``data_dir``."""
    return [f for f in benchmark.data_files if not os.path.exists(os.path.join(data_dir, f))]


def command(benchmark, python, data_dir, output_dir, extra_flags=()):
    """The command line that fine-tunes ``benchmark`` into ``output_dir``."""
    flags = [f.format(data_dir=data_dir, output_dir=output_dir) for f in benchmark.flags]
    return [python, benchmark.script] + flags + list(extra_flags)


def read_results(output_dir):
    """{split: {key: value}} of the result files in a run folder (values as floats when
    they are numbers)."""
    results = {}
    for name in RESULT_FILES:
        path = os.path.join(output_dir, name)
        if not os.path.isfile(path):
            continue
        values = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if " = " in line:
                    key, value = line.strip().split(" = ", 1)
                    try:
                        values[key] = float(value)
                    except ValueError:
                        values[key] = value
        split = values.get("split", "test" if name.startswith("test") else "dev")
        results.setdefault(split, values)
    return results


def mean_sd(values):
    """(mean, sample standard deviation; 0 for one value) of a list of numbers."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_cell(values, scale=100.0):
    if not values:
        return "-"
    mean, sd = mean_sd([v * scale for v in values])
    return "%.2f ± %.2f (%d)" % (mean, sd, len(values))


def table(rows):
    """Text table lines: task, metric, dev, test; ``rows`` are (benchmark, [results of each
    seed's run]) with results as read_results'. Metrics are times the benchmark's
    scale (correlations and accuracies as percentages; a loss as is), mean ± sd (seeds)."""
    lines = [("task", "metric", "dev", "test")]
    for benchmark, runs in rows:
        metrics = [benchmark.headline] + [m for m in benchmark.metrics
                                         if m != benchmark.headline]
        for metric in metrics:
            scale = 1.0 if "loss" in metric else benchmark.scale
            cells = []
            for split in ("dev", "test"):
                values = [run[split][metric] for run in runs
                          if isinstance(run.get(split, {}).get(metric), float)]
                cells.append(format_cell(values, scale))
            label = metric + (" *" if metric == benchmark.headline else "")
            lines.append((benchmark.name, label, cells[0], cells[1]))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in lines]

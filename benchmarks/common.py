"""Table output shared by the benchmarks: every benchmark prints rows of one markdown table.

Columns: benchmark | setting | value | unit | goal. ``scripts/benchmark.sh`` prints the
header once and runs each benchmark module.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

HEADER = ("| benchmark | setting | value | unit | goal |\n"
          "|---|---|---|---|---|")


def data_dir():
    """DATA_DIR (default data/), or exit with a one-line message when it is missing."""
    path = os.path.abspath(os.environ.get("DATA_DIR", os.path.join(ROOT, "data")))
    if not os.path.isdir(path):
        sys.exit("error: DATA_DIR=%s not found; set DATA_DIR to the data folder "
                 "(scripts/download_data.sh fills data/)" % path)
    return path


def copy_head(src, dst, rows):
    """Writes the header line and the first ``rows`` data lines of ``src`` to ``dst``."""
    with open(src, encoding="utf-8") as reader, open(dst, "w", encoding="utf-8") as writer:
        for number, line in enumerate(reader):
            if number > rows:
                break
            writer.write(line)


def row(benchmark, setting, value, unit, goal=""):
    """Prints one table row; floats get 1-3 significant decimals."""
    if isinstance(value, float):
        value = "%.3g" % value if abs(value) < 100 else "%.0f" % value
    print("| %s | %s | %s | %s | %s |" % (benchmark, setting, value, unit, goal))
    sys.stdout.flush()

"""One pathological paragraph: the kiwi splitter on a single line of N MB without
sentence-final punctuation (comments joined by spaces, as a scraped page on one line).

For each size of LONG_LINE_MB (default "1,2,4"), a child process cleans and splits one
such line with build_corpus.py's defaults (krbert.corpus.clean, split.SentenceSplitter
"kiwi": rules, then pieces of at most split.MODEL_MAX_CHARS characters for the model) and
reports the CPU-seconds of the split and the peak resident memory. Goal: both linear in
the size (seconds per MB and MB of memory above start-up about the same at every size).
Needs kiwipiepy (Python 3.11 venv).

    python benchmarks/bench_long_line.py
    LONG_LINE_MB=0.1,0.2 python benchmarks/bench_long_line.py    # a quick check
"""

import json
import os
import subprocess
import sys

import common

SIZES_MB = [float(size) for size in os.environ.get("LONG_LINE_MB", "1,2,4").split(",")]
COMMENT = "오늘 영화 정말 재밌었어요 배우들 연기도 좋고 음악도 좋았다 다음에 또 보고 싶네 ㅋㅋ"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from krbert.corpus import clean, split
megabytes, comment = float(sys.argv[1]), sys.argv[2]
splitter = split.SentenceSplitter("kiwi").load()
cleaner = clean.Cleaner(False, False, 0, 2, 0.3)
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
parts, size, number = [], 0, 0
while size < megabytes * 1e6:
    text = "%d번 %s" % (number, comment)
    parts.append(text)
    size += len(text.encode("utf-8")) + 1
    number += 1
line = " ".join(parts)
del parts
started = time.process_time()
sentences = splitter.split(cleaner.clean(line))
seconds = time.process_time() - started
print(json.dumps({"bytes": len(line.encode("utf-8")), "seconds": seconds,
                  "sentences": len(sentences), "start_rss_kb": start_rss,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(megabytes):
    """The child's figures for one line of ``megabytes`` MB."""
    out = subprocess.check_output([sys.executable, "-c", CHILD, str(megabytes), COMMENT,
                                   common.ROOT], cwd=common.ROOT)
    return json.loads(out.decode("utf-8").strip().splitlines()[-1])


def main():
    for megabytes in SIZES_MB:
        figures = measure(megabytes)
        size_mb = figures["bytes"] / 1e6
        grown_mb = (figures["peak_rss_kb"] - figures["start_rss_kb"]) / 1024.0
        common.row("long line", "%.2f MB, %d sentences" % (size_mb, figures["sentences"]),
                   "%.1f" % (figures["seconds"] / size_mb), "CPU-s per MB",
                   "about the same at every size")
        common.row("long line", "%.2f MB" % size_mb, "%.1f" % (grown_mb / size_mb),
                   "MB of memory per MB of line (above start-up)",
                   "about the same at every size")


if __name__ == "__main__":
    main()

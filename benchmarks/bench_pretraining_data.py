"""Speed and memory of create_pretraining_data.py on the NSMC review corpus.

Input: the first 100,000 lines of DATA_DIR/corpus/nsmc_reviews.txt (cut at the last
document boundary before them), the KR-BERT-MEDIUM vocabulary, and
--max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5 --do_lower_case=False.
BERT's original script needs about 73 s and 641 MB here (one process).

Rows: wall-clock seconds of the whole script (start-up included) with 1 worker on the
file as one shard, and with 2 workers on the same text cut into 2 shards by
shard_corpus.py (best of two runs), and for that run its critical-path CPU time (the
main process's CPU before the workers start plus the slowest shard's; the wall-clock time
on otherwise idle cores, since the machine may be shared); peak RSS of a worker (ru_maxrss,
measured by each worker and printed on the script's last line) for 2 shards and for the
doubled corpus (the first 200,000 lines in 4 shards of the same size); and the peak RSS of the whole
process tree (os.wait4's ru_maxrss, the main process: TensorFlow and the tokenizer).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import common

SCRIPT = os.path.join(common.ROOT, "create_pretraining_data.py")
SHARDER = os.path.join(common.ROOT, "shard_corpus.py")
FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
         "--do_lower_case=False"]
ORIGINAL_SECONDS = 73.0


def head_documents(source, destination, lines):
    """Copies the whole documents among the first `lines` lines of `source`."""
    with open(source, "rb") as reader:
        head = [line for _, line in zip(range(lines), reader)]
    last_blank = max(i for i, line in enumerate(head) if not line.strip())
    with open(destination, "wb") as writer:
        writer.writelines(head[:last_blank])


def cut(text, prefix, shards):
    """shard_corpus.py --num_shards; returns the glob of the shards."""
    subprocess.check_call([sys.executable, SHARDER, "--input_file=%s" % text,
                           "--output_prefix=%s" % prefix, "--num_shards=%d" % shards],
                          stdout=subprocess.DEVNULL)
    return prefix + "-*.txt"


def run_measured(inputs, output_dir, vocab, workers):
    """Runs the script; returns (wall s, worker peak RSS MB, tree peak RSS MB, path CPU s).

    os.wait4 gives the script's ru_maxrss together with that of the workers it reaped. The
    critical-path CPU (the main process's CPU until the workers start, plus the slowest
    shard's) is what the wall-clock time would be on otherwise idle cores.
    """
    shutil.rmtree(output_dir, ignore_errors=True)
    command = [sys.executable, SCRIPT, "--input_file=%s" % inputs,
               "--output_file=%s/" % output_dir, "--vocab_file=%s" % vocab,
               "--num_workers=%d" % workers] + FLAGS
    log = os.path.join(os.path.dirname(output_dir), "log.txt")
    started = time.time()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.time() - started
    with open(log, "rb") as reader:
        text = reader.read().decode("utf-8", "replace")
    if status != 0:
        sys.exit("error: create_pretraining_data.py failed:\n%s" % text[-2000:])
    match = re.search(r"peak worker RSS (\d+) MB, CPU: start-up ([\d.]+) s, slowest shard "
                      r"([\d.]+) s", text)
    return (seconds, float(match.group(1)), usage.ru_maxrss / 1024.0,
            float(match.group(2)) + float(match.group(3)))


def main():
    data = common.data_dir()
    corpus = os.path.join(data, "corpus", "nsmc_reviews.txt")
    vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
    work = tempfile.mkdtemp(prefix="bench_pretraining_data.")
    try:
        text = os.path.join(work, "reviews_100k.txt")
        head_documents(corpus, text, 100000)
        doubled = os.path.join(work, "reviews_200k.txt")
        head_documents(corpus, doubled, 200000)
        two = cut(text, os.path.join(work, "two", "part"), 2)
        four = cut(doubled, os.path.join(work, "four", "part"), 4)
        out = os.path.join(work, "out")

        seconds, one_rss, _, _ = run_measured(text, out, vocab, 1)
        common.row("create_pretraining_data", "1 worker, 1 shard (100k lines)", seconds, "s",
                   "original: %.0f s" % ORIGINAL_SECONDS)
        runs = [run_measured(two, out, vocab, 2) for _ in range(2)]
        seconds, rss, tree, cpu = min(runs)
        common.row("create_pretraining_data", "2 workers, 2 shards (100k lines)", seconds, "s",
                   "<= %.1f s (8x faster)" % (ORIGINAL_SECONDS / 8))
        common.row("create_pretraining_data", "speed-up vs original, 2 workers",
                   ORIGINAL_SECONDS / seconds, "x", ">= 8")
        common.row("create_pretraining_data", "critical-path CPU, 2 workers (wall if idle)",
                   cpu, "s", "<= %.1f s" % (ORIGINAL_SECONDS / 8))
        common.row("create_pretraining_data", "peak RSS per worker, 1 shard of 100k lines",
                   one_rss, "MB", "original: 641 MB")
        common.row("create_pretraining_data", "peak RSS per worker, 2 shards", rss, "MB",
                   "<= 160")
        seconds, rss_doubled, tree_doubled, _ = run_measured(four, out, vocab, 2)
        common.row("create_pretraining_data", "peak RSS per worker, doubled corpus (4 shards)",
                   rss_doubled, "MB", "flat (= 2 shards)")
        common.row("create_pretraining_data", "wall, doubled corpus (4 shards, 2 workers)",
                   seconds, "s", "")
        common.row("create_pretraining_data", "peak RSS of the process tree (main: TF, tokenizer)",
                   max(tree, tree_doubled), "MB", "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

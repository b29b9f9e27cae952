"""Corpus building speed: build_corpus.py on a slice of the shared corpus, and what the
sentence splitter costs.

Input: the first SAMPLE_MB (default 1) of DATA_DIR/corpus/news_comments.txt (a comment a
line) and of nsmc_reviews.txt (a movie's reviews a document, a review a line), cut at a
line end (the last document of the reviews may be cut short).

1. build_corpus.py with its defaults (kiwi splitter where kiwipiepy is installed, else
   punct; decontaminated against NSMC test and dev) in a child process with
   --num_workers=1 and 2: input MB per second of wall time and per CPU-second of the
   run's processes (the speed of one dedicated core), the CPU-seconds of start-up (the same
   run on a one-line input: loading kiwipiepy and the exclusion set) and the speed after
   it (per CPU-second of all the run's processes: the main process's reading, deduplication
   and writing included), peak resident memory of the largest process, and the time
   12.37 GB (KR-BERT-MEDIUM's corpus) would take on 2 and on 16 cores at that speed, taken
   as linear in cores.
2. In this process, on the first SPLIT_MB of each file, the per-CPU-second speed of
   cleaning + splitting alone with each splitter: kiwi as build_corpus.py runs it (rules
   first, the model only where a sentence may end without punctuation), kiwipiepy on every
   paragraph, punctuation rules, none; and the share of the bytes the model split.

Goal: at least 0.23 MB/s per worker with splitting (12.37 GB in 1 h on 16 cores).

    DATA_DIR=../shared/data python benchmarks/bench_corpus.py
"""

import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import common
from krbert.corpus import build, split  # noqa: E402

SAMPLE_MB = float(os.environ.get("CORPUS_SAMPLE_MB", "1"))
SPLIT_MB = SAMPLE_MB / 4
"""Part 2 reads the first SPLIT_MB of each file."""
CARD_BYTES = 12.37e9
GOAL_MB_S = 0.23


def cut_head(src, dst, megabytes):
    """Copies the first lines of ``src``, ``megabytes`` of them (to the end of a line);
    returns the bytes written."""
    limit, written = int(megabytes * 1e6), 0
    with io.open(src, "rb") as reader, io.open(dst, "wb") as writer:
        for line in reader:
            if written >= limit:
                break
            writer.write(line)
            written += len(line)
    return written


MEASURE = ("import resource, subprocess, sys; subprocess.check_call(sys.argv[1:], "
           "stdout=subprocess.DEVNULL); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(u.ru_utime + u.ru_stime, u.ru_maxrss)")
"""Runs a command; prints the CPU seconds and the peak RSS (KB) of it and its workers."""


def run_build(inputs, output_dir, excludes, workers, splitter):
    """(wall s, CPU s of the run's processes, peak RSS MB of the largest) of one run."""
    command = [sys.executable, os.path.join(common.ROOT, "build_corpus.py"), "--noprogress",
               "--input_file=%s" % ",".join(inputs), "--output_dir=%s" % output_dir,
               "--num_workers=%d" % workers, "--splitter=%s" % splitter]
    command += ["--exclude_file=%s" % e for e in excludes]
    start = time.time()
    out = subprocess.check_output([sys.executable, "-c", MEASURE] + command, cwd=common.ROOT)
    wall = time.time() - start
    cpu, peak_kb = out.decode().split()
    return wall, float(cpu), float(peak_kb) / 1024.0


def cpu_now():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paragraphs_of(paths, megabytes):
    """The first non-blank lines of each file, ``megabytes`` of each."""
    out = []
    for path in paths:
        size = 0
        with io.open(path, encoding="utf-8") as reader:
            for line in reader:
                if line.strip():
                    out.append(line.strip())
                    size += len(out[-1].encode("utf-8"))
                if size >= megabytes * 1e6:
                    break
    return out


def splitter_speeds(paths):
    """Rows of cleaning + splitting speed per splitter, in this process."""
    settings = {"mask_urls": False, "mask_emails": False, "max_repeat": 0, "min_chars": 2,
                "min_hangul": 0.3, "splitter": "none", "near_dedup": False}
    texts = paragraphs_of(paths, SPLIT_MB)
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    variants = ["none", "punct"]
    if split.kiwi_missing_reason() is None:
        variants += ["kiwi", "model on every paragraph"]
    for variant in variants:
        settings["splitter"] = "kiwi" if variant.startswith("model") else variant
        processor = build.DocumentProcessor(settings, set())
        processor.splitter.load()
        if variant.startswith("model"):
            model = processor.splitter
            processor.splitter.split = model.split_with_model
        start = cpu_now()
        results = processor.process_batch([[text] for text in texts])
        seconds = cpu_now() - start
        split_bytes = sum(counts.get("bytes_split_by_model", 0) for _, counts in results
                          if counts)
        share = split_bytes / (megabytes * 1e6)
        common.row("corpus", "clean + split %.2f MB, splitter=%s" % (megabytes, variant),
                   megabytes / seconds,
                   "MB/CPU-s", ">= %.2f" % GOAL_MB_S if variant == "kiwi" else "")
        if variant == "kiwi":
            common.row("corpus", "share of the text split by the model (splitter=kiwi)",
                       100 * share, "%", "")


def main():
    data_dir = common.data_dir()
    work = tempfile.mkdtemp(prefix="bench_corpus.")
    try:
        inputs = []
        total = 0
        for name in ("news_comments.txt", "nsmc_reviews.txt"):
            path = os.path.join(work, name)
            total += cut_head(os.path.join(data_dir, "corpus", name), path, SAMPLE_MB)
            inputs.append(path)
        megabytes = total / 1e6
        excludes = ["%s:document" % os.path.join(data_dir, "nsmc", name)
                    for name in ("test.tsv", "dev.tsv")]
        splitter = "kiwi" if split.kiwi_missing_reason() is None else "punct"
        where = "news comments + NSMC reviews, %.2f MB, splitter=%s" % (megabytes, splitter)
        tiny = os.path.join(work, "one_line.txt")
        with io.open(tiny, "w", encoding="utf-8") as writer:
            writer.write("한 줄짜리 입력이네 모형도 불러오겠지\n")
        for workers in (1, 2):
            _, startup, _ = run_build([tiny], os.path.join(work, "tiny%d" % workers),
                                      excludes, workers, splitter)
            wall, cpu, peak = run_build(inputs, os.path.join(work, "out%d" % workers),
                                        excludes, workers, splitter)
            setting = "%s, %d worker%s" % (where, workers, "s" if workers > 1 else "")
            steady = megabytes / (cpu - startup)
            common.row("corpus", setting + ", wall", megabytes / wall / workers,
                       "MB/s per worker", "")
            common.row("corpus", setting + ", per CPU-second", megabytes / cpu, "MB/CPU-s", "")
            common.row("corpus", setting + ", start-up (model, exclusions; one-line input)",
                       startup, "CPU-s", "")
            common.row("corpus", setting + ", per CPU-second after start-up", steady,
                       "MB/CPU-s", ">= %.2f" % GOAL_MB_S)
            common.row("corpus", setting + ", peak memory (largest process)", peak, "MB", "")
            for cores in (2, 16):
                hours = CARD_BYTES / 1e6 / steady / cores / 3600
                common.row("corpus", "12.37 GB on %d cores, projected from %d worker%s after "
                           "start-up" % (cores, workers, "s" if workers > 1 else ""), hours, "h",
                           "<= 1" if cores == 16 else "")
        splitter_speeds(inputs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

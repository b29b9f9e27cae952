"""Vocabulary building: time on the shared corpus and quality against the published vocabulary.

Builds the default 20,000-token vocabulary from DATA_DIR/corpus/*.txt with build_vocab.py's
defaults (the command of vocab/README.md, in a child process, timed as a whole), then
tokenizes NSMC's 50,000 test reviews (column `document`) with tokenization.FullTokenizer
(do_lower_case=False) and each of: the vocabulary just built, the shipped
vocab/vocab_20000.txt and the published KR-BERT-MEDIUM vocabulary. Goals: build in at most
5 minutes on 2 cores; [UNK] rate and tokens per review no higher than the published
vocabulary's; the fresh build byte-identical to the shipped file.

    DATA_DIR=../shared/data python benchmarks/bench_build_vocab.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import common
from krbert.tf_compat import TF_VERSION  # noqa: E402
from krbert.vocab import builder  # noqa: E402

SHIPPED = os.path.join(common.ROOT, "vocab", "vocab_20000.txt")
PUBLISHED = os.path.join("krbert", "vocab_krmedium_20000.txt")


def build(data_dir, output_file):
    """Runs build_vocab.py on the shared corpus; returns the wall time in seconds."""
    command = [sys.executable, os.path.join(common.ROOT, "build_vocab.py"),
               "--input_file=%s" % os.path.join(data_dir, "corpus", "*.txt"),
               "--output_file=%s" % output_file]
    start = time.time()
    subprocess.check_call(command, cwd=common.ROOT, stdout=subprocess.DEVNULL)
    return time.time() - start


def same_bytes(a, b):
    """Whether two files hold the same bytes."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def main():
    data_dir = common.data_dir()
    setting = "TF %s, shared corpus (60 MB)" % TF_VERSION
    work_dir = tempfile.mkdtemp(prefix="bench_build_vocab.")
    try:
        fresh = os.path.join(work_dir, "vocab_20000.txt")
        seconds = build(data_dir, fresh)
        common.row("build_vocab", setting + ", build time", seconds, "s", "<= 300")
        common.row("build_vocab", "fresh build == vocab/vocab_20000.txt",
                   "yes" if same_bytes(fresh, SHIPPED) else "NO", "", "yes")
        docs = builder.read_eval_texts(os.path.join(data_dir, "nsmc", "test.tsv"),
                                       "document")
        published = builder.evaluate(os.path.join(data_dir, PUBLISHED), docs,
                                     progress=False)
        ours = builder.evaluate(fresh, docs, progress=False)
        for name, ev, goal in (("published vocab_krmedium_20000", published, False),
                               ("ours (fresh build)", ours, True)):
            where = "NSMC test (%d reviews), %s" % (len(docs), name)
            common.row("build_vocab", where, ev["unk_rate"] * 100, "% [UNK]",
                       "<= %.4f" % (published["unk_rate"] * 100) if goal else "")
            common.row("build_vocab", where, ev["tokens_per_line"], "tokens/review",
                       "<= %.2f" % published["tokens_per_line"] if goal else "")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

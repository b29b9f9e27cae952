"""Tokenizer speed: the 50,000 reviews of NSMC's test split, one process, documents/s.

Three settings: BERT WordPiece with the KR-BERT-MEDIUM vocabulary (goal 100,000 docs/s,
10x the ~10,000/s of the original per-character code), KR-BERT's BidirectionalWordPiece with
the character vocabulary, and the same on sub-characters (goal 50,000 docs/s each), all with
do_lower_case=False. Before timing, every setting's output is checked against the plain
per-character reference path on all documents (the benchmark stops if one differs).

Each setting's first row names the implementation that ran: the C extension (built by
scripts/setup.sh, see krbert/tokenizers/fast.py), or pure Python when the extension is missing or
KRBERT_PURE_PYTHON=1 asks for it. Two timed rows follow, each the best of 3 wall-clock
passes over all documents. The first, the figure the goal is for, is "first pass": a new
tokenizer (empty word cache) is built before every pass and only the tokenizing is timed.
"repeat pass" runs the tokenizer whose word cache the check has filled (a second epoch, or
any corpus whose words have been seen); the C path keeps no word cache, so its two passes
do the same work. A last row times the reference path on 2,000 documents.

    DATA_DIR=../shared/data python benchmarks/bench_tokenizer.py
    BENCH_DOCS=5000 ...           only the first 5,000 documents (a quick look)
    KRBERT_PURE_PYTHON=1 ...      time the pure-Python path
"""

import os
import sys
import time

import common
import tokenization  # noqa: E402  (common puts the project root on sys.path)
from krbert.classifier import tasks  # noqa: E402

SETTINGS = [
    ("wordpiece, vocab_krmedium_20000", "vocab_krmedium_20000.txt", "wordpiece", False, 100000),
    ("bidirectional, vocab_char_16424", "vocab_char_16424.txt", "bidirectional", False, 50000),
    ("bidirectional + subchar, vocab_subchar_12367", "vocab_subchar_12367.txt",
     "bidirectional", True, 50000),
]
REFERENCE_DOCS = 2000


def read_documents(data_dir):
    """The reviews of NSMC's test split, read as run_classifier.py reads them."""
    split = tasks.get_processor("nsmc").read_split(
        os.path.join(data_dir, "nsmc"), "test")
    return [example.text for example in split.examples]


def best_of_3(make_tokenize, docs):
    """Documents/s of the best of three passes; make_tokenize() is called before each."""
    best = float("inf")
    for _ in range(3):
        tokenize = make_tokenize()
        start = time.perf_counter()
        for doc in docs:
            tokenize(doc)
        best = min(best, time.perf_counter() - start)
    return len(docs) / best


def check_against_reference(tokenizer, docs, name):
    """Exits with a message unless the fast path equals the reference path on every doc."""
    for i, doc in enumerate(docs):
        if tokenizer.tokenize(doc) != tokenizer.reference_tokenize(doc):
            sys.exit("error: %s: document %d is tokenized differently by the fast path (%r)"
                     % (name, i + 1, doc))


def main():
    data = common.data_dir()
    docs = read_documents(data)
    docs = docs[:int(os.environ.get("BENCH_DOCS", len(docs)))]
    for name, vocab_name, mode, subchar, goal in SETTINGS:
        vocab = os.path.join(data, "krbert", vocab_name)

        def new_tokenizer():
            return tokenization.FullTokenizer(vocab, do_lower_case=False, tokenizer=mode,
                                              subchar=subchar)

        tokenizer = new_tokenizer()
        common.row("tokenizer", "%s, implementation" % name, tokenizer.implementation, "",
                   "(KRBERT_PURE_PYTHON=1 forces pure Python)")
        check_against_reference(tokenizer, docs, name)
        goal_text = ">= {:,} docs/s".format(goal)
        common.row("tokenizer", "%s, first pass (new tokenizer, empty cache)" % name,
                   best_of_3(lambda: new_tokenizer().tokenize, docs), "docs/s", goal_text)
        common.row("tokenizer", "%s, repeat pass (cache filled)" % name,
                   best_of_3(lambda: tokenizer.tokenize, docs), "docs/s", "(for comparison)")
    reference = tokenization.FullTokenizer(os.path.join(data, "krbert", SETTINGS[0][1]),
                                           do_lower_case=False)
    common.row("tokenizer", "per-character reference path, vocab_krmedium_20000",
               best_of_3(lambda: reference.reference_tokenize, docs[:REFERENCE_DOCS]),
               "docs/s", "(for comparison)")


if __name__ == "__main__":
    main()

"""Speed of run_squad.py: feature building (features/s) and fine-tuning (examples/s).

Features: the whole KorQuAD 1.0 dev set (DATA_DIR/korquad/KorQuAD_v1.0_dev.json, 5,774
questions) as training data, --max_seq_length=384 --doc_stride=128 --max_query_length=64,
the KR-BERT-MEDIUM vocabulary (DATA_DIR/krbert; the shipped one without it),
--do_lower_case=False; the examples read, shuffled as the original does, windowed and
written to a TFRecord; features/s over that whole step, with 1 and 2 worker processes.
With ORIGINAL_BERT_DIR set to a google-research/bert checkout (and ORIGINAL_BERT_PYTHON to
a Python with TensorFlow 1.15 when this one has 2.x), the original's single-process writer
runs on the same file and its records are checked equal to ours (each serialized
deterministically): the goal is 5 times its speed.

Fine-tuning: BERT-mini (vocab/bert_config_mini.json), seq 384, batch 8, 30 steps on the
first 10 articles, from random weights; examples/s from the estimator's last
global_step/sec line.
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

import common

SCRIPT = os.path.join(common.ROOT, "run_squad.py")
ORIGINAL_DRIVER = r'''
import random, sys, time
sys.path.insert(0, sys.argv[1])
import run_squad, tokenization
run_squad.FLAGS(["run_squad"])
tokenizer = tokenization.FullTokenizer(vocab_file=sys.argv[3], do_lower_case=False)
started = time.time()
examples = run_squad.read_squad_examples(sys.argv[2], is_training=True)
random.Random(12345).shuffle(examples)
writer = run_squad.FeatureWriter(sys.argv[4], is_training=True)
run_squad.convert_examples_to_features(examples, tokenizer, 384, 128, 64, True,
                                       writer.process_feature)
writer.close()
print("RESULT %d %.3f" % (writer.num_features, time.time() - started))
'''


def ours(dataset, vocab, path, workers):
    """(features, seconds) of our feature building, reading included."""
    import tokenization
    from krbert.span import features, reading
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    started = time.time()
    examples = reading.read_squad_examples(dataset, True).examples
    random.Random(12345).shuffle(examples)
    records = features.convert_examples_to_features(
        examples, tokenizer, features.SpanSettings(384, 128, 64), True, num_workers=workers,
        keep=False)
    count, _ = features.write_features(path, records)
    return count, time.time() - started


def original(dataset, vocab, path):
    """(features, seconds) of the original's writer, or None when it is not available."""
    checkout = os.environ.get("ORIGINAL_BERT_DIR")
    if not checkout:
        return None
    python = os.environ.get("ORIGINAL_BERT_PYTHON", sys.executable)
    done = subprocess.run([python, "-c", ORIGINAL_DRIVER, checkout, dataset, vocab, path],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True, check=True)
    _, count, seconds = done.stdout.strip().splitlines()[-1].split()
    return int(count), float(seconds)


def same_records(ours_path, theirs_path):
    from krbert.tf_compat import tf
    mine = list(tf.compat.v1.io.tf_record_iterator(ours_path))
    theirs = [tf.train.Example.FromString(r).SerializeToString(deterministic=True)
              for r in tf.compat.v1.io.tf_record_iterator(theirs_path)]
    return mine == theirs


def fine_tuning(dataset, vocab, work):
    """Training examples/s of BERT-mini at seq 384 (the last global_step/sec x batch)."""
    done = subprocess.run(
        [sys.executable, SCRIPT, "--do_train", "--do_lower_case=False",
         "--train_file=%s" % dataset, "--train_articles=:10", "--vocab_file=%s" % vocab,
         "--bert_config_file=%s" % os.path.join(common.ROOT, "vocab", "bert_config_mini.json"),
         "--max_seq_length=384", "--train_batch_size=8", "--num_train_epochs=0.6",
         "--iterations_per_loop=1", "--log_every_n_steps=10", "--save_checkpoints_steps=1000",
         "--output_dir=%s" % os.path.join(work, "finetune")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    rates = re.findall(r"global_step/sec: ([0-9.]+)", done.stdout)
    return float(rates[-1]) * 8 if done.returncode == 0 and rates else None


def main():
    data = common.data_dir()
    dataset = os.path.join(data, "korquad", "KorQuAD_v1.0_dev.json")
    vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
    if not os.path.isfile(vocab):
        vocab = os.path.join(common.ROOT, "vocab", "vocab_20000.txt")
    work = tempfile.mkdtemp(prefix="bench_squad_")
    try:
        theirs = original(dataset, vocab, os.path.join(work, "original.tf_record"))
        goal = ""
        if theirs is not None:
            common.row("run_squad features", "original, 1 process (KorQuAD dev)",
                       theirs[0] / theirs[1], "features/s")
            goal = ">= %.0f (5x the original)" % (5 * theirs[0] / theirs[1])
        for workers in (1, 2):
            path = os.path.join(work, "ours_%d.tf_record" % workers)
            count, seconds = ours(dataset, vocab, path, workers)
            common.row("run_squad features", "%d worker(s) (KorQuAD dev)" % workers,
                       count / seconds, "features/s", goal)
        if theirs is not None:
            common.row("run_squad features", "records equal to the original's",
                       str(same_records(path, os.path.join(work, "original.tf_record"))),
                       "", "True")
        rate = fine_tuning(dataset, vocab, work)
        common.row("run_squad fine-tuning", "BERT-mini, seq 384, batch 8",
                   rate if rate is not None else "failed", "examples/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Fine-tuning speed on the CPU: BERT-mini on NSMC training reviews, batches of 32.

Two rows per TensorFlow version: every batch padded to 128 positions (the original
script's way) and length-bucketed batches padded only to their longest review
(run_classifier.py's CPU default). Goal: at least 160 examples/s, 4x the ~40 examples/s
the original-style script trains here. Then KorNLI's sentence pairs (the XNLI dev set,
whose pairs are longer than reviews), length-bucketed, in examples/s and in tokens/s
against NSMC's bucketed row: goal at least 80% of NSMC's tokens per second. The model is
BERT-mini (4 layers, hidden 256, 4 heads, intermediate 1024, vocabulary 20,000) from
random initialisation; the time of the first BENCH_WARMUP steps (graph building, first
runs) is left out.

    DATA_DIR=../shared/data python benchmarks/bench_classifier.py
    BENCH_STEPS=60 ...   more measured steps (default 40)
"""

import json
import os
import shutil
import tempfile

import common  # noqa: F401  (puts the project root on sys.path)
import fine_tuning_speed  # noqa: E402
import modeling  # noqa: E402
import run_classifier  # noqa: E402
import tokenization  # noqa: E402
from krbert.classifier import features as classifier_features  # noqa: E402
from krbert.classifier import tasks  # noqa: E402
from krbert.tf_compat import TF_VERSION, tf  # noqa: E402

BATCH = 32
SEQ = 128
DOCS = 8000


def train_speed(record_path, bert_config, bucket, steps, warmup, work_dir, num_labels=2,
                name=""):
    """Training examples per second after ``warmup`` steps."""
    model_dir = os.path.join(work_dir, "model-%s%s" % (name, "bucketed" if bucket else "fixed"))
    model_fn = run_classifier.model_fn_builder(
        bert_config, num_labels=num_labels, init_checkpoint=None, learning_rate=1e-4,
        num_train_steps=steps + warmup, num_warmup_steps=0, use_tpu=False,
        log_every_n_steps=10 ** 6)
    input_fn = classifier_features.make_input_fn(record_path, SEQ, is_training=True,
                                                 bucket_by_length=bucket, drop_remainder=True)
    return fine_tuning_speed.examples_per_second(model_fn, input_fn, BATCH, steps, warmup,
                                                 model_dir)


def kornli_speed(data, work_dir, tokenizer, signature, bert_config, steps, warmup,
                 nsmc_tokens_per_second):
    """The KorNLI rows: pairs, length-bucketed, examples/s and tokens/s against NSMC."""
    processor = tasks.get_processor("kornli")
    folder = os.path.join(work_dir, "kornli")
    os.makedirs(folder)
    common.copy_head(os.path.join(data, "kornli", "xnli.dev.ko.tsv"),
                     os.path.join(folder, "xnli.dev.ko.tsv"), DOCS)
    split = processor.read_split(folder, "train")
    record_path, meta = classifier_features.build_feature_cache(
        processor, split, tokenizer, signature, SEQ, folder, sort_by_length=False)
    speed = train_speed(record_path, bert_config, True, steps, warmup, work_dir,
                        num_labels=len(processor.labels), name="kornli-")
    common.row("classifier train", "BERT-mini, KorNLI pairs (XNLI dev), seq %d, batch %d, "
               "TF %s, length-bucketed (mean %.1f tokens)" % (SEQ, BATCH, TF_VERSION,
                                                              meta["mean_length"]),
               speed, "examples/s")
    common.row("classifier train", "KorNLI tokens/s / NSMC tokens/s (bucketed), TF %s"
               % TF_VERSION, speed * meta["mean_length"] / nsmc_tokens_per_second, "x",
               ">= 0.8")


def main():
    data = common.data_dir()
    steps = int(os.environ.get("BENCH_STEPS", "40"))
    warmup = int(os.environ.get("BENCH_WARMUP", "5"))
    work_dir = tempfile.mkdtemp(prefix="bench_classifier_")
    try:
        common.copy_head(os.path.join(data, "nsmc", "train.tsv"),
                         os.path.join(work_dir, "train.tsv"), DOCS)
        config_path = os.path.join(work_dir, "bert_config_mini.json")
        with open(config_path, "w") as handle:
            json.dump(fine_tuning_speed.MINI, handle)
        bert_config = modeling.BertConfig.from_json_file(config_path)
        vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
        processor = tasks.get_processor("nsmc")
        split = processor.read_split(work_dir, "train")
        tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
        signature = run_classifier.tokenizer_signature(vocab, False, "wordpiece", False)
        record_path, meta = classifier_features.build_feature_cache(
            processor, split, tokenizer, signature, SEQ, work_dir, sort_by_length=False)

        setting = "BERT-mini, NSMC train, seq %d, batch %d, TF %s" % (SEQ, BATCH, TF_VERSION)
        fixed = train_speed(record_path, bert_config, False, steps, warmup, work_dir)
        common.row("classifier train", "%s, padded to %d" % (setting, SEQ), fixed,
                   "examples/s")
        bucketed = train_speed(record_path, bert_config, True, steps, warmup, work_dir)
        common.row("classifier train", "%s, length-bucketed (mean %.1f tokens)"
                   % (setting, meta["mean_length"]), bucketed, "examples/s",
                   ">= 160 (4x the original-style ~40)")
        common.row("classifier train", "bucketed / padded, TF %s" % TF_VERSION,
                   bucketed / fixed, "x")
        kornli_speed(data, work_dir, tokenizer, signature, bert_config, steps, warmup,
                     bucketed * meta["mean_length"])
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    main()

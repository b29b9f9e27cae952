"""Fine-tuning speed of run_ner.py on the CPU: BERT-mini on KLUE-NER sentences, seq 128.

One row per TensorFlow version: sentences per second of training (batches of 32, each
padded to its longest sentence, run_ner.py's CPU path), on the training part of the
carved KLUE-NER dev file (docs/ner.md). BERT-mini (4 layers, hidden 256) from random
initialisation; the first BENCH_WARMUP steps are left out.

    DATA_DIR=../shared/data python benchmarks/bench_ner.py
    BENCH_STEPS=60 ...   more measured steps (default 40)
"""

import json
import os
import shutil
import tempfile

import common  # noqa: F401  (puts the project root on sys.path)
import fine_tuning_speed  # noqa: E402
import modeling  # noqa: E402
import run_ner  # noqa: E402
import tokenization  # noqa: E402
from krbert.tagging import features, klue  # noqa: E402
from krbert.tf_compat import TF_VERSION, tf  # noqa: E402

BATCH = 32
SEQ = 128


def train_speed(record_path, bert_config, steps, warmup, work_dir):
    """Training sentences per second after ``warmup`` steps."""
    model_fn = run_ner.model_fn_builder(bert_config, None, 1e-4, steps + warmup, 0, False,
                                        log_every_n_steps=10 ** 6)
    input_fn = features.make_input_fn(record_path, SEQ, is_training=True, pad_to_max=False)
    return fine_tuning_speed.examples_per_second(model_fn, input_fn, BATCH, steps, warmup,
                                                 os.path.join(work_dir, "model"))


def main():
    data = common.data_dir()
    steps = int(os.environ.get("BENCH_STEPS", "40"))
    warmup = int(os.environ.get("BENCH_WARMUP", "5"))
    work_dir = tempfile.mkdtemp(prefix="bench_ner_")
    try:
        config_path = os.path.join(work_dir, "bert_config_mini.json")
        with open(config_path, "w") as handle:
            json.dump(fine_tuning_speed.MINI, handle)
        bert_config = modeling.BertConfig.from_json_file(config_path)
        vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
        sentences, _ = klue.read_splits(os.path.join(data, "klue"), ["train"])["train"]
        tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
        _, records, stats = features.build_features(tokenizer, sentences, SEQ)
        record_path = os.path.join(work_dir, "train.tf_record")
        features.write_records(record_path, records)
        speed = train_speed(record_path, bert_config, steps, warmup, work_dir)
        common.row("ner train", "BERT-mini, KLUE-NER carved train (%d sentences, mean %.1f "
                   "tokens), seq %d, batch %d, TF %s" % (
                       len(sentences), stats["num_tokens"] / len(sentences), SEQ, BATCH,
                       TF_VERSION), speed, "examples/s")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    main()

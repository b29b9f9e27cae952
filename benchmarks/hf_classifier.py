"""The transformers peer of predict.py: BertForSequenceClassification on the CPU.

A model of the given BERT config's shape with random weights (the speed does not depend
on them), BertTokenizerFast on the same vocabulary (cased), torch.inference_mode() and
--threads intra-op threads. Two batch orders: ``input`` (batches of consecutive texts
padded to their longest, as most users run it) and ``sorted`` (texts sorted by length,
each batch padded to its longest, labels put back in the input order). Writes one
predicted label id per input line to --output_file and a JSON line of phase timings
to stdout. --bfloat16 runs the model under torch's bfloat16 autocast on the CPU (the
matrix products in bfloat16, the weights float32). Run by bench_inference.py in its own
process, so its wall time includes the imports and model construction. With
--profile_length it predicts nothing: it times a few batches of that length and prints the
model's time per batch and its shares per op class (torch profiler) as JSON, the peer of
bench_inference.op_class_shares:

    python benchmarks/hf_classifier.py --bert_config_file=vocab/bert_config_mini.json \
        --vocab_file=VOCAB --input_file=texts.txt --output_file=labels.txt --order=sorted
"""

import contextlib
import json
import time

STARTED = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_string("bert_config_file", None, "The BERT config json (shape only).")
flags.DEFINE_string("vocab_file", None, "The WordPiece vocabulary.")
flags.DEFINE_string("input_file", None, "Texts, one per line.")
flags.DEFINE_string("output_file", None, "Predicted label ids, one per line.")
flags.DEFINE_enum("order", "sorted", ["input", "sorted"], "Batch order (see above).")
flags.DEFINE_integer("max_seq_length", 128, "Longest input, in tokens.")
flags.DEFINE_integer("batch_size", 64, "Texts per batch.")
flags.DEFINE_integer("threads", 2, "torch.set_num_threads.")
flags.DEFINE_integer("num_labels", 2, "Classes of the classifier.")
flags.DEFINE_bool("bfloat16", False, "Run under torch.autocast('cpu', dtype=torch.bfloat16).")
flags.DEFINE_integer("profile_length", 0,
                     "Instead of predicting: profile batches [--batch_size, this length] "
                     "and print the model's time per op class as JSON.")

PROFILED_BATCHES = 3
OP_CLASSES = (("matrix products", ("addmm", "aten::mm", "bmm", "matmul", "linear")),
              ("fused attention", ("scaled_dot_product", "attention")),
              ("softmax", ("softmax",)), ("layer norm", ("layer_norm",)),
              ("casts and copies", ("aten::to", "_to_copy", "copy_", "contiguous", "clone")),
              ("embedding lookup", ("embedding", "index_select")),
              ("layout", ("view", "reshape", "transpose", "permute", "expand", "slice",
                          "select", "unsqueeze", "as_strided", "split", "chunk", "t")))
"""torch op names by class, matched by substring (aten::t exactly); the rest is element-wise."""


def build_model(config_file, num_labels):
    with open(config_file) as handle:
        config = json.load(handle)
    hf_config = transformers.BertConfig(
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"], hidden_act="gelu_new",
        max_position_embeddings=config["max_position_embeddings"],
        type_vocab_size=config["type_vocab_size"], num_labels=num_labels)
    return transformers.BertForSequenceClassification(hf_config).eval()


def padded(encodings, rows):
    """input_ids, attention_mask, token_type_ids (torch int64 [B, S]) of ``rows``."""
    length = max(len(encodings[i]) for i in rows)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for row, i in enumerate(rows):
        ids[row, :len(encodings[i])] = encodings[i]
        mask[row, :len(encodings[i])] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.zeros_like(torch.from_numpy(ids))}


def op_class(name):
    """The OP_CLASSES class of a torch op name (e.g. aten::addmm)."""
    for kind, parts in OP_CLASSES:
        if any(name == "aten::t" if part == "t" else part in name for part in parts):
            return kind
    return "element-wise"


def profile(model, batch_size, length, autocast):
    """{"milliseconds": the model's time per batch [batch_size, length] (untimed by the
    profiler: the mean of PROFILED_BATCHES after a warm-up), "shares": {class: share of the
    profiled self CPU time}}."""
    ids = torch.from_numpy(np.random.RandomState(0).randint(
        5, 1000, size=(batch_size, length)).astype(np.int64))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "token_type_ids": torch.zeros_like(ids)}
    with torch.inference_mode(), autocast:
        model(**inputs)
        started = time.time()
        for _ in range(PROFILED_BATCHES):
            model(**inputs)
        milliseconds = (time.time() - started) * 1000.0 / PROFILED_BATCHES
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as trace:
            for _ in range(PROFILED_BATCHES):
                model(**inputs)
    micros = {}
    for event in trace.key_averages():
        kind = op_class(event.key)
        micros[kind] = micros.get(kind, 0.0) + event.self_cpu_time_total
    total = sum(micros.values())
    return {"milliseconds": milliseconds,
            "shares": {kind: value / total for kind, value in micros.items()}}


def main(_):
    FLAGS = flags.FLAGS
    torch.set_num_threads(FLAGS.threads)
    imported = time.time()
    model = build_model(FLAGS.bert_config_file, FLAGS.num_labels)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if FLAGS.bfloat16
                else contextlib.nullcontext())
    if FLAGS.profile_length:
        print(json.dumps(profile(model, FLAGS.batch_size, FLAGS.profile_length, autocast)))
        return
    tokenizer = transformers.BertTokenizerFast(FLAGS.vocab_file, do_lower_case=False)
    with open(FLAGS.input_file, encoding="utf-8") as handle:
        texts = [line.rstrip("\n") for line in handle]
    built = time.time()
    labels = np.zeros(len(texts), dtype=np.int64)
    tokens = positions = 0
    with torch.inference_mode(), autocast:
        if FLAGS.order == "input":
            for start in range(0, len(texts), FLAGS.batch_size):
                batch = tokenizer(texts[start:start + FLAGS.batch_size], padding=True,
                                  truncation=True, max_length=FLAGS.max_seq_length,
                                  return_tensors="pt")
                logits = model(**batch).logits
                labels[start:start + len(logits)] = logits.argmax(-1).numpy()
                tokens += int(batch["attention_mask"].sum())
                positions += batch["attention_mask"].numel()
        else:
            encodings = tokenizer(texts, truncation=True, max_length=FLAGS.max_seq_length,
                                  return_attention_mask=False,
                                  return_token_type_ids=False)["input_ids"]
            order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
            for start in range(0, len(order), FLAGS.batch_size):
                rows = order[start:start + FLAGS.batch_size]
                batch = padded(encodings, rows)
                labels[rows] = model(**batch).logits.argmax(-1).numpy()
                tokens += int(batch["attention_mask"].sum())
                positions += batch["attention_mask"].numel()
    finished = time.time()
    with open(FLAGS.output_file, "w") as handle:
        handle.write("".join("%d\n" % label for label in labels))
    print(json.dumps({"import_seconds": imported - STARTED, "setup_seconds": built - imported,
                      "predict_seconds": finished - built,
                      "padding_share": 1.0 - float(tokens) / max(1, positions),
                      "bfloat16": FLAGS.bfloat16, "torch": torch.__version__,
                      "transformers": transformers.__version__,
                      "attention": model.config._attn_implementation}))


if __name__ == "__main__":
    app.run(main)

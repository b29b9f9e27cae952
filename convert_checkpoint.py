r"""Converts BERT models between this codebase and Hugging Face transformers, both ways.

To transformers (a folder ``from_pretrained`` loads): a checkpoint of run_pretraining.py
(BertForPreTraining: encoder, masked-LM and next-sentence heads), of run_classifier.py
(BertForSequenceClassification, labels from the task registry) or a released
``bert_model.ckpt`` (BertModel, or BertForPreTraining with its heads):

    python convert_checkpoint.py --to=hf --init_checkpoint=runs/pretrain/model.ckpt-1000 \
        --bert_config_file=vocab/bert_config_mini.json --vocab_file=vocab/vocab_20000.txt \
        --do_lower_case=False --output_dir=runs/hf_model

writes model.safetensors, config.json, vocab.txt (byte for byte), tokenizer_config.json,
special_tokens_map.json and a model card, README.md.

From transformers (a BERT folder with model.safetensors, or pytorch_model.bin when torch
is installed):

    python convert_checkpoint.py --to=tf --hf_dir=models/kr-medium \
        --output_dir=models/kr-medium-tf --tanh_gelu

writes bert_model.ckpt.{index,data-*}, bert_config.json and vocab.txt, which
run_classifier.py and run_pretraining.py load through --init_checkpoint (with the heads
when the HF model has them).

Every model variable is written exactly once; optimizer slots and global_step are left
out; anything left over or missing stops the conversion with a one-line error.

--output_dir is a new (or empty) local folder: a folder already holding files, or one that
is or holds an input, is refused. The model is written into OUTPUT_DIR.tmp-HOST.PID and
renamed to --output_dir when complete, so a killed or failed conversion leaves no
half-written model (the next conversion removes what it left).
"""

import contextlib
import json
import os

from absl import flags

import modeling
import tokenization
from krbert import cli
from krbert.bert_config import load_bert_config
from krbert.checkpoints import huggingface, restore
from krbert.checkpoints.variables import write_checkpoint
from krbert.classifier import custom_task
from krbert.classifier import tasks as classifier_tasks
from krbert.files import atomic, fs
from krbert.files import paths as file_paths
from krbert.tagging import klue
from krbert.tf_compat import tf


flags.DEFINE_enum("to", None, ["hf", "tf"],
                  "hf: a TensorFlow checkpoint to a transformers folder; tf: the reverse.")
flags.DEFINE_string("init_checkpoint", None,
                    "--to=hf: the checkpoint (prefix such as model.ckpt-1000, or its folder).")
flags.DEFINE_string("bert_config_file", None, "--to=hf: the model's bert_config.json.")
flags.DEFINE_string("vocab_file", None, "--to=hf: the vocabulary the model was trained with.")
flags.DEFINE_bool("do_lower_case", True,
                  "--to=hf: the model was trained on lower-cased text (False for KR-BERT).")
flags.DEFINE_string("task_name", None,
                    "--to=hf of a run_classifier.py checkpoint: its task (NSMC, HATE, KORNLI, "
                    "KORSTS, ...), for the labels; needed when the checkpoint's folder does "
                    "not tell.")
classifier_tasks.define_hate_label_flag(flags)
flags.DEFINE_string("hf_dir", None, "--to=tf: the transformers BERT folder.")
flags.DEFINE_bool("tanh_gelu", False,
                  "--to=tf: map the HF config's hidden_act=gelu to this codebase's tanh GELU "
                  "instead of the exact erf GELU (gelu_exact). For models first trained as "
                  "TensorFlow BERT checkpoints, such as snunlp/KR-Medium.")
flags.DEFINE_string("output_dir", None, "Where the converted model is written (a local folder).")
tokenization.define_tokenizer_flags(flags)


# ---------------------------------------------------------------------------------------
# The TensorFlow side.

def read_checkpoint(path):
    """(reader, {name: shape}) over the model variables of a checkpoint (slots skipped)."""
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
        raise cli.InputError("%s: not a readable TensorFlow checkpoint (%s)"
                             % (path, cli.error_reason(e)))
    shapes = reader.get_variable_to_shape_map()
    skipped = sorted(name for name in shapes if not huggingface.is_model_variable(name))
    tf.logging.info("%s: %d variables; %d optimizer slots and counters left out", path, len(shapes),
                    len(skipped))
    return reader, {name: shape for name, shape in shapes.items() if name not in skipped}


# ---------------------------------------------------------------------------------------
# The output folder.

HF_FILES = ("model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
            "special_tokens_map.json", "README.md")
TF_FILES = ("bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001",
            "bert_config.json", "vocab.txt")


@contextlib.contextmanager
def output_folder(output_dir, names, inputs):
    """Yields the temporary folder to write the model's files ``names`` into; it becomes
    ``output_dir`` when the block succeeds (atomic.staged_folder).

    Args:
      inputs: [(flag, [paths])] read by the conversion; InputError when --output_dir is
        one of them or would write over one (links followed).
    """
    outputs = [output_dir] + [os.path.join(output_dir, name) for name in names]
    for flag, paths in inputs:
        file_paths.check_outputs_spare_inputs(outputs, paths, "--output_dir", flag)
    folder = output_dir.rstrip("/") or "/"
    parent, name = os.path.dirname(folder) or ".", os.path.basename(folder)
    for removed in atomic.remove_stale_temporaries(parent, name + atomic.TMP_MARK):
        tf.logging.info("Removed %s, left by a run that died", removed)
    with atomic.staged_folder(folder, "--output_dir") as staging:
        yield staging


def save_safetensors(tensors, path):
    """huggingface.save_safetensors; a failed write is an OSError (a full disk)."""
    try:
        huggingface.save_safetensors(tensors, path)
    except cli.InputError:
        raise
    except Exception as e:  # pylint: disable=broad-except  (safetensors' own error type)
        raise OSError(str(e).splitlines()[0] if str(e) else type(e).__name__)


# ---------------------------------------------------------------------------------------
# --to=hf

def _tag_to_task():
    """{feature-cache tag: (task_name, hate_label)} of every registered task."""
    return {classifier_tasks.get_processor(task, label).tag: (task, label)
            for task, label in classifier_tasks.registered_variants()}


def classifier_processor(task_name, hate_label, num_labels, checkpoint):
    """The task of a run_classifier.py checkpoint with ``num_labels`` outputs.

    --task_name decides; without it, a custom task's task.json or the feature caches
    run_classifier.py leaves in the checkpoint's folder (``<task>_<split>_<key>.tf_record``)
    name the task.
    """
    folder = os.path.dirname(checkpoint) or "."
    custom = tf.io.gfile.exists(os.path.join(folder, custom_task.TASK_FILE))
    if (task_name or "").strip().lower() == classifier_tasks.CUSTOM or (not task_name and custom):
        processor = classifier_tasks.get_processor(classifier_tasks.CUSTOM,
                                                   custom=custom_task.load_spec(folder))
        task_name = classifier_tasks.CUSTOM
    elif not task_name:
        tags = _tag_to_task()
        found = set()
        for name in tf.io.gfile.listdir(folder):
            tag = name.split("_", 1)[0]
            if name.endswith(".tf_record") and tag in tags:
                processor = classifier_tasks.get_processor(*tags[tag])
                if processor.num_outputs == num_labels:
                    found.add(tags[tag])
        if len(found) != 1:
            raise cli.InputError(
                "%s is a classifier with %d labels and its folder %s; pass --task_name "
                "(e.g. NSMC, KORNLI, or HATE with --hate_label) for the labels"
                % (checkpoint, num_labels, "names several tasks" if found else
                   "does not name its task"))
        task_name, hate_label = found.pop()
        processor = classifier_tasks.get_processor(task_name, hate_label)
        tf.logging.info("Task %s (%s) from the feature cache in %s", task_name.upper(),
                        processor.flag_text, folder)
    else:
        processor = classifier_tasks.get_processor(task_name, hate_label)
    if processor.num_outputs != num_labels:
        raise cli.InputError("%s has %d output classes but --task_name=%s has %d labels (%s); "
                             "pass the task it was fine-tuned on" % (
                                 checkpoint, num_labels, task_name, processor.num_outputs,
                                 ", ".join(processor.labels) or "one score"))
    return processor


def to_hf(init_checkpoint, bert_config_file, vocab_file, do_lower_case, output_dir,
          task_name=None, hate_label="hate", tokenizer_mode="wordpiece", subchar=False):
    """Writes the transformers folder ``output_dir`` for a TensorFlow checkpoint."""
    config = load_bert_config(bert_config_file).to_dict()
    if not vocab_file or not tf.io.gfile.exists(vocab_file):
        raise cli.InputError("--vocab_file=%s not found; pass the model's vocabulary" % vocab_file)
    vocab = tokenization.load_vocab(vocab_file)
    tokenization.check_vocab_matches_config(vocab, config["vocab_size"], bert_config_file)
    tokenization.check_case_matches_vocab(do_lower_case, vocab, vocab_file)
    huggingface.safetensors_numpy()  # fail before any work when it is missing
    checkpoint = restore.resolve_checkpoint(init_checkpoint)
    reader, shapes = read_checkpoint(checkpoint)
    architecture, heads = huggingface.heads_of_checkpoint(shapes, checkpoint)
    labels, task, regression = None, None, False
    if "classifier" in heads:
        processor = classifier_processor(task_name, hate_label, shapes["output_weights"][0],
                                         checkpoint)
        labels, task, regression = processor.labels, processor.tag, processor.is_regression
        labels = ("score",) if regression else labels
    if "tagger" in heads:
        labels, task = klue.LABELS, "klue-ner"
    pooler = huggingface.has_pooler(heads)
    pairs = huggingface.variable_pairs(config["num_hidden_layers"], heads,
                                       prefix="bert." if heads else "", pooler=pooler)
    if not pooler:  # BertForQuestionAnswering and BertForTokenClassification have none
        shapes = {name: shape for name, shape in shapes.items()
                  if not name.startswith("bert/pooler/")}
    huggingface.match_variables(shapes, pairs, checkpoint, key=0)
    wanted = huggingface.expected_shapes(config, heads, labels and len(labels), pooler)
    huggingface.check_shapes(shapes, wanted, checkpoint, bert_config_file)

    tensors = huggingface.convert_tensors(
        {tf_name: reader.get_tensor(tf_name) for tf_name, _, _ in pairs}, pairs, to_hf=True)
    hf_config = huggingface.hf_config(config, architecture, vocab.get("[PAD]", 0),
                                      labels, task)
    huggingface.set_problem_type(hf_config, regression)
    inputs = [("--vocab_file", [vocab_file]), ("--bert_config_file", [bert_config_file]),
              ("--init_checkpoint", restore.checkpoint_files(checkpoint))]
    with output_folder(output_dir, HF_FILES, inputs) as staging:
        save_safetensors(tensors, os.path.join(staging, "model.safetensors"))
        huggingface.write_json(os.path.join(staging, "config.json"), hf_config)
        sha1 = huggingface.copy_vocab(vocab_file, staging)
        huggingface.tokenizer_files(staging, do_lower_case, config["max_position_embeddings"])
        hangul = sum(1 for token in vocab if tokenization._HANGUL_SYLLABLES.search(token))
        card = huggingface.model_card(
            os.path.basename(os.path.normpath(output_dir)), hf_config,
            (checkpoint, bert_config_file), {"file": vocab_file, "size": len(vocab),
                                             "sha1": sha1, "hangul": hangul},
            tokenizer_mode, subchar, do_lower_case)
        with open(os.path.join(staging, "README.md"), "w", encoding="utf-8") as handle:
            handle.write(card)
    for line in huggingface.tokenizer_warnings(tokenizer_mode, subchar):
        if line:
            tf.logging.warning("%s (also written to %s/README.md)", line.replace("**", ""),
                               output_dir)
    tf.logging.info("Wrote %s (%d tensors from %d variables; hidden_act %s) to %s", architecture,
                    len(tensors), len(pairs), hf_config["hidden_act"], output_dir)


# ---------------------------------------------------------------------------------------
# --to=tf

def load_hf_weights(hf_dir):
    """({name: array}, path) of model.safetensors (sharded too) or pytorch_model.bin."""
    single = os.path.join(hf_dir, "model.safetensors")
    index = single + ".index.json"
    binary = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.isfile(single):
        return huggingface.load_safetensors(single), single
    if os.path.isfile(index):
        tensors = {}
        for shard in index_shards(index):
            tensors.update(huggingface.load_safetensors(os.path.join(hf_dir, shard)))
        return tensors, index
    if os.path.isfile(binary):
        return load_pytorch_bin(binary), binary
    raise cli.InputError("--hf_dir=%s has no model.safetensors or pytorch_model.bin; give a "
                         "transformers BERT folder" % hf_dir)


def index_shards(index):
    """The shard files (names in the index's folder) a model.safetensors.index.json maps the
    weights to; InputError when it is not such an index or names a file not there."""
    try:
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise cli.InputError("%s: not a safetensors index with a weight_map of tensor names to "
                             "shard files (%s: %s); save the model again with transformers"
                             % (index, type(e).__name__, str(e).splitlines()[0]))
    folder = os.path.dirname(index)
    for shard in shards:
        if (not isinstance(shard, str) or os.path.basename(shard) != shard
                or not os.path.isfile(os.path.join(folder, shard))):
            raise cli.InputError("%s: names the shard %s, which is not a file in %s; give the "
                                 "folder with every shard" % (index, json.dumps(shard), folder))
    return shards


def load_pytorch_bin(path):
    """{name: array} of a PyTorch state dict, read with weights_only=True (no pickled code)."""
    try:
        import torch
    except ImportError:
        raise cli.InputError("%s: reading pytorch_model.bin needs torch (pip install torch), or "
                             "save the model as model.safetensors where torch is installed"
                             % path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pylint: disable=broad-except
        raise cli.InputError("%s: not a PyTorch state dict of tensors (%s)"
                             % (path, str(e).splitlines()[0]))
    return {name: (value.float() if value.is_floating_point() else value).numpy()
            for name, value in state.items()}


def read_hf_config(hf_dir):
    path = os.path.join(hf_dir or "", "config.json")
    if not hf_dir or not os.path.isfile(path):
        raise cli.InputError("--hf_dir=%s has no config.json; give a transformers BERT folder"
                             % hf_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle), path
    except ValueError as e:
        raise cli.InputError("%s: not valid JSON (%s)" % (path, e))


def to_tf(hf_dir, output_dir, tanh_gelu=False):
    """Writes bert_model.ckpt, bert_config.json and vocab.txt for a transformers folder."""
    hf_config, config_path = read_hf_config(hf_dir)
    config, note = huggingface.tf_config(hf_config, config_path, tanh_gelu)
    tf.logging.info("GELU: %s", note)
    eps = hf_config.get("layer_norm_eps", huggingface.LAYER_NORM_EPS)
    if eps != huggingface.LAYER_NORM_EPS:
        tf.logging.warning("%s: layer_norm_eps=%g, but modeling.py normalises with %g; outputs "
                           "will differ slightly", config_path, eps, huggingface.LAYER_NORM_EPS)
    vocab_file = os.path.join(hf_dir, "vocab.txt")
    if not os.path.isfile(vocab_file):
        raise cli.InputError("--hf_dir=%s has no vocab.txt; this codebase's tokenizer needs "
                             "the WordPiece vocabulary" % hf_dir)
    size = len(tokenization.load_vocab(vocab_file))
    if size != config["vocab_size"]:
        raise cli.InputError("%s has %d tokens but %s says vocab_size=%d; the model's "
                             "vocabulary and its config must agree (give the folder as the "
                             "model was saved)" % (vocab_file, size, config_path,
                                                   config["vocab_size"]))
    tensors, where = load_hf_weights(hf_dir)
    tf.logging.info("Read %d tensors from %s", len(tensors), where)
    prefix = huggingface.drop_tied_and_buffers(tensors, where)
    architecture, heads, pooler = huggingface.heads_of_hf(
        tensors, prefix, hf_config.get("architectures") or ())
    pairs = huggingface.variable_pairs(config["num_hidden_layers"], heads, prefix,
                                       pooler)
    huggingface.match_variables(tensors, pairs, where, key=1)
    arrays = huggingface.convert_tensors(tensors, pairs, to_hf=False)
    head_weights = [n for n in ("output_weights", "tagger/output_weights") if n in arrays]
    num_labels = arrays[head_weights[0]].shape[0] if head_weights else None
    wanted = huggingface.expected_shapes(config, heads, num_labels, pooler)
    huggingface.check_shapes({k: v.shape for k, v in arrays.items()}, wanted,
                             where, config_path)

    hf_files = [os.path.join(hf_dir, name) for name in os.listdir(hf_dir)]
    with output_folder(output_dir, TF_FILES, [("--hf_dir", [hf_dir] + hf_files)]) as staging:
        write_checkpoint(arrays, os.path.join(staging, "bert_model.ckpt"))
        with open(os.path.join(staging, "bert_config.json"), "w") as handle:
            handle.write(modeling.BertConfig.from_dict(config).to_json_string())
        huggingface.copy_vocab(vocab_file, staging)
    if not pooler:
        tf.logging.warning("%s has no pooler: bert/pooler/dense starts from random weights when "
                           "fine-tuning", where)
    carried = {"mlm": "masked-LM head", "nsp": "next-sentence head",
               "classifier": "classifier output_weights/output_bias",
               "tagger": "tagger output_weights/output_bias (run_ner.py)",
               "span": "span head cls/squad"}
    tf.logging.info("Wrote %d variables of %s (%s) to %s/bert_model.ckpt", len(arrays),
                    architecture, ", ".join([carried[h] for h in heads]) or "encoder only",
                    output_dir)
    if num_labels is not None:
        if "tagger" in heads:
            tf.logging.info("The tagger has %d labels (id2label %s); run_ner.py loads it",
                            num_labels, hf_config.get("id2label", "not given"))
        else:
            tf.logging.info("The classifier has %d outputs (id2label %s, problem_type %s); "
                            "run_classifier.py loads it for a task with as many (a score task: "
                            "1)", num_labels, hf_config.get("id2label", "not given"),
                            hf_config.get("problem_type", "not given"))
    lower = _tokenizer_lower_case(hf_dir)
    if lower is not None:
        tf.logging.info("tokenizer_config.json: do_lower_case=%s; pass --do_lower_case=%s",
                        lower, lower)


def _tokenizer_lower_case(hf_dir):
    path = os.path.join(hf_dir, "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle).get("do_lower_case")


def main(_):
    FLAGS = flags.FLAGS
    tf.logging.set_verbosity(tf.logging.INFO)
    if not FLAGS.to:
        raise cli.InputError("--to is required: hf (checkpoint to transformers) or tf")
    if not FLAGS.output_dir:
        raise cli.InputError("--output_dir is required")
    if fs.is_remote(FLAGS.output_dir):
        raise cli.InputError("--output_dir=%s: the converter writes a local folder; convert to "
                             "a local folder, then copy it (gsutil -m cp -r)" % FLAGS.output_dir)
    if FLAGS.to == "hf":
        for name in ("init_checkpoint", "bert_config_file", "vocab_file"):
            if not getattr(FLAGS, name):
                raise cli.InputError("--to=hf needs --%s" % name)
        to_hf(FLAGS.init_checkpoint, FLAGS.bert_config_file, FLAGS.vocab_file,
              FLAGS.do_lower_case, FLAGS.output_dir, FLAGS.task_name, FLAGS.hate_label,
              FLAGS.tokenizer, FLAGS.subchar)
    else:
        if not FLAGS.hf_dir:
            raise cli.InputError("--to=tf needs --hf_dir")
        to_tf(FLAGS.hf_dir, FLAGS.output_dir, FLAGS.tanh_gelu)


if __name__ == "__main__":
    cli.run(main)

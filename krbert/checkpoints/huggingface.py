"""The layouts of this codebase's BERT checkpoints and of Hugging Face transformers' BERT.

Pure numpy (and the ``safetensors`` package for ``model.safetensors``): variable names,
the transposes between them, the two config formats and the tokenizer files of an HF
model folder. ``convert_checkpoint.py`` reads and writes the TensorFlow side.

Name pairs (L the layer, kernels [in, out] here and [out, in] in transformers):

    bert/embeddings/word_embeddings           bert.embeddings.word_embeddings.weight
    bert/embeddings/LayerNorm/{gamma, beta}   bert.embeddings.LayerNorm.{weight, bias}
    bert/encoder/layer_L/.../kernel           bert.encoder.layer.L....weight  (transposed)
    bert/pooler/dense/{kernel, bias}          bert.pooler.dense.{weight, bias}
    cls/predictions/output_bias               cls.predictions.bias
    cls/seq_relationship/output_weights [2, H] cls.seq_relationship.weight    (as is)
    output_weights [C, H] (run_classifier)    classifier.weight               (as is)
    tagger/output_weights [L, H] (run_ner)    classifier.weight of BertForTokenClassification
    cls/squad/output_weights [2, H] (run_squad) qa_outputs.weight             (as is)

A bare ``BertModel`` has no ``bert.`` prefix. transformers ties the masked-LM decoder
(``cls.predictions.decoder.{weight, bias}``) to the word embeddings and to
``cls.predictions.bias`` and keeps ``embeddings.position_ids`` as a buffer: none of them
is a variable here.
"""

import hashlib
import json
import os
import shutil

import numpy as np

from krbert.cli import InputError

LAYER_NORM_EPS = 1e-12
"""The layer-norm epsilon of modeling.py."""

SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                  "cls_token": "[CLS]", "mask_token": "[MASK]"}

HEADS = {
    # architecture -> heads; the heads decide which variables a checkpoint holds.
    "BertModel": (),
    "BertForPreTraining": ("mlm", "nsp"),
    "BertForMaskedLM": ("mlm",),
    "BertForSequenceClassification": ("classifier",),
    "BertForTokenClassification": ("tagger",),
    "BertForQuestionAnswering": ("span",),
}

TF_TO_HF_ACT = {"gelu": "gelu_new", "gelu_exact": "gelu", "relu": "relu", "tanh": "tanh"}
"""hidden_act here -> transformers: this codebase's "gelu" is the tanh form (gelu_new)."""

HF_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
HF_EXACT_GELUS = ("gelu", "gelu_python")

_SKIPPED_SUFFIXES = ("/adam_m", "/adam_v", "/Adam", "/Adam_1", "/Momentum",
                     "/grad_accum")  # the last: gradient accumulation's sums
_SKIPPED_NAMES = ("global_step", "beta1_power", "beta2_power", "grad_accum_micro_steps",
                  "loss_scale", "loss_scale_good_steps")
_HF_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


# ---------------------------------------------------------------------------------------
# Variable names.

_DENSE_PARTS = (("attention/self/query", "attention.self.query"),
                ("attention/self/key", "attention.self.key"),
                ("attention/self/value", "attention.self.value"),
                ("attention/output/dense", "attention.output.dense"),
                ("intermediate/dense", "intermediate.dense"),
                ("output/dense", "output.dense"))
_NORM_PARTS = (("attention/output/LayerNorm", "attention.output.LayerNorm"),
               ("output/LayerNorm", "output.LayerNorm"))


def _dense(tf_scope, hf_scope):
    return [(tf_scope + "/kernel", hf_scope + ".weight", True),
            (tf_scope + "/bias", hf_scope + ".bias", False)]


def _norm(tf_scope, hf_scope):
    return [(tf_scope + "/gamma", hf_scope + ".weight", False),
            (tf_scope + "/beta", hf_scope + ".bias", False)]


def variable_pairs(num_layers, heads=(), prefix="bert.", pooler=True):
    """[(tf_name, hf_name, transposed)] of every variable of a model with ``heads``.

    Args:
      num_layers: encoder layers.
      heads: any of "mlm", "nsp", "classifier", "tagger".
      prefix: "bert." (a model with a head) or "" (a bare BertModel) before HF encoder names.
      pooler: include bert/pooler/dense (transformers' BertForMaskedLM has none).
    """
    pairs = [("bert/embeddings/%s" % name, "%sembeddings.%s.weight" % (prefix, name), False)
             for name in ("word_embeddings", "token_type_embeddings", "position_embeddings")]
    pairs += _norm("bert/embeddings/LayerNorm", prefix + "embeddings.LayerNorm")
    for layer in range(num_layers):
        tf_layer = "bert/encoder/layer_%d/" % layer
        hf_layer = "%sencoder.layer.%d." % (prefix, layer)
        for tf_part, hf_part in _DENSE_PARTS:
            pairs += _dense(tf_layer + tf_part, hf_layer + hf_part)
        for tf_part, hf_part in _NORM_PARTS:
            pairs += _norm(tf_layer + tf_part, hf_layer + hf_part)
    if pooler:
        pairs += _dense("bert/pooler/dense", prefix + "pooler.dense")
    if "mlm" in heads:
        pairs += _dense("cls/predictions/transform/dense", "cls.predictions.transform.dense")
        pairs += _norm("cls/predictions/transform/LayerNorm",
                       "cls.predictions.transform.LayerNorm")
        pairs.append(("cls/predictions/output_bias", "cls.predictions.bias", False))
    if "nsp" in heads:
        pairs += [("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", False),
                  ("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", False)]
    if "classifier" in heads:
        pairs += [("output_weights", "classifier.weight", False),
                  ("output_bias", "classifier.bias", False)]
    if "tagger" in heads:
        pairs += tagger_pairs()
    if "span" in heads:
        pairs += span_head_pairs()
    return pairs


def tagger_pairs():
    """run_ner.py's tagging head and BertForTokenClassification's ``classifier`` (a dense
    layer on every token; [L, H] on both sides, as is)."""
    return [("tagger/output_weights", "classifier.weight", False),
            ("tagger/output_bias", "classifier.bias", False)]


def span_head_pairs():
    """run_squad.py's span head and transformers' BertForQuestionAnswering.qa_outputs: the
    same [2, H] matrix (row 0 start, row 1 end) and bias [2]."""
    return [("cls/squad/output_weights", "qa_outputs.weight", False),
            ("cls/squad/output_bias", "qa_outputs.bias", False)]


def has_pooler(heads):
    """Whether transformers' model with ``heads`` has a pooler: BertForQuestionAnswering and
    BertForTokenClassification have none, so their conversions leave bert/pooler out."""
    return "span" not in heads and "tagger" not in heads


def expected_shapes(config, heads=(), num_labels=None, pooler=True):
    """{tf_name: shape} that a BertConfig dict implies for the variables of ``heads``."""
    h, i = config["hidden_size"], config["intermediate_size"]
    shapes = {"bert/embeddings/word_embeddings": [config["vocab_size"], h],
              "bert/embeddings/token_type_embeddings": [config["type_vocab_size"], h],
              "bert/embeddings/position_embeddings": [config["max_position_embeddings"], h],
              "cls/predictions/output_bias": [config["vocab_size"]],
              "cls/seq_relationship/output_weights": [2, h],
              "cls/seq_relationship/output_bias": [2],
              "output_weights": [num_labels, h], "output_bias": [num_labels],
              "tagger/output_weights": [num_labels, h], "tagger/output_bias": [num_labels],
              "cls/squad/output_weights": [2, h], "cls/squad/output_bias": [2]}
    result = {}
    for tf_name, _, _ in variable_pairs(config["num_hidden_layers"], heads, pooler=pooler):
        if tf_name in shapes:
            result[tf_name] = shapes[tf_name]
        elif tf_name.endswith("intermediate/dense/kernel"):
            result[tf_name] = [h, i]
        elif tf_name.endswith("intermediate/dense/bias"):
            result[tf_name] = [i]
        elif "/output/dense/kernel" in tf_name and "attention" not in tf_name:
            result[tf_name] = [i, h]
        elif tf_name.endswith("/kernel"):
            result[tf_name] = [h, h]
        else:
            result[tf_name] = [h]
    return result


def is_model_variable(name):
    """False for optimizer slots and counters, which are not part of the model."""
    return not (name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES))


def heads_of_checkpoint(names, where):
    """(architecture, heads) of a checkpoint holding the variables ``names``."""
    names = set(names)
    if not any(name.startswith("bert/") for name in names):
        raise InputError("%s holds no BERT variables (no bert/...; it has %s); give a checkpoint "
                         "of run_pretraining.py, run_classifier.py or a released bert_model.ckpt"
                         % (where, _some(names) or "no variables"))
    found = set()
    if any(name.startswith("cls/predictions/") for name in names):
        found.add("mlm")
    if any(name.startswith("cls/seq_relationship/") for name in names):
        found.add("nsp")
    if "output_weights" in names or "output_bias" in names:
        found.add("classifier")
    if any(name.startswith("tagger/") for name in names):
        found.add("tagger")
    if any(name.startswith("cls/squad/") for name in names):
        found.add("span")
    for architecture, heads in sorted(HEADS.items()):
        if architecture != "BertForMaskedLM" and set(heads) == found:
            return architecture, heads
    raise InputError("%s holds the heads %s, a combination no layout here has; give a "
                     "checkpoint of run_pretraining.py (masked LM and next sentence), of "
                     "run_classifier.py, or an encoder alone" % (where, ", ".join(sorted(found))))


def _some(names, limit=4):
    names = sorted(names)
    more = " and %d more" % (len(names) - limit) if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def match_variables(present, pairs, where, key):
    """Checks that ``present`` holds exactly the names ``pairs`` map (``key`` 0: TF, 1: HF).

    Raises InputError naming what is missing or left over.
    """
    wanted = [pair[key] for pair in pairs]
    missing = [name for name in wanted if name not in present]
    if missing:
        raise InputError("%s lacks %d model variable(s): %s; the checkpoint is incomplete or "
                         "not a BERT of this layout" % (where, len(missing), _some(missing)))
    left = set(present) - set(wanted)
    if left:
        raise InputError("%s holds %d variable(s) no BERT layout here maps: %s; convert a "
                         "BERT model with the heads of %s only"
                         % (where, len(left), _some(left), ", ".join(sorted(HEADS))))


def check_shapes(shapes, wanted, where, config_file):
    """Raises InputError at the first variable (in ``wanted``'s order) whose shape differs."""
    for name in wanted:
        if list(shapes[name]) != list(wanted[name]):
            raise InputError("%s: %s has shape %s but %s implies %s; pass the config the model "
                             "was trained with" % (where, name, list(shapes[name]), config_file,
                                                   list(wanted[name])))


def convert_tensors(arrays, pairs, to_hf):
    """{hf_name: array} from {tf_name: array} (``to_hf``), or the reverse.

    Kernels are transposed; every variable is written exactly once.
    """
    out = {}
    for tf_name, hf_name, transposed in pairs:
        source, target = (tf_name, hf_name) if to_hf else (hf_name, tf_name)
        if target in out:
            raise ValueError("%s would be written twice" % target)
        value = arrays[source]
        out[target] = np.ascontiguousarray(value.T if transposed else value)
    return out


# ---------------------------------------------------------------------------------------
# The HF state dict read back: tied weights and buffers, prefix, heads.

def drop_tied_and_buffers(tensors, where):
    """Removes transformers' buffers and tied copies from ``tensors`` (a dict, in place).

    The masked-LM decoder must equal the word embeddings and its bias the head's bias;
    an untied decoder has no place in this codebase's layout (InputError).
    """
    for name in list(tensors):
        if name.endswith(_HF_BUFFERS):
            del tensors[name]
    prefix = "bert." if any(name.startswith("bert.") for name in tensors) else ""
    tied = (("cls.predictions.decoder.weight", prefix + "embeddings.word_embeddings.weight"),
            ("cls.predictions.decoder.bias", "cls.predictions.bias"))
    for copy_name, name in tied:
        if copy_name not in tensors:
            continue
        value = tensors.pop(copy_name)
        if name not in tensors:
            tensors[name] = value
        elif not np.array_equal(tensors[name], value):
            raise InputError("%s: %s differs from %s (untied weights); this codebase's masked-LM "
                             "head reuses them, so the model cannot be converted"
                             % (where, copy_name, name))
    return prefix


def heads_of_hf(names, prefix, architectures=()):
    """(architecture, heads, has_pooler) of an HF BERT state dict with ``names``; its
    ``classifier`` is a tagger when config.json's ``architectures`` says
    BertForTokenClassification."""
    heads = []
    if any(name.startswith("cls.predictions.") for name in names):
        heads.append("mlm")
    if any(name.startswith("cls.seq_relationship.") for name in names):
        heads.append("nsp")
    if any(name.startswith("classifier.") for name in names):
        heads.append("tagger" if "BertForTokenClassification" in architectures
                     else "classifier")
    if any(name.startswith("qa_outputs.") for name in names):
        heads.append("span")
    architecture = [a for a, h in sorted(HEADS.items()) if list(h) == heads]
    architecture = architecture[0] if architecture else "+".join(heads)
    return architecture, tuple(heads), (prefix + "pooler.dense.weight") in names


# ---------------------------------------------------------------------------------------
# Configs.

def hf_config(bert_config, architecture, pad_token_id, labels=None, task=None):
    """transformers' config.json (a dict) for a BertConfig dict of this codebase."""
    act = bert_config.get("hidden_act", "gelu")
    if act not in TF_TO_HF_ACT:
        raise InputError("hidden_act=%r has no transformers equivalent; use one of %s"
                         % (act, ", ".join(sorted(TF_TO_HF_ACT))))
    config = {"architectures": [architecture], "model_type": "bert",
              "hidden_act": TF_TO_HF_ACT[act], "layer_norm_eps": LAYER_NORM_EPS,
              "pad_token_id": pad_token_id, "position_embedding_type": "absolute",
              "tie_word_embeddings": True, "dtype": "float32"}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                "max_position_embeddings", "type_vocab_size", "initializer_range"):
        config[key] = bert_config[key]
    if labels is not None:
        config["num_labels"] = len(labels)
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
        config["finetuning_task"] = task
    return config


def set_problem_type(config, regression):
    """Marks a BertForSequenceClassification config (a dict, in place) of a score head as
    ``problem_type: regression`` (one label; transformers then trains it with the mean
    squared error); a class head's config is left as it was."""
    if regression and "num_labels" in config:
        config["problem_type"] = "regression"
    return config


def tf_config(config, where, tanh_gelu=False):
    """(BertConfig dict, hidden_act note) for transformers' config.json dict ``config``.

    ``tanh_gelu`` maps transformers' "gelu" (the exact erf form) to this codebase's tanh
    "gelu", for models first trained as TensorFlow BERT checkpoints.
    """
    if config.get("model_type") != "bert":
        raise InputError("%s: model_type is %r, not 'bert'; only BERT models convert"
                         % (where, config.get("model_type")))
    for key, value in (("position_embedding_type", "absolute"), ("is_decoder", False),
                       ("add_cross_attention", False)):
        if config.get(key, value) != value:
            raise InputError("%s: %s=%r; only an encoder with %s=%r converts"
                             % (where, key, config[key], key, value))
    act = config.get("hidden_act", "gelu")
    if act in HF_TANH_GELUS:
        ours, note = "gelu", "%s is the tanh GELU: hidden_act gelu" % act
    elif act in HF_EXACT_GELUS and tanh_gelu:
        ours, note = "gelu", ("%s (the erf form) kept as the tanh GELU (--tanh_gelu): "
                              "hidden_act gelu" % act)
    elif act in HF_EXACT_GELUS:
        ours, note = "gelu_exact", ("%s is the exact erf GELU: hidden_act gelu_exact (pass "
                                    "--tanh_gelu for a model first trained as a TensorFlow "
                                    "BERT checkpoint)" % act)
    elif act in ("relu", "tanh"):
        ours, note = act, "hidden_act %s" % act
    else:
        raise InputError("%s: hidden_act=%r has no equivalent here (gelu, gelu_new, relu, tanh)"
                         % (where, act))
    out = {"hidden_act": ours}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                "max_position_embeddings", "type_vocab_size", "initializer_range"):
        if key not in config:
            raise InputError("%s lacks %s" % (where, key))
        out[key] = config[key]
    return out, note


# ---------------------------------------------------------------------------------------
# Files.

def load_safetensors(path):
    """{name: float32 array} of a safetensors file; InputError without the package."""
    numpy_io = safetensors_numpy()
    try:
        tensors = numpy_io.load_file(path)
    except Exception as e:  # pylint: disable=broad-except
        raise InputError("%s: not a readable safetensors file of numpy dtypes (%s); save it "
                         "in float32 with transformers" % (path, str(e).splitlines()[0]))
    return {name: _as_float32(value) for name, value in tensors.items()}


def _as_float32(value):
    return value.astype(np.float32) if value.dtype == np.float16 else value


def safetensors_numpy():
    """The safetensors.numpy module, or an InputError saying how to install it."""
    try:
        import safetensors.numpy as numpy_io
    except ImportError:
        raise InputError("model.safetensors needs the safetensors package: pip install "
                         "safetensors (on Python 3.7: safetensors==0.4.5, as requirements.txt "
                         "pins it)")
    return numpy_io


def save_safetensors(tensors, path):
    """Writes {name: array} as transformers writes a PyTorch model (metadata format pt),
    with the mode of any new file (0666 less the umask; safetensors itself makes it 0600)."""
    safetensors_numpy().save_file(tensors, path, metadata={"format": "pt"})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def copy_vocab(vocab_file, output_dir):
    """Copies the vocabulary byte for byte to output_dir/vocab.txt; returns its sha1."""
    target = os.path.join(output_dir, "vocab.txt")
    shutil.copyfile(vocab_file, target)
    with open(target, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def tokenizer_files(output_dir, do_lower_case, model_max_length):
    """tokenizer_config.json and special_tokens_map.json for a BertTokenizer."""
    config = dict(SPECIAL_TOKENS, tokenizer_class="BertTokenizer", do_lower_case=do_lower_case,
                  strip_accents=do_lower_case, tokenize_chinese_chars=True,
                  do_basic_tokenize=True, model_max_length=model_max_length,
                  clean_up_tokenization_spaces=False)
    write_json(os.path.join(output_dir, "tokenizer_config.json"), config)
    write_json(os.path.join(output_dir, "special_tokens_map.json"), dict(SPECIAL_TOKENS))


_PIPELINES = {"BertForPreTraining": "fill-mask", "BertForMaskedLM": "fill-mask",
              "BertForSequenceClassification": "text-classification",
              "BertModel": "feature-extraction"}


def model_card(name, config, source, vocab, tokenizer_mode, subchar, do_lower_case):
    """README.md of an exported folder: config, vocabulary, tokenizer, origin, caveats.

    Args:
      name: the model's name (the title).
      config: the transformers config dict written to config.json.
      source: (checkpoint, bert_config.json) converted (paths).
      vocab: dict with "file", "size", "sha1" and "hangul" (tokens holding Hangul).
      tokenizer_mode, subchar, do_lower_case: the tokenizer the model was trained with.
    """
    architecture = config["architectures"][0]
    lines = ["---", "library_name: transformers",
             "pipeline_tag: %s" % _PIPELINES.get(architecture, "feature-extraction"),
             "tags: [bert]"]
    if vocab["hangul"] > vocab["size"] // 4:
        lines.append("language: [ko]")
    lines += ["---", "", "# %s" % name, "",
              "A BERT model (`%s`) converted from the TensorFlow checkpoint `%s` (config "
              "`%s`) by this KR-BERT-MEDIUM codebase's `convert_checkpoint.py --to=hf`; "
              "`convert_checkpoint.py --to=tf` converts it back." % ((architecture,) + source),
              "",
              "## Config", "",
              "| layers | hidden | heads | feed-forward | max positions | vocabulary | "
              "hidden_act |", "|---|---|---|---|---|---|---|",
              "| %d | %d | %d | %d | %d | %d | %s |" % (
                  config["num_hidden_layers"], config["hidden_size"],
                  config["num_attention_heads"], config["intermediate_size"],
                  config["max_position_embeddings"], config["vocab_size"],
                  config["hidden_act"]), ""]
    if config["hidden_act"] == "gelu_new":
        lines += ["`gelu_new` is the tanh form of GELU the model was trained with; "
                  "`gelu` (the erf form) differs from it by up to 4.7e-4 per activation.", ""]
    lines += ["## Vocabulary", "",
              "`vocab.txt`: %d tokens, SHA-1 `%s`, byte for byte the vocabulary `%s` the "
              "model was trained with." % (vocab["size"], vocab["sha1"], vocab["file"]), "",
              "## Tokenizer", "",
              "`do_lower_case=%s`, `strip_accents=%s`, `tokenize_chinese_chars=True`, "
              "`model_max_length=%d`. Trained with tokenizer `%s`%s." % (
                  do_lower_case, do_lower_case, config["max_position_embeddings"],
                  tokenizer_mode, ", sub-character (NFKD jamo) input" if subchar else ""), ""]
    lines += tokenizer_warnings(tokenizer_mode, subchar)
    lines += ["Differences from the tokenizer the model was trained with:", "",
              "- transformers' WordPiece turns a word longer than 100 characters into "
              "`[UNK]`; the original BERT tokenizer splits words of up to 200. For the "
              "same ids set `tokenizer.backend_tokenizer.model.max_input_chars_per_word = "
              "200` after loading.",
              "- The Rust tokenizer (`AutoTokenizer`; `BertTokenizer` in transformers 5, "
              "`BertTokenizerFast` before) gives the training ids. The pure-Python one "
              "(`BertTokenizerLegacy` in transformers 5, `BertTokenizer` before) "
              "NFC-normalises the text first, which maps CJK compatibility ideographs to "
              "other characters and recomposes jamo into syllables.", ""]
    if "id2label" in config:
        lines += ["## Labels", "", "Fine-tuned on %s:" % config["finetuning_task"], "",
                  "| id | label |", "|---|---|"]
        lines += ["| %s | %s |" % item for item in sorted(config["id2label"].items())]
        lines.append("")
    lines += ["## Use", "", "```python",
              "from transformers import AutoTokenizer, %s" % architecture,
              "tokenizer = AutoTokenizer.from_pretrained(PATH)",
              "tokenizer.backend_tokenizer.model.max_input_chars_per_word = 200",
              "model = %s.from_pretrained(PATH)" % architecture, "```", ""]
    return "\n".join(lines)


def tokenizer_warnings(tokenizer_mode, subchar):
    """Lines saying what a transformers BertTokenizer cannot reproduce (empty if nothing)."""
    lines = []
    if tokenizer_mode == "bidirectional":
        lines.append("**Warning:** the model was trained with KR-BERT's bidirectional "
                     "WordPiece, which picks per word the forward or backward split; "
                     "`BertTokenizer` splits forward only, so some words get other pieces.")
    if subchar:
        lines.append("**Warning:** the model reads sub-character input: NFKD-decompose every "
                     "text (`unicodedata.normalize('NFKD', text)`) before the tokenizer.")
    return lines + [""] if lines else []

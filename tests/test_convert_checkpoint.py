"""convert_checkpoint.py both ways, run as a user runs it, on checkpoints made here.

The tiny pretraining checkpoint (run_pretraining.py), the tiny NSMC classifier
(run_classifier.py) and their Hugging Face exports are the session fixtures pretrained_tiny,
pretrained_tiny_hf, nsmc_finetuned and nsmc_hf_export (tests/conftest.py);
test_convert_minilm.py imports a model from the Hub.
The outputs of this codebase's graph and of transformers (PyTorch) are compared on padded
batches. Tests that need transformers and torch skip without them (the TF 1.15 leg);
conversions need the safetensors package.
"""

import importlib.util
import json
import os

import numpy as np
import pytest

import modeling
import tokenization
from krbert.checkpoints import huggingface
from krbert.classifier import tasks
from krbert.pretraining import heads
from krbert.tf_compat import tf
from tiny_models import REPO_VOCAB, convert, first_lines, flags_for, write_records
from tiny_models import run_pretraining

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "convert_checkpoint.py")
TOLERANCE = 1e-4

needs_safetensors = pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None,
    reason="the safetensors package is not installed (pip install -r requirements.txt)")


def hf_packages():
    """(transformers, torch), or a skip naming what is missing."""
    torch = pytest.importorskip("torch", reason="torch is a test-only package of the TF 2.15 "
                                "leg (requirements/test.txt)")
    transformers = pytest.importorskip("transformers", reason="transformers is a test-only "
                                       "package of the TF 2.15 leg (requirements/test.txt)")
    return transformers, torch


def one_line_error(args, env=None):
    """The single 'error:' line of a failing run (no traceback)."""
    code, log = convert(args, expect_ok=False, env=env)
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert code == 1 and "Traceback" not in log and len(errors) == 1, log[-3000:]
    return errors[0]


def model_variables(checkpoint):
    """{name: array} of the model variables of a checkpoint (no slots, no global_step)."""
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if huggingface.is_model_variable(name)}


# ---------------------------------------------------------------------------------------
# This codebase's outputs.

def _logits_before_log_softmax(scope):
    ops = [op for op in tf.get_default_graph().get_operations()
           if op.type == "LogSoftmax" and op.name.startswith(scope + "/")]
    assert len(ops) == 1, [op.name for op in ops]
    return ops[0].inputs[0]


def tf_outputs(config_file, checkpoint, batch, with_heads=(), num_labels=None):
    """This codebase's outputs for a batch (ids, mask, segments: int32 [B, S]).

    Returns a dict: sequence [B, S, H], pooled [B, H], layers (list of [B, S, H]), and per
    head mlm [B, S, V], nsp [B, 2], classifier [B, C] logits. Fails when the graph has a
    variable the checkpoint lacks.
    """
    config = modeling.BertConfig.from_json_file(config_file)
    ids, mask, segments = batch
    with tf.Graph().as_default():
        model = modeling.BertModel(config, False, tf.constant(ids), tf.constant(mask),
                                   tf.constant(segments))
        fetch = {"sequence": model.get_sequence_output(), "pooled": model.get_pooled_output(),
                 "layers": model.get_all_encoder_layers()}
        batch_size, seq_length = ids.shape
        if "mlm" in with_heads:
            positions = np.tile(np.arange(seq_length, dtype=np.int32), [batch_size, 1])
            zeros = np.zeros_like(positions)
            heads.get_masked_lm_output(config, model.get_sequence_output(),
                                       model.get_embedding_table(), tf.constant(positions),
                                       tf.constant(zeros), tf.constant(zeros, tf.float32))
            fetch["mlm"] = tf.reshape(_logits_before_log_softmax("cls/predictions"),
                                      [batch_size, seq_length, -1])
        if "nsp" in with_heads:
            heads.get_next_sentence_output(config, model.get_pooled_output(),
                                           tf.zeros([batch_size], tf.int32))
            fetch["nsp"] = _logits_before_log_softmax("cls/seq_relationship")
        if "classifier" in with_heads:  # run_classifier.create_model's output layer
            weights = tf.get_variable("output_weights", [num_labels, config.hidden_size])
            bias = tf.get_variable("output_bias", [num_labels])
            fetch["classifier"] = tf.nn.bias_add(
                tf.matmul(model.get_pooled_output(), weights, transpose_b=True), bias)
        tvars = tf.trainable_variables()
        assignment, loaded = modeling.get_assignment_map_from_checkpoint(tvars, checkpoint)
        assert [v.name for v in tvars if v.name not in loaded] == []
        tf.train.init_from_checkpoint(checkpoint, assignment)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return sess.run(fetch)


def padded(sequences, seq_length, with_segments=True):
    """(ids, mask, segments) int32 [B, S] for token-id lists, padded with id 0."""
    ids = np.zeros([len(sequences), seq_length], np.int32)
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = 1
        if with_segments:
            segments[row, len(sequence) // 2:len(sequence)] = 1
    return ids, mask, segments


def hf_outputs(model_class, folder, batch):
    """transformers' outputs for the same batch: (model, loading info, dict of arrays)."""
    transformers, torch = hf_packages()
    cls = getattr(transformers, model_class)
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    model.eval()
    ids, mask, segments = (torch.tensor(a, dtype=torch.long) for a in batch)
    with torch.no_grad():
        bert = model if model_class == "BertModel" else model.bert
        base = bert(input_ids=ids, attention_mask=mask, token_type_ids=segments,
                    output_hidden_states=True)
        out = {"sequence": base.last_hidden_state.numpy(), "pooled": base.pooler_output.numpy(),
               "layers": [h.numpy() for h in base.hidden_states[1:]]}
        if model_class != "BertModel":
            full = model(input_ids=ids, attention_mask=mask, token_type_ids=segments)
            if model_class == "BertForPreTraining":
                out["mlm"] = full.prediction_logits.numpy()
                out["nsp"] = full.seq_relationship_logits.numpy()
            else:
                out["classifier"] = full.logits.numpy()
    return model, info, out


def assert_close(ours, theirs, names):
    for name in names:
        a, b = np.asarray(ours[name]), np.asarray(theirs[name])
        assert a.shape == b.shape, (name, a.shape, b.shape)
        assert np.max(np.abs(a - b)) < TOLERANCE, (name, float(np.max(np.abs(a - b))))


def assert_no_missing_or_unexpected(info):
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info.get("mismatched_keys"), info


# ---------------------------------------------------------------------------------------
# --to=hf

def test_pretraining_export_has_the_files_and_config_transformers_expects(pretrained_tiny,
                                                                          pretrained_tiny_hf):
    config_file, _, vocab = pretrained_tiny
    out, log = pretrained_tiny_hf
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors",
                                       "special_tokens_map.json", "tokenizer_config.json",
                                       "vocab.txt"]
    with open(os.path.join(out, "vocab.txt"), "rb") as a, open(vocab, "rb") as b:
        assert a.read() == b.read()
    config = json.load(open(os.path.join(out, "config.json")))
    ours = json.load(open(config_file))
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert config["hidden_act"] == "gelu"  # gelu_exact here is transformers' gelu
    assert config["layer_norm_eps"] == 1e-12 and config["pad_token_id"] == 0
    for key in ("hidden_size", "num_hidden_layers", "vocab_size", "max_position_embeddings"):
        assert config[key] == ours[key]
    tokenizer = json.load(open(os.path.join(out, "tokenizer_config.json")))
    assert tokenizer["do_lower_case"] is False and tokenizer["strip_accents"] is False
    assert tokenizer["tokenize_chinese_chars"] is True
    assert tokenizer["model_max_length"] == ours["max_position_embeddings"]
    card = open(os.path.join(out, "README.md")).read()
    assert "BertForPreTraining" in card and "100 tokens" in card
    assert "optimizer slots and counters left out" in log


def test_pretraining_export_matches_transformers_on_a_padded_batch(pretrained_tiny,
                                                                   pretrained_tiny_hf):
    hf_packages()
    config_file, checkpoint, _ = pretrained_tiny
    rng = np.random.RandomState(3)
    batch = padded([rng.randint(5, 100, size=n) for n in (16, 9, 3, 12)], 16)
    ours = tf_outputs(config_file, checkpoint, batch, with_heads=("mlm", "nsp"))
    model, info, theirs = hf_outputs("BertForPreTraining", pretrained_tiny_hf[0], batch)
    assert_no_missing_or_unexpected(info)
    assert model.config.hidden_act == "gelu"
    assert_close(ours, theirs, ["sequence", "pooled", "mlm", "nsp"])
    # The tied decoder is the word embedding matrix and the head's bias.
    decoder = model.cls.predictions.decoder
    assert decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert np.array_equal(decoder.bias.detach().numpy(),
                          model_variables(checkpoint)["cls/predictions/output_bias"])


def test_export_names_match_transformers_own_state_dict(pretrained_tiny_hf, nsmc_hf_export,
                                                        tmp_path):
    transformers, _ = hf_packages()
    from safetensors.numpy import load_file
    for folder in (pretrained_tiny_hf[0], nsmc_hf_export[0]):
        config = transformers.AutoConfig.from_pretrained(folder)
        cls = getattr(transformers, config.architectures[0])
        target = str(tmp_path / config.architectures[0])
        cls(config).save_pretrained(target)
        theirs = load_file(os.path.join(target, "model.safetensors"))
        ours = load_file(os.path.join(folder, "model.safetensors"))
        assert sorted(ours) == sorted(theirs)
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_classifier_export_matches_run_classifier(nsmc_finetuned, nsmc_hf_export):
    transformers, torch = hf_packages()
    out, log, flags = nsmc_hf_export
    assert "Task NSMC" in log and "feature cache" in log
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["hidden_act"] == "gelu_new"  # the tanh GELU of run_classifier's config
    assert config["num_labels"] == 2 and config["id2label"] == {"0": "0", "1": "1"}
    assert config["label2id"] == {"0": 0, "1": 1}

    # The predicted NSMC test rows, tokenized by transformers from the export and padded
    # to the batch's longest row: the same ids, logits and probabilities.
    split = tasks.get_processor("nsmc").read_split(nsmc_finetuned["data"], "test")
    texts = [example.text for example in split.examples]
    ours_tokenizer = tokenization.FullTokenizer(flags["vocab_file"], do_lower_case=False)
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(out)
    encoded = hf_tokenizer(texts, truncation=True, max_length=int(flags["max_seq_length"]))
    ids = [ours_tokenizer.convert_tokens_to_ids(
        ["[CLS]"] + ours_tokenizer.tokenize(t)[:int(flags["max_seq_length"]) - 2] + ["[SEP]"])
        for t in texts]
    assert encoded["input_ids"] == ids
    batch = padded(ids, max(len(s) for s in ids), with_segments=False)
    ours = tf_outputs(flags["bert_config_file"],
                      os.path.join(nsmc_finetuned["output"], "model.ckpt-7"), batch,
                      with_heads=("classifier",), num_labels=2)
    model, info, theirs = hf_outputs("BertForSequenceClassification", out, batch)
    assert_no_missing_or_unexpected(info)
    assert_close(ours, theirs, ["sequence", "pooled", "classifier"])
    probabilities = np.loadtxt(os.path.join(nsmc_finetuned["output"], "test_results.tsv"))
    softmax = torch.softmax(torch.tensor(theirs["classifier"]), dim=-1).numpy()
    assert probabilities.shape == softmax.shape == (len(texts), 2)
    assert np.max(np.abs(softmax - probabilities)) < TOLERANCE


# ---------------------------------------------------------------------------------------
# --to=tf and the round trip

@needs_safetensors
def test_round_trip_is_bit_identical_and_loads_in_run_pretraining(pretrained_tiny,
                                                                  pretrained_tiny_hf,
                                                                  tmp_path):
    config_file, checkpoint, vocab = pretrained_tiny
    out = str(tmp_path / "tf")
    _, log = convert(["--to=tf", "--hf_dir=%s" % pretrained_tiny_hf[0], "--output_dir=%s" % out])
    assert "masked-LM head, next-sentence head" in log and "gelu_exact" in log
    before, after = model_variables(checkpoint), model_variables(out + "/bert_model.ckpt")
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype
        assert before[name].tobytes() == after[name].tobytes(), name
    assert json.load(open(out + "/bert_config.json")) == json.load(open(config_file))
    with open(out + "/vocab.txt", "rb") as a, open(vocab, "rb") as b:
        assert a.read() == b.read()

    data = write_records(tmp_path / "d.tfrecord", 16)
    code, log = run_pretraining(flags_for(out + "/bert_config.json", data, str(tmp_path / "p"),
                                          2, do_train=True,
                                          init_checkpoint=out + "/bert_model.ckpt"))
    assert code == 0, log[-3000:]
    assert "Loaded %d of %d trainable variables" % (len(before), len(before)) in log


def test_classifier_round_trip_and_run_classifier_loads_it(nsmc_finetuned, nsmc_hf_export,
                                                           classifier_flags, tmp_path):
    out = str(tmp_path / "tf")
    _, log = convert(["--to=tf", "--hf_dir=%s" % nsmc_hf_export[0], "--output_dir=%s" % out])
    assert "classifier output_weights/output_bias" in log and "gelu_new is the tanh" in log
    before = model_variables(os.path.join(nsmc_finetuned["output"], "model.ckpt-7"))
    after = model_variables(out + "/bert_model.ckpt")
    assert sorted(before) == sorted(after)
    assert all(before[n].tobytes() == after[n].tobytes() for n in before)

    from tiny_models import run_classifier
    flags = [a for a in classifier_flags if not a.startswith("--bert_config_file")]
    _, log = run_classifier(flags + ["--bert_config_file=%s/bert_config.json" % out,
                                     "--task_name=NSMC", "--data_dir=%s" % nsmc_finetuned["data"],
                                     "--output_dir=%s" % (tmp_path / "cls"), "--do_eval",
                                     "--init_checkpoint=%s/bert_model.ckpt" % out])
    assert "Loaded %d of %d trainable variables" % (len(before), len(before)) in log
    results = open(os.path.join(nsmc_finetuned["output"], "eval_results.txt")).read()
    again = open(str(tmp_path / "cls" / "eval_results.txt")).read()
    accuracy = [line for line in results.splitlines() if line.startswith("eval_accuracy")]
    assert accuracy and accuracy[0] in again.splitlines()


def test_tanh_gelu_flag_brings_back_a_tf_trained_model_whose_config_says_gelu(
        nsmc_finetuned, nsmc_hf_export, tmp_path):
    """A model first trained here, published as pytorch_model.bin with hidden_act gelu (as
    snunlp/KR-Medium is): --tanh_gelu restores the tanh GELU and the very checkpoint."""
    import shutil

    from safetensors.numpy import load_file
    _, torch = hf_packages()
    folder = str(tmp_path / "published")
    shutil.copytree(nsmc_hf_export[0], folder)
    tensors = load_file(folder + "/model.safetensors")
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, folder + "/pytorch_model.bin")
    os.remove(folder + "/model.safetensors")
    config = json.load(open(folder + "/config.json"))
    config["hidden_act"] = "gelu"
    huggingface.write_json(folder + "/config.json", config)
    out = str(tmp_path / "tf")
    _, log = convert(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % out,
                      "--tanh_gelu"])
    assert "GELU: gelu (the erf form) kept as the tanh GELU (--tanh_gelu)" in log
    assert "pytorch_model.bin" in log
    assert json.load(open(out + "/bert_config.json")) == json.load(
        open(nsmc_hf_export[2]["bert_config_file"]))
    before = model_variables(os.path.join(nsmc_finetuned["output"], "model.ckpt-7"))
    after = model_variables(out + "/bert_model.ckpt")
    assert all(before[n].tobytes() == after[n].tobytes() for n in before)


@needs_safetensors
def test_bidirectional_tokenizer_export_warns_and_says_so_in_the_model_card(pretrained_tiny,
                                                                            tmp_path):
    config, checkpoint, vocab = pretrained_tiny
    out = str(tmp_path / "hf")
    _, log = convert(["--to=hf", "--init_checkpoint=%s" % checkpoint,
                      "--bert_config_file=%s" % config, "--vocab_file=%s" % vocab,
                      "--do_lower_case=False", "--tokenizer=bidirectional", "--subchar",
                      "--output_dir=%s" % out])
    warnings = [line for line in log.splitlines() if line.startswith("W")]
    assert any("bidirectional WordPiece" in line for line in warnings), log[-2000:]
    assert any("NFKD-decompose" in line for line in warnings), log[-2000:]
    card = open(os.path.join(out, "README.md")).read()
    assert "**Warning:** the model was trained with KR-BERT's bidirectional" in card
    assert "sub-character (NFKD jamo) input" in card


# ---------------------------------------------------------------------------------------
# Bad input: one line each.

def save_variables(prefix, values):
    with tf.Graph().as_default():
        variables = [tf.Variable(value, name=name) for name, value in values.items()]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(variables).save(sess, str(prefix), write_meta_graph=False)
    return str(prefix)


def blocked(tmp_path, module):
    """PYTHONPATH under which ``import module`` fails, as if it were not installed."""
    folder = tmp_path / "blocked"
    folder.mkdir(exist_ok=True)
    (folder / (module + ".py")).write_text("raise ImportError('%s is not installed')\n" % module)
    return {"PYTHONPATH": str(folder)}


def to_hf_args(config, checkpoint, vocab, out, *extra):
    return ["--to=hf", "--init_checkpoint=%s" % checkpoint, "--bert_config_file=%s" % config,
            "--vocab_file=%s" % vocab, "--do_lower_case=False", "--output_dir=%s" % out] + list(
                extra)


def to_tf_args(hf_dir, out):
    return ["--to=tf", "--hf_dir=%s" % hf_dir, "--output_dir=%s" % out]


@needs_safetensors
def test_a_checkpoint_without_bert_variables(pretrained_tiny, tmp_path):
    config, _, vocab = pretrained_tiny
    checkpoint = save_variables(tmp_path / "model.ckpt", {"dense/kernel": np.ones([2, 2])})
    error = one_line_error(to_hf_args(config, checkpoint, vocab, tmp_path / "out"))
    assert error.startswith("error: %s holds no BERT variables" % checkpoint)
    assert "dense/kernel" in error and not (tmp_path / "out").exists()


@needs_safetensors
@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 64}, "bert/embeddings/word_embeddings has shape [100, 32] but %s "
                          "implies [100, 64]"),
    ({"num_hidden_layers": 1}, "holds 16 variable(s) no BERT layout here maps: "
                               "bert/encoder/layer_1/"),
    ({"num_hidden_layers": 3}, "lacks 16 model variable(s): bert/encoder/layer_2/"),
])
def test_a_config_that_does_not_match_the_checkpoint(pretrained_tiny, tmp_path, change, message):
    config, checkpoint, vocab = pretrained_tiny
    wrong = tmp_path / "bert_config.json"
    wrong.write_text(json.dumps(dict(json.load(open(config)), **change)))
    error = one_line_error(to_hf_args(str(wrong), checkpoint, vocab, tmp_path / "out"))
    assert error.startswith("error: %s" % checkpoint)
    assert (message % wrong if "%s" in message else message) in error, error


@needs_safetensors
def test_a_vocabulary_of_another_size(pretrained_tiny, tmp_path):
    config, checkpoint, _ = pretrained_tiny
    error = one_line_error(to_hf_args(config, checkpoint, REPO_VOCAB, tmp_path / "out"))
    assert "has 20000 tokens but %s says vocab_size=100" % config in error


@needs_safetensors
def test_a_classifier_whose_folder_does_not_name_its_task(nsmc_finetuned, classifier_flags,
                                                          tmp_path):
    flags = dict(arg[2:].split("=", 1) for arg in classifier_flags)
    lone = tmp_path / "lone"
    lone.mkdir()
    source = os.path.join(nsmc_finetuned["output"], "model.ckpt-7")
    for suffix in (".index", ".data-00000-of-00001"):
        os.symlink(source + suffix, str(lone / ("model.ckpt-7" + suffix)))
    args = to_hf_args(flags["bert_config_file"], lone / "model.ckpt-7", flags["vocab_file"],
                      tmp_path / "out")
    error = one_line_error(args)
    assert "is a classifier with 2 labels" in error and "pass --task_name" in error
    error = one_line_error(args + ["--task_name=HATE"])
    assert "has 2 output classes but --task_name=HATE has 3 labels" in error


def test_an_hf_folder_of_another_model_type(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    error = one_line_error(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % tmp_path])
    assert error == ("error: %s/config.json: model_type is 'gpt2', not 'bert'; only BERT "
                     "models convert" % folder)


def bert_folder(tmp_path, weights_name, weights=b""):
    folder = tmp_path / "hf"
    folder.mkdir()
    config = {"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 32,
              "type_vocab_size": 2, "initializer_range": 0.02}
    (folder / "config.json").write_text(json.dumps(config))
    first_lines(REPO_VOCAB, folder / "vocab.txt", 100)
    if isinstance(weights, bytes):
        (folder / weights_name).write_bytes(weights)
    else:
        huggingface.save_safetensors(weights, str(folder / weights_name))
    return folder


def test_a_pytorch_bin_without_torch(tmp_path):
    folder = bert_folder(tmp_path, "pytorch_model.bin", b"PK\x03\x04 not read")
    error = one_line_error(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % tmp_path],
                           env=blocked(tmp_path, "torch"))
    assert error.startswith("error: %s/pytorch_model.bin: reading pytorch_model.bin needs "
                            "torch" % folder), error


def test_conversion_without_safetensors_says_how_to_install_it(pretrained_tiny, tmp_path):
    config, checkpoint, vocab = pretrained_tiny
    error = one_line_error(to_hf_args(config, checkpoint, vocab, tmp_path / "out"),
                           env=blocked(tmp_path, "safetensors"))
    assert "needs the safetensors package: pip install safetensors" in error


@needs_safetensors
def test_an_hf_model_with_weights_no_layout_here_maps(pretrained_tiny, pretrained_tiny_hf,
                                                      tmp_path):
    from safetensors.numpy import load_file
    tensors = load_file(os.path.join(pretrained_tiny_hf[0], "model.safetensors"))
    tensors["extra_head.weight"] = np.zeros([2, 32], np.float32)
    folder = bert_folder(tmp_path, "model.safetensors", tensors)
    (folder / "config.json").write_text(open(pretrained_tiny_hf[0] + "/config.json").read())
    error = one_line_error(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % tmp_path])
    assert "holds 1 variable(s) no BERT layout here maps: extra_head.weight" in error


@needs_safetensors
def test_to_tf_refuses_a_vocabulary_shorter_than_vocab_size(pretrained_tiny_hf, tmp_path):
    folder = tmp_path / "hf"
    os.makedirs(str(folder))
    for name in os.listdir(pretrained_tiny_hf[0]):
        if name != "vocab.txt":
            os.symlink(os.path.join(pretrained_tiny_hf[0], name), str(folder / name))
    first_lines(os.path.join(pretrained_tiny_hf[0], "vocab.txt"), folder / "vocab.txt", 95)
    error = one_line_error(to_tf_args(folder, tmp_path / "out"))
    assert error.startswith("error: %s/vocab.txt has 95 tokens but %s/config.json says "
                            "vocab_size=100" % (folder, folder)), error
    assert not (tmp_path / "out").exists()


@needs_safetensors
@pytest.mark.parametrize("index", ['{"weight_map": ', '{"metadata": {}}', '[1, 2]',
                                   '{"weight_map": {"a": "missing.safetensors"}}',
                                   '{"weight_map": {"a": "../hf/config.json"}}'])
def test_an_invalid_safetensors_index_is_one_line(tmp_path, index):
    folder = bert_folder(tmp_path, "model.safetensors.index.json", index.encode("utf-8"))
    error = one_line_error(to_tf_args(folder, tmp_path / "out"))
    assert error.startswith("error: %s/model.safetensors.index.json: " % folder), error

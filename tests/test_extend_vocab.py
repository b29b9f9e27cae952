"""extend_vocab.py, run as a user runs it, on a tiny model with the shipped vocabulary.

The model (2 layers, hidden 32, vocab/vocab_20000.txt) is written here with the pretraining
heads and Adam's slots; its output biases and slots are random, so means and copies are
checked on real numbers. The grown model must give the old model's encoder outputs and
masked-LM logits over the old ids for text without new tokens, hold the means of the old
pieces' rows, and go through convert_checkpoint.py and run_classifier.py.
"""

import bz2
import json
import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import modeling
import optimization
import tokenization
from conftest import mounted_tmpfs
from krbert import cli
from krbert.checkpoints import variables
from krbert.pretraining import heads
from krbert.tf_compat import tf
from krbert.vocab import extend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")
TINY = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02,
        "intermediate_size": 64, "max_position_embeddings": 64, "num_attention_heads": 2,
        "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 20000}
# Words of the news comments the shipped vocabulary splits, a continuation piece, and a
# character it lacks ([UNK]).
NEW_TOKENS = ["클린봇", "유튜버", "댓글부대", "재난지원금", "확진자", "##튜버", "\U0001f9a0"]
SEQ, PREDS = 32, 4


def run_script(script, args, expect_ok=True):
    """Runs a script of the project; returns (returncode, stdout, stderr)."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
                          timeout=600, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if expect_ok and done.returncode != 0:
        pytest.fail("%s failed:\n%s" % (script, done.stderr[-4000:]), pytrace=False)
    return done.returncode, done.stdout, done.stderr


def one_line_error(args):
    """The single 'error: ...' line of a refused extend_vocab.py run."""
    code, _, err = run_script("extend_vocab.py", args, expect_ok=False)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def write_model(folder, config=TINY):
    """A pretraining checkpoint (encoder, both heads, Adam slots, global_step) and its config;
    returns (config path, checkpoint prefix)."""
    config_path = os.path.join(folder, "bert_config.json")
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    bert_config = modeling.BertConfig.from_dict(config)
    rng = np.random.RandomState(7)
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        ids = tf.constant(rng.randint(5, 100, size=(2, SEQ)), tf.int32)
        positions = tf.constant([[1, 2, 3, 4]] * 2, tf.int32)
        model = modeling.BertModel(bert_config, is_training=True, input_ids=ids)
        mlm_loss, _, _ = heads.get_masked_lm_output(
            bert_config, model.get_sequence_output(), model.get_embedding_table(), positions,
            tf.ones([2, PREDS], tf.int32), tf.ones([2, PREDS]))
        nsp_loss, _, _ = heads.get_next_sentence_output(
            bert_config, model.get_pooled_output(), tf.zeros([2], tf.int32))
        optimization.create_optimizer(mlm_loss + nsp_loss, 1e-3, 10, 1, False)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for var in tf.global_variables():
                if "output_bias" in var.op.name or "adam_" in var.op.name:
                    var.load(rng.normal(size=var.shape.as_list()).astype(np.float32), sess)
            tf.train.get_or_create_global_step().load(1234, sess)
            prefix = tf.train.Saver().save(sess, os.path.join(folder, "model.ckpt"),
                                           write_meta_graph=False)
    return config_path, prefix


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("model"))
    return write_model(folder)


@pytest.fixture(scope="module")
def grown(model, tmp_path_factory):
    """extend_vocab.py with NEW_TOKENS listed in a file; returns (output folder, stdout)."""
    config, checkpoint = model
    folder = tmp_path_factory.mktemp("grown")
    tokens = folder / "tokens.txt"
    tokens.write_text("".join(t + "\n" for t in NEW_TOKENS), encoding="utf-8")
    out = str(folder / "out")
    _, stdout, _ = run_script("extend_vocab.py", [
        "--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
        "--init_checkpoint=%s" % checkpoint, "--new_tokens_file=%s" % tokens,
        "--continuation_tokens", "--do_lower_case=False", "--output_dir=%s" % out])
    return out, stdout


def model_outputs(config_file, checkpoint, ids, positions):
    """(sequence output [B, S, H], masked-LM logits [B*P, V]) of a checkpoint, no dropout."""
    config = modeling.BertConfig.from_json_file(config_file)
    with tf.Graph().as_default():
        model = modeling.BertModel(config, is_training=False, input_ids=tf.constant(ids),
                                   input_mask=tf.constant((ids > 0).astype(np.int32)))
        heads.get_masked_lm_output(config, model.get_sequence_output(),
                                   model.get_embedding_table(), tf.constant(positions),
                                   tf.zeros(positions.shape, tf.int32),
                                   tf.ones(positions.shape))
        logits = tf.get_default_graph().get_tensor_by_name("cls/predictions/BiasAdd:0")
        with tf.Session() as sess:
            tf.train.Saver(tf.trainable_variables()).restore(sess, checkpoint)
            return sess.run([model.get_sequence_output(), logits])


def padded_ids(tokenizer, texts):
    """int32 [B, SEQ] ids of [CLS] text [SEP], zero-padded."""
    ids = np.zeros((len(texts), SEQ), np.int32)
    for row, text in enumerate(texts):
        tokens = ["[CLS]"] + tokenizer.tokenize(text)[:SEQ - 2] + ["[SEP]"]
        ids[row, :len(tokens)] = tokenizer.convert_tokens_to_ids(tokens)
    return ids


def test_text_without_new_tokens_gives_identical_outputs(model, grown, data_dir):
    config, checkpoint = model
    out, _ = grown
    old = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    new = tokenization.FullTokenizer(os.path.join(out, "vocab.txt"), do_lower_case=False)
    with open(os.path.join(data_dir, "nsmc", "test.tsv"), encoding="utf-8") as handle:
        texts = [line.split("\t")[1] for line in list(handle)[1:40]]
    texts = [t for t in texts if max(new.convert_tokens_to_ids(new.tokenize(t)) or [0]) < 20000]
    assert len(texts) >= 20
    ids = padded_ids(old, texts)
    assert (padded_ids(new, texts) == ids).all()  # the grown vocabulary keeps every old id
    positions = np.tile(np.arange(1, 1 + PREDS, dtype=np.int32), (len(texts), 1))
    old_seq, old_logits = model_outputs(config, checkpoint, ids, positions)
    new_seq, new_logits = model_outputs(os.path.join(out, "bert_config.json"),
                                        os.path.join(out, "bert_model.ckpt"), ids, positions)
    assert new_logits.shape == (old_logits.shape[0], 20000 + len(NEW_TOKENS))
    assert np.array_equal(new_seq, old_seq)
    assert np.array_equal(new_logits[:, :20000], old_logits)


def test_new_rows_are_the_means_and_every_other_variable_is_unchanged(model, grown):
    _, checkpoint = model
    out, _ = grown
    before = tf.train.load_checkpoint(checkpoint)
    after = tf.train.load_checkpoint(os.path.join(out, "bert_model.ckpt"))
    names = before.get_variable_to_shape_map()
    assert after.get_variable_to_shape_map().keys() == names.keys()
    vocab = tokenization.load_vocab(VOCAB)
    wordpiece = tokenization.WordpieceTokenizer(vocab)
    pieces = [wordpiece.tokenize_word(t) for t in NEW_TOKENS[:5]] + [["##튜", "##버"], ["[UNK]"]]
    assert all(len(p) > 1 for p in pieces[:6])
    ids = [[vocab[p] for p in split] for split in pieces]
    for name in names:
        old, new = before.get_tensor(name), after.get_tensor(name)
        assert new.dtype == old.dtype, name
        if name.startswith(("bert/embeddings/word_embeddings", "cls/predictions/output_bias")):
            assert new.shape[0] == old.shape[0] + len(NEW_TOKENS), name
            assert new[:20000].tobytes() == old.tobytes(), name
            if "adam_" in name:
                assert not new[20000:].any(), name
            else:
                for row, split in enumerate(ids):
                    mean = old[split].astype(np.float64).mean(axis=0).astype(np.float32)
                    assert np.array_equal(new[20000 + row], mean), (name, NEW_TOKENS[row])
        else:
            assert new.tobytes() == old.tobytes(), name
    assert after.get_tensor("global_step") == 1234


def test_the_folder_holds_the_vocabulary_config_and_report(grown):
    out, stdout = grown
    with open(os.path.join(out, "vocab.txt"), encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    with open(VOCAB, encoding="utf-8") as handle:
        old = handle.read().split("\n")[:-1]
    assert lines[:20000] == old and lines[20000:] == NEW_TOKENS + [""]
    config = json.load(open(os.path.join(out, "bert_config.json")))
    assert config == dict(TINY, vocab_size=20000 + len(NEW_TOKENS))
    report = json.load(open(os.path.join(out, "extend_report.json"), encoding="utf-8"))
    assert [row["token"] for row in report["tokens"]] == NEW_TOKENS
    assert report["tokens"][1]["old_pieces"] == ["유", "##튜", "##버"]
    assert report["tokens"][-1]["old_pieces"] == ["[UNK]"]
    assert "listed in" in report["how_chosen"] and "20000 tokens -> 20007" in stdout
    assert not [name for name in os.listdir(os.path.dirname(out)) if ".tmp-" in name]


def test_tokens_chosen_from_a_corpus(model, tmp_path, data_dir):
    config, checkpoint = model
    out = str(tmp_path / "out")
    corpus = os.path.join(data_dir, "corpus", "news_comments.txt")
    _, stdout, _ = run_script("extend_vocab.py", [
        "--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
        "--init_checkpoint=%s" % checkpoint, "--input_file=%s" % corpus,
        "--num_new_tokens=40", "--do_lower_case=False", "--output_dir=%s" % out])
    report = json.load(open(os.path.join(out, "extend_report.json"), encoding="utf-8"))
    rows = report["tokens"]
    assert len(rows) == 40 and [r["id"] for r in rows] == list(range(20000, 20040))
    vocab = tokenization.load_vocab(VOCAB)
    wordpiece = tokenization.WordpieceTokenizer(vocab)
    for row in rows:
        assert row["token"] not in vocab
        assert extend.old_pieces(row["token"], wordpiece) == row["old_pieces"]
        assert len(row["old_pieces"]) > 1 or row["old_pieces"] == ["[UNK]"]
    frequencies = [r["frequency"] for r in rows]
    assert frequencies == sorted(frequencies, reverse=True) and frequencies[-1] > 0
    before, after = report["eval_before"], report["eval_after"]
    assert after["tokens_per_line"] < before["tokens_per_line"]
    assert after["unk_rate"] <= before["unk_rate"]
    assert "chosen from" in report["how_chosen"] and "most often produced" in stdout


def subchar_vocab(folder):
    """The shipped vocabulary with its Hangul syllables NFKD-decomposed, as a sub-character
    model's are (same size: a token whose decomposition repeats an earlier one becomes
    [unusedN])."""
    path = os.path.join(str(folder), "vocab_subchar.txt")
    tokens, seen = [], set()
    with open(VOCAB, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            token = line.rstrip("\n")
            if any("\uac00" <= char <= "\ud7a3" for char in token):  # Hangul syllables
                token = unicodedata.normalize("NFKD", token)
            tokens.append("[unused%d]" % number if token in seen else token)
            seen.add(token)
    assert len(set(tokens)) == len(tokens) == 20000
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(token + "\n" for token in tokens))
    return path


def test_subchar_tokens_are_decomposed_like_the_text(model, tmp_path):
    """A sub-character model reads NFKD jamo: a syllable token is stored decomposed, so
    the grown vocabulary tokenizes decomposed text with it."""
    config, checkpoint = model
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("클린봇\n", encoding="utf-8")
    out = str(tmp_path / "out")
    run_script("extend_vocab.py", [
        "--vocab_file=%s" % subchar_vocab(tmp_path), "--bert_config_file=%s" % config,
        "--init_checkpoint=%s" % checkpoint, "--new_tokens_file=%s" % tokens,
        "--subchar", "--do_lower_case=False", "--output_dir=%s" % out])
    added = open(os.path.join(out, "vocab.txt"), encoding="utf-8").read().split("\n")[20000]
    assert added == unicodedata.normalize("NFKD", "클린봇") != "클린봇"
    full = tokenization.FullTokenizer(os.path.join(out, "vocab.txt"), do_lower_case=False,
                                      subchar=True)
    assert full.tokenize("클린봇 최고") [0] == added


def test_bidirectional_ranks_new_tokens_after_the_old_ones(model, tmp_path):
    """New ids follow the old ones, so for the bidirectional tokenizer every new token ranks
    below every old one; a word that is a new token takes it whole."""
    config, checkpoint = model
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("확진자\n유튜버\n", encoding="utf-8")
    out = str(tmp_path / "out")
    run_script("extend_vocab.py", [
        "--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
        "--init_checkpoint=%s" % checkpoint, "--new_tokens_file=%s" % tokens,
        "--tokenizer=bidirectional", "--do_lower_case=False", "--output_dir=%s" % out])
    full = tokenization.FullTokenizer(os.path.join(out, "vocab.txt"), do_lower_case=False,
                                      tokenizer="bidirectional")
    assert full.convert_tokens_to_ids(full.tokenize("확진자 유튜버")) == [20000, 20001]
    report = json.load(open(os.path.join(out, "extend_report.json"), encoding="utf-8"))
    old = tokenization.FullTokenizer(VOCAB, do_lower_case=False, tokenizer="bidirectional")
    assert report["tokens"][0]["old_pieces"] == old.tokenize("확진자")


@pytest.mark.parametrize("lines, continuation, expected", [
    (["클린봇", "유튜버", "클린봇"], False, "tokens.txt:3: token '클린봇' is listed twice "
     "(first at"),
    (["영화"], False, "tokens.txt:1: token '영화' is already in the vocabulary (id"),
    (["[URL]"], False, "has the form of a special token"),
    (["클린 봇"], False, "token '클린 봇' holds whitespace"),
    (["##튜버"], False, "is a word-internal piece, never matched at a word's start; write "
     "튜버 to add the word, or pass --continuation_tokens"),
    (["##"], True, "is an empty piece"),
    (["코로나19!"], False, "becomes 코로나19 ! after the basic tokenizer"),
])
def test_bad_tokens_are_refused_with_file_and_line(lines, continuation, expected, tmp_path):
    path = str(tmp_path / "tokens.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    vocab = tokenization.load_vocab(VOCAB)
    with pytest.raises(cli.InputError) as caught:
        extend.check_new_tokens(extend.read_token_file(path), vocab, False, continuation)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_refusals_are_one_line(model, tmp_path):
    config, checkpoint = model
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("클린봇\n클린봇\n", encoding="utf-8")
    base = ["--vocab_file=%s" % VOCAB, "--init_checkpoint=%s" % checkpoint,
            "--do_lower_case=False", "--new_tokens_file=%s" % tokens]
    line = one_line_error(base + ["--bert_config_file=%s" % config,
                                  "--output_dir=%s" % (tmp_path / "a")])
    assert "tokens.txt:2: token '클린봇' is listed twice" in line
    assert not os.path.exists(str(tmp_path / "a"))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(TINY, num_hidden_layers=3)))
    line = one_line_error(base + ["--bert_config_file=%s" % other,
                                  "--output_dir=%s" % (tmp_path / "d")])
    assert "has 2 encoder layers but" in line and "num_hidden_layers=3" in line
    line = one_line_error(base + ["--bert_config_file=%s" % config,
                                  "--output_dir=%s" % os.path.dirname(checkpoint)])
    assert "already holds files; give a new folder" in line


@pytest.mark.parametrize("change, words", [
    ({"hidden_size": 64}, ["bert/embeddings/word_embeddings has shape [20000, 32] but"]),
    ({"vocab_size": 19999}, ["vocab_20000.txt has 20000 tokens but", "vocab_size=19999"]),
    ({"num_hidden_layers": 3}, ["has 2 encoder layers but", "num_hidden_layers=3"]),
])
def test_a_config_that_does_not_match_the_model_is_refused(model, tmp_path, change, words):
    """The checks of the vocabulary, config and checkpoint against each other, in this process
    (the refusal as a user sees it: test_refusals_are_one_line)."""
    _, checkpoint = model
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(TINY, **change)))
    with pytest.raises(cli.InputError) as error:
        extend.load_model(VOCAB, str(other), variables.read_variables(checkpoint), checkpoint)
    for word in words:
        assert word in str(error.value), str(error.value)


def test_a_corpus_that_is_not_utf8_is_refused_with_file_line_and_byte(model, tmp_path):
    config, checkpoint = model
    corpus = tmp_path / "domain.txt"
    corpus.write_bytes("좋은 영화였다\n".encode("utf-8") * 3 + b"\xec\xa2 \xff\xfe junk\n")
    line = one_line_error(["--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
                           "--init_checkpoint=%s" % checkpoint, "--input_file=%s" % corpus,
                           "--num_new_tokens=20", "--do_lower_case=False",
                           "--output_dir=%s" % (tmp_path / "out")])
    assert line == ("error: %s:4: not valid UTF-8 (at byte offset 60 of the file); save the "
                    "file as UTF-8 or remove the line" % corpus)
    assert not os.path.exists(str(tmp_path / "out"))
    packed = tmp_path / "domain.txt.bz2"
    packed.write_bytes(bz2.compress("좋은 영화였다\n".encode("utf-8") * 100))
    with pytest.raises(cli.InputError) as caught:
        list(extend.corpus_lines([str(packed)], progress=False))
    assert str(caught.value) == ("%s: a bz2-compressed file, not text; unpack it first "
                                 "(bunzip2 -k) and pass the text" % packed)


def test_subchar_with_a_syllable_vocabulary_is_refused(model, tmp_path):
    vocab = tokenization.load_vocab(VOCAB)
    with pytest.raises(cli.InputError) as caught:
        extend.check_subchar_matches_vocab(True, vocab, VOCAB)
    assert str(caught.value).startswith("%s:" % VOCAB)
    assert "a syllable vocabulary" in str(caught.value)
    assert str(caught.value).endswith("drop --subchar, or pass the sub-character model's "
                                      "vocabulary")
    extend.check_subchar_matches_vocab(False, vocab, VOCAB)
    extend.check_subchar_matches_vocab(True, tokenization.load_vocab(subchar_vocab(tmp_path)),
                                       "subchar")
    config, checkpoint = model
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("클린봇\n", encoding="utf-8")
    line = one_line_error(["--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
                           "--init_checkpoint=%s" % checkpoint, "--new_tokens_file=%s" % tokens,
                           "--subchar", "--do_lower_case=False",
                           "--output_dir=%s" % (tmp_path / "out")])
    assert line == "error: " + str(caught.value)
    assert not os.path.exists(str(tmp_path / "out"))


def test_num_threads_below_one_names_the_flag(model, tmp_path):
    config, checkpoint = model
    line = one_line_error(["--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
                           "--init_checkpoint=%s" % checkpoint, "--input_file=%s" % VOCAB,
                           "--num_new_tokens=20", "--num_threads=0", "--do_lower_case=False",
                           "--output_dir=%s" % (tmp_path / "out")])
    assert line == "error: --num_threads=0: pass 1 or more"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs under tmp_path."""
    yield from mounted_tmpfs(tmp_path / "disk", "size=1m", "the full-disk test")


def test_a_full_disk_is_one_line_and_leaves_nothing(grown, model, small_disk):
    config, checkpoint = model
    tokens = os.path.join(os.path.dirname(grown[0]), "tokens.txt")
    out = small_disk / "out"
    line = one_line_error(["--vocab_file=%s" % VOCAB, "--bert_config_file=%s" % config,
                           "--init_checkpoint=%s" % checkpoint, "--new_tokens_file=%s" % tokens,
                           "--continuation_tokens", "--do_lower_case=False",
                           "--output_dir=%s" % out])
    assert line.startswith("error: %s: could not be written (" % out), line
    assert line.endswith("); check the folder exists, is writable and has free space")
    assert os.listdir(str(small_disk)) == []


def test_the_grown_model_converts_to_hf_and_back_and_fine_tunes(grown, tmp_path, data_dir):
    out, _ = grown
    hf, back = str(tmp_path / "hf"), str(tmp_path / "back")
    data = tmp_path / "hate"
    data.mkdir()
    for split, rows in (("train", 48), ("dev", 16)):
        with open(os.path.join(data_dir, "hate", split + ".tsv"), encoding="utf-8") as handle:
            lines = [next(handle) for _ in range(rows + 1)]
        (data / (split + ".tsv")).write_text("".join(lines), encoding="utf-8")
    finetuned = str(tmp_path / "finetuned")
    run_script("run_classifier.py", [
        "--task_name=HATE", "--do_train", "--do_eval", "--data_dir=%s" % data,
        "--vocab_file=%s/vocab.txt" % out, "--bert_config_file=%s/bert_config.json" % out,
        "--init_checkpoint=%s/bert_model.ckpt" % out, "--do_lower_case=False",
        "--max_seq_length=32", "--train_batch_size=8", "--eval_batch_size=8",
        "--num_train_epochs=1", "--output_dir=%s" % finetuned])
    results = open(os.path.join(finetuned, "eval_results.txt")).read()
    assert "eval_macro_f1" in results
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    run_script("convert_checkpoint.py", [
        "--to=hf", "--init_checkpoint=%s/bert_model.ckpt" % out,
        "--bert_config_file=%s/bert_config.json" % out, "--vocab_file=%s/vocab.txt" % out,
        "--do_lower_case=False", "--output_dir=%s" % hf])
    assert json.load(open(os.path.join(hf, "config.json")))["vocab_size"] == 20007
    run_script("convert_checkpoint.py", ["--to=tf", "--hf_dir=%s" % hf, "--tanh_gelu",
                                         "--output_dir=%s" % back])
    first = tf.train.load_checkpoint(os.path.join(out, "bert_model.ckpt"))
    again = tf.train.load_checkpoint(os.path.join(back, "bert_model.ckpt"))
    names = again.get_variable_to_shape_map()
    assert "cls/predictions/output_bias" in names and len(names) > 30
    for name in names:
        assert again.get_tensor(name).tobytes() == first.get_tensor(name).tobytes(), name
    assert open(os.path.join(back, "vocab.txt"), "rb").read() == open(
        os.path.join(out, "vocab.txt"), "rb").read()

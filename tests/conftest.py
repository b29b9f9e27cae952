"""Shared fixtures: the project root on sys.path, the data folders and the trained models.

Data: DATA_DIR when it is set; otherwise data/ when it holds the full data; otherwise the
shipped sample data/sample/. Every test that reads data runs on the sample; the checks that
need the full data (``full_data_dir``) or the published KR-BERT vocabularies
(``krbert_dir``) are skipped with their reason when those are missing, and the closing
lines of the run count what was left out.

Trained models, session fixtures built once per test run and shared by every module and
every pytest-xdist worker (tests/tiny_models.py: ``built_once``, under a file lock in the
run's temporary root). Read them, never change them: copy one to ``tmp_path`` first;
and never give one's folder as a script's --output_dir, which a run claims while it runs.

- ``classifier_flags``: run_classifier.py's flags for the tiny model (a list of "--flag=v").
- ``nsmc_finetuned``: {"data", "output", "log"} of run_classifier.py trained, evaluated and
  predicting on NSMC's first rows; the checkpoint is output/model.ckpt-7.
- ``nsmc_saved_model``: the SavedModel base folder of two exports of it (versions 1, 2).
- ``nsmc_hf_export``: (folder, stderr, {flag: value}) of its Hugging Face export.
- ``pretrained_tiny``: (config, checkpoint prefix, vocabulary) of 20 pretraining steps.
- ``pretrained_tiny_hf``: (folder, stderr) of its Hugging Face export.

To build another shared model, write a session fixture here on ``tiny_models.built_once``;
the helpers that run the scripts and write tiny inputs are in tests/tiny_models.py.

Markers: ``data`` (set here on every test that reads the data folder) and ``slow`` (the few
long end-to-end runs, e.g. a killed run's restart: ``FAST=1 scripts/test.sh`` leaves them
out; the default run keeps them). The tests are safe to run in parallel (pytest -n): each
writes only under its tmp_path, and picks free ports.
"""

import json
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import tiny_models  # noqa: E402  (tests/, beside this file)

SAMPLE_DIR = os.path.join(ROOT, "data", "sample")
NEEDS_FULL_DATA = "needs the full data"
NEEDS_KRBERT = "needs the published KR-BERT vocabularies"


def resolve_data_dir():
    """(folder, is_full): DATA_DIR if set, else data/ if it holds the full data, else the
    sample."""
    explicit = os.environ.get("DATA_DIR")
    if explicit:
        path = os.path.abspath(explicit)
    elif os.path.isfile(os.path.join(ROOT, "data", "nsmc", "test.tsv")):
        path = os.path.join(ROOT, "data")
    else:
        path = SAMPLE_DIR
    return path, os.path.realpath(path) != os.path.realpath(SAMPLE_DIR)


def describe_data():
    """One line naming the data the tests read."""
    path, is_full = resolve_data_dir()
    return "%s (%s)" % (path, "full data" if is_full else "the shipped sample")


DATA_MARKER = "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "%s: reads the data folder (DATA_DIR, or data/sample on "
                            "a fresh clone); set on every test that uses the data_dir fixture"
                            % DATA_MARKER)
    config.addinivalue_line("markers", "slow: a long end-to-end run (a killed run's restart, "
                            "a real training); FAST=1 scripts/test.sh leaves these out")


def pytest_collection_modifyitems(items):
    """Marks every test that reads the data folder (through data_dir, directly or by another
    fixture) with ``data``: ``scripts/test.sh -m data`` runs them alone (CI, on the sample)."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(DATA_MARKER)


@pytest.fixture(scope="session")
def data_dir():
    """The data folder: the full data or the sample; fails, never skips, when DATA_DIR
    names a folder without the data."""
    path, _ = resolve_data_dir()
    if not os.path.isfile(os.path.join(path, "nsmc", "test.tsv")):
        pytest.fail(
            "data not found in DATA_DIR=%s: set DATA_DIR to the folder holding nsmc/, hate/, "
            "corpus/ (and krbert/), or unset it to use data/sample" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def is_full_data(data_dir):
    """True on the full data, False on the shipped sample."""
    return resolve_data_dir()[1]


@pytest.fixture(scope="session")
def full_data_dir(data_dir, is_full_data):
    """The full data folder; skips the test (with its reason) on the sample."""
    if not is_full_data:
        pytest.skip("%s (running on data/sample; set DATA_DIR to the full data, see "
                    "scripts/download_data.sh)" % NEEDS_FULL_DATA)
    return data_dir


@pytest.fixture(scope="session")
def krbert_dir(data_dir):
    """The published KR-BERT vocabularies and configs (DATA_DIR/krbert); skips the test
    (with its reason) when they are missing: they are not shipped (licence not stated)."""
    path = os.path.join(data_dir, "krbert")
    if not os.path.isfile(os.path.join(path, "vocab_krmedium_20000.txt")):
        pytest.skip("%s (not shipped: licence not stated; set DATA_DIR to a folder with "
                    "krbert/, see scripts/download_data.sh)" % NEEDS_KRBERT)
    return path


@pytest.fixture
def file_size_limit():
    """``limit(max_bytes)``: a preexec_fn making a child process's writes fail beyond
    ``max_bytes`` per file with EFBIG, as on a full disk (SIGXFSZ ignored)."""
    import resource
    import signal

    def limit(max_bytes):
        def apply():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        return apply

    return limit


def mounted_tmpfs(mount, options, purpose):
    """Mounts a tmpfs with ``options`` on the new folder ``mount`` and yields it; unmounts it
    after (skips the test where mounting is not allowed: it needs root)."""
    import subprocess

    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs for %s (needs root): %s"
                    % (purpose, done.stderr.decode("utf-8", "replace").strip()))
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only file system (a tmpfs mounted ro) under tmp_path: read-only even for root."""
    yield from mounted_tmpfs(tmp_path / "read_only", "ro,size=1m", "a read-only folder")


@pytest.fixture
def kill_after_checkpoint():
    """``kill(command, output_dir, step)``: starts ``command``, SIGKILLs it once
    ``output_dir`` holds a checkpoint of ``step`` or later; returns that checkpoint's step."""
    import signal
    import subprocess
    import time

    def latest_step(output_dir):
        try:
            with open(os.path.join(output_dir, "checkpoint")) as handle:
                return int(handle.readline().rsplit("-", 1)[1].strip().strip('"'))
        except (IOError, OSError, IndexError):
            return 0

    def kill(command, output_dir, step):
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 300
            while latest_step(output_dir) < step and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
        return latest_step(output_dir)

    return kill


def shipped_or_published(request, name, shipped):
    """``shipped`` (a file in the repository) for ``name`` "shipped", else the published
    KR-BERT file DATA_DIR/krbert/``name``: the test is skipped, with its reason, without it."""
    if name == "shipped":
        return shipped
    return os.path.join(request.getfixturevalue("krbert_dir"), name)


def skip_counts(skipped_reports):
    """{what they need: count} of skipped test reports: the full data, the KR-BERT
    vocabularies, or else the skip's own reason."""
    counts = {}
    for report in skipped_reports:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        reason = reason.split("Skipped: ", 1)[-1]
        for group in (NEEDS_FULL_DATA, NEEDS_KRBERT):
            if reason.startswith(group):
                reason = group
        counts[reason] = counts.get(reason, 0) + 1
    return counts


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """After pytest's own summary (with -rs, every skip and its reason): one line counting
    the checks left out, by reason, and the data the run read."""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    counts = skip_counts(skipped)
    if counts:
        parts = ", ".join("%d (%s)" % (count, reason) for reason, count in sorted(counts.items()))
        line = "%d check%s left out: %s" % (len(skipped), "s"[:len(skipped) != 1], parts)
    else:
        line = "no check left out"
    terminalreporter.write_line("%s; data: %s" % (line, describe_data()))


# ---------------------------------------------------------------------------------------
# Trained models, built once per test run (tests/tiny_models.py: built_once) and shared by
# every module and pytest-xdist worker. Tests read them; a test that changes one works on
# its own copy (shutil.copytree to its tmp_path).

@pytest.fixture(scope="session")
def classifier_flags(tmp_path_factory):
    """run_classifier.py's flags for the tiny model (2 layers, 32 wide, the shipped
    vocabulary, 64 tokens, batches of 8, 1 epoch at 1e-3)."""
    def build(folder):
        config = str(folder / "bert_config_tiny.json")
        with open(config, "w") as handle:
            json.dump(tiny_models.TINY_CONFIG, handle)
        return ["--bert_config_file=%s" % config,
                "--vocab_file=%s" % tiny_models.REPO_VOCAB,
                "--do_lower_case=False", "--max_seq_length=64", "--train_batch_size=8",
                "--eval_batch_size=8", "--predict_batch_size=8", "--learning_rate=1e-3",
                "--num_train_epochs=1", "--save_checkpoints_steps=1000"]
    return tiny_models.built_once(tmp_path_factory, "classifier_flags", build)


@pytest.fixture(scope="session")
def nsmc_finetuned(tmp_path_factory, data_dir, classifier_flags):
    """run_classifier.py on NSMC with ``classifier_flags``: train (60 examples, 7 steps), eval
    (24) and predict (40: the first 34 test rows, the 3 empty documents, 3 quoted ones).
    {"data": its data folder, "output": its output folder (model.ckpt-7), "log": stderr}."""
    def build(folder):
        data = folder / "data"
        data.mkdir()
        real = os.path.join(data_dir, "nsmc")
        tiny_models.head(os.path.join(real, "train.tsv"), str(data / "train.tsv"), 60)
        tiny_models.head(os.path.join(real, "dev.tsv"), str(data / "dev.tsv"), 24)
        with open(os.path.join(real, "test.tsv"), encoding="utf-8") as handle:
            rows = handle.readlines()
        empty = [r for r in rows[1:] if r.split("\t")[1] == ""]
        quoted = [r for r in rows[1:] if r.split("\t")[1].startswith('"')][:3]
        assert len(empty) == 3 and len(quoted) == 3
        tiny_models.head(os.path.join(real, "test.tsv"), str(data / "test.tsv"), 34,
                         empty + quoted)
        output = str(folder / "out")
        _, log = tiny_models.run_classifier(classifier_flags + [
            "--task_name=nsmc", "--data_dir=%s" % data, "--output_dir=%s" % output,
            "--do_train", "--do_eval", "--do_predict"])
        return {"data": str(data), "output": output, "log": log}
    return tiny_models.built_once(tmp_path_factory, "nsmc_finetuned", build)


@pytest.fixture(scope="session")
def nsmc_saved_model(tmp_path_factory, nsmc_finetuned, classifier_flags):
    """The SavedModel base folder of two exports of ``nsmc_finetuned``: versions 1 and 2."""
    def build(folder):
        base, run = str(folder / "nsmc"), str(folder / "run")
        shutil.copytree(nsmc_finetuned["output"], run)  # a run claims its --output_dir
        for _ in range(2):
            tiny_models.run_classifier(classifier_flags + [
                "--task_name=NSMC", "--output_dir=%s" % run, "--do_export",
                "--export_dir=%s" % base])
        return base
    return tiny_models.built_once(tmp_path_factory, "nsmc_saved_model", build)


@pytest.fixture(scope="session")
def nsmc_hf_export(tmp_path_factory, nsmc_finetuned, classifier_flags):
    """convert_checkpoint.py --to=hf of ``nsmc_finetuned``'s model.ckpt-7 (the task read from
    the feature cache beside it): (output folder, stderr, {flag: value} of
    ``classifier_flags``). Skips without the safetensors package."""
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    flags = dict(arg[2:].split("=", 1) for arg in classifier_flags)

    def build(folder):
        out = str(folder / "hf")
        _, log = tiny_models.convert([
            "--to=hf", "--init_checkpoint=%s/model.ckpt-7" % nsmc_finetuned["output"],
            "--bert_config_file=%s" % flags["bert_config_file"],
            "--vocab_file=%s" % flags["vocab_file"], "--do_lower_case=False",
            "--output_dir=%s" % out])
        return [out, log]
    out, log = tiny_models.built_once(tmp_path_factory, "nsmc_hf_export", build)
    return out, log, flags


@pytest.fixture(scope="session")
def pretrained_tiny(tmp_path_factory):
    """20 steps of run_pretraining.py on 32 random records, a tiny model with the exact GELU:
    (config file, checkpoint prefix model.ckpt-20, vocabulary file of 100 tokens: the
    repository vocabulary's first lines)."""
    def build(folder):
        data = tiny_models.write_records(folder / "train.tfrecord", 32)
        config = tiny_models.tiny_config(folder, hidden_act="gelu_exact")
        out = str(folder / "out")
        code, log = tiny_models.run_pretraining(
            tiny_models.flags_for(config, data, out, 20, do_train=True))
        assert code == 0, log[-3000:]
        vocab = tiny_models.first_lines(tiny_models.REPO_VOCAB, folder / "vocab.txt", 100)
        return [config, os.path.join(out, "model.ckpt-20"), vocab]
    return tuple(tiny_models.built_once(tmp_path_factory, "pretrained_tiny", build))


@pytest.fixture(scope="session")
def pretrained_tiny_hf(tmp_path_factory, pretrained_tiny):
    """convert_checkpoint.py --to=hf of ``pretrained_tiny``: (output folder, stderr). Skips
    without the safetensors package."""
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    config, checkpoint, vocab = pretrained_tiny

    def build(folder):
        out = str(folder / "hf")
        _, log = tiny_models.convert([
            "--to=hf", "--init_checkpoint=%s" % checkpoint, "--bert_config_file=%s" % config,
            "--vocab_file=%s" % vocab, "--do_lower_case=False", "--output_dir=%s" % out])
        return [out, log]
    return tuple(tiny_models.built_once(tmp_path_factory, "pretrained_tiny_hf", build))

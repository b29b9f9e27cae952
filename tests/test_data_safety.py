"""The data scripts never lose a file and stop with one line: bad inputs, outputs that would
write over an input, concurrent runs, killed processes and full disks.

create_pretraining_data.py, shard_corpus.py and build_vocab.py run as the user runs them (a
subprocess) on the golden corpus, a slice of the real corpus (DATA_DIR/corpus) or a
synthetic one. The full-disk tests mount a small tmpfs (root only; skipped otherwise).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import mounted_tmpfs
from test_build_vocab import make_corpus, write_lines
from test_create_pretraining_data import CORPUS, VOCAB, make, records

from krbert.corpus import shards as corpus_shards
from krbert.files import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_FLAGS = ["--do_lower_case=False", "--max_seq_length=32", "--dupe_factor=2"]
VOCAB_FLAGS = ["--vocab_size=240", "--min_word_count=1", "--num_threads=1"]


def script(name, args, env=None):
    """Starts one of the scripts; returns the Popen."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, name)] + args, cwd=ROOT,
                            env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(process, timeout=600):
    """(exit status, stderr lines) of a started script."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("%s did not finish in %d s" % (" ".join(process.args), timeout))
    return process.returncode, stderr.decode("utf-8", "replace").strip().splitlines()


def run(name, args, env=None):
    return finish(script(name, args, env))


def assert_one_line_error(result, *fragments):
    status, stderr = result
    assert status == 1, stderr[-20:]
    assert len(stderr) == 1 and stderr[0].startswith("error: "), stderr[-20:]
    for fragment in fragments:
        assert fragment in stderr[0], stderr[0]


def digest(path):
    with open(str(path), "rb") as reader:
        return hashlib.sha256(reader.read()).hexdigest()


def temporaries(folder):
    return sorted(name for name in os.listdir(str(folder)) if atomic.is_temporary_name(name))


# ---------------------------------------------------------------------------------------------
# Outputs that would write over an input.

def test_ctrl_c_that_a_script_does_not_report_itself_is_one_line_and_exit_130():
    # As from a shell: SIGINT raises KeyboardInterrupt wherever the script is.
    code = ("import os, signal, time\n"
            "from krbert import cli\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "def main(_):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(60)\n"
            "cli.run(main)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 130
    assert done.stderr == ("error: interrupted (Ctrl-C); every output is written whole or not "
                           "at all, so rerun the same command\n")


def test_create_pretraining_data_refuses_to_write_over_its_input(tmp_path):
    corpus = tmp_path / "corpus.txt"
    shutil.copy(CORPUS, str(corpus))
    before = digest(corpus)
    result = run("create_pretraining_data.py", SMALL_FLAGS + [
        "--input_file=%s" % corpus, "--output_file=%s" % corpus, "--vocab_file=%s" % VOCAB])
    assert_one_line_error(result, "corpus.txt", "--output_file")
    assert digest(corpus) == before


def test_shard_corpus_refuses_shards_named_like_its_inputs(tmp_path):
    names, _, _ = corpus_shards.shard_corpus([CORPUS], str(tmp_path / "part"), ".txt",
                                             num_shards=2, show_progress=False)
    before = [digest(name) for name in names]
    result = run("shard_corpus.py", ["--input_file=%s" % (tmp_path / "part-*.txt"),
                                     "--output_prefix=%s" % (tmp_path / "part"),
                                     "--num_shards=3"])
    assert_one_line_error(result, "part-00000.txt", "--output_prefix")
    assert [digest(name) for name in names] == before
    assert sorted(os.listdir(str(tmp_path))) == ["part-00000.txt", "part-00001.txt"]


def test_build_vocab_refuses_to_write_over_its_input(tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(200))
    before = digest(corpus)
    result = run("build_vocab.py", VOCAB_FLAGS + ["--input_file=%s" % corpus,
                                                  "--output_file=%s" % corpus])
    assert_one_line_error(result, "corpus.txt", "--output_file")
    assert digest(corpus) == before


# ---------------------------------------------------------------------------------------------
# Bad inputs and flags: one line each.

def test_binary_input_stops_create_pretraining_data(tmp_path):
    binary = tmp_path / "ls"
    shutil.copy("/bin/ls" if os.path.exists("/bin/ls") else sys.executable, str(binary))
    result = run("create_pretraining_data.py", SMALL_FLAGS + [
        "--input_file=%s" % binary, "--output_file=%s" % (tmp_path / "out.tfrecord"),
        "--vocab_file=%s" % VOCAB])
    assert_one_line_error(result, str(binary), "UTF-8")
    assert not os.path.exists(str(tmp_path / "out.tfrecord"))
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("case", ["num_workers", "input_folder", "vocab_folder"])
def test_create_pretraining_data_bad_flags(tmp_path, case):
    folder = tmp_path / "folder"
    folder.mkdir()
    flags = {"input_file": CORPUS, "vocab_file": VOCAB, "output_file": tmp_path / "o.tfrecord"}
    extra = []
    if case == "num_workers":
        extra, expected = ["--num_workers=-1"], "--num_workers=-1"
    else:
        flags[case.split("_")[0] + "_file"] = folder
        expected = "folder"
    result = run("create_pretraining_data.py", SMALL_FLAGS + extra + [
        "--%s=%s" % item for item in sorted(flags.items())])
    assert_one_line_error(result, expected)


@pytest.mark.parametrize("case", ["input_folder", "eval_folder"])
def test_build_vocab_folder_where_a_file_belongs(tmp_path, case):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(200))
    folder = tmp_path / "folder"
    folder.mkdir()
    args = VOCAB_FLAGS + ["--output_file=%s" % (tmp_path / "v.txt")]
    if case == "input_folder":
        args.append("--input_file=%s" % folder)
    else:
        args += ["--input_file=%s" % corpus, "--eval_file=%s" % folder]
    assert_one_line_error(run("build_vocab.py", args), str(folder), "folder")


def test_build_vocab_checks_its_output_before_the_build(tmp_path):
    """An existing folder that cannot be written (/proc, even for root) is the error, not
    the corpus that is too small for the vocabulary, which the build finds after reading it."""
    corpus = write_lines(tmp_path / "corpus.txt", [u"영화 영화가 재미"])
    result = run("build_vocab.py", ["--input_file=%s" % corpus, "--vocab_size=400",
                                    "--output_file=/proc/krbert_vocab_test.txt"])
    assert_one_line_error(result, "/proc: cannot write", "--output_file")


def test_build_vocab_refuses_a_vocab_size_below_the_alphabet(tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(1500))
    result = run("build_vocab.py", ["--input_file=%s" % corpus, "--vocab_size=21",
                                    "--min_word_count=1", "--num_threads=1",
                                    "--output_file=%s" % (tmp_path / "v.txt")])
    assert_one_line_error(result, "--vocab_size=21", "--max_alphabet")
    assert not os.path.exists(str(tmp_path / "v.txt"))


# ---------------------------------------------------------------------------------------------
# Temporary names: concurrent runs and leftovers.

def test_a_second_run_into_a_folder_in_use_stops_in_one_line(tmp_path, big_shard):
    corpus = tmp_path / "corpus.txt"
    shutil.copy(big_shard, str(corpus))
    out = tmp_path / "out"
    args = ["--do_lower_case=False", "--input_file=%s" % corpus, "--output_file=%s/" % out,
            "--vocab_file=%s" % VOCAB, "--num_workers=1"]
    first = script("create_pretraining_data.py", args + ["--dupe_factor=3"])
    _wait_for(lambda: _markers(out), "the first run to claim the folder")
    first.send_signal(signal.SIGSTOP)  # it holds the folder while the second one starts
    try:
        second = run("create_pretraining_data.py", args + ["--dupe_factor=2"])
    finally:
        first.send_signal(signal.SIGCONT)
    marker = _markers(out)[0]
    assert_one_line_error(second, "--output_file=%s is in use by another run (process %d on "
                                  % (out, first.pid), marker)
    result = finish(first)
    assert result[0] == 0, result[1][-20:]
    alone = str(tmp_path / "alone.tfrecord")
    make(str(corpus), alone, dupe_factor=3)
    assert records(str(out / "corpus.tfrecord")) == records(alone)
    assert temporaries(out) == []
    assert sorted(os.listdir(str(out))) == ["corpus.tfrecord", "corpus.tfrecord.json"]


def _markers(folder):
    return [name for name in os.listdir(str(folder)) if name.startswith("in_use.tmp-")] \
        if os.path.isdir(str(folder)) else []


def test_a_rerun_whose_glob_matches_the_earlier_output_names_that_output(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    shutil.copy(CORPUS, str(shards / "a.txt"))
    args = SMALL_FLAGS + ["--input_file=%s/*" % shards, "--output_file=%s/" % shards,
                          "--vocab_file=%s" % VOCAB]
    status, stderr = run("create_pretraining_data.py", args)
    assert status == 0, stderr[-20:]
    before = digest(shards / "a.tfrecord")
    assert_one_line_error(
        run("create_pretraining_data.py", args),
        "--input_file=%s/* matches %s, an output of create_pretraining_data.py (%s.json is its "
        "record); narrow --input_file to the text files" % (shards, shards / "a.tfrecord",
                                                            shards / "a.tfrecord"))
    assert digest(shards / "a.tfrecord") == before


def test_leftover_temporaries_are_cleaned_on_the_next_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    leftovers = [atomic.temporary_name(str(out / "corpus.tfrecord"), dead),
                 atomic.temporary_name(str(out / "corpus.tfrecord.json"), dead),
                 atomic.temporary_name(str(out / "in_use"), dead)]  # a killed run's marker
    for path in leftovers:
        with open(path, "wb") as writer:
            writer.write(b"partial")
    make(CORPUS, str(out) + "/", max_seq_length=32, dupe_factor=2)
    assert temporaries(out) == []
    assert sorted(os.listdir(str(out))) == ["corpus.tfrecord", "corpus.tfrecord.json"]


def _dead_pid():
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------------------------------------
# Killed processes.

def _children(pid):
    """Pids of the live (not zombie) child processes of `pid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as reader:
                fields = reader.read().rsplit(")", 1)[1].split()
        except (IOError, OSError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return found


def _has_open(pid, path):
    """Whether process `pid` has the file `path` open."""
    folder = "/proc/%d/fd" % pid
    try:
        return any(os.readlink(os.path.join(folder, fd)) == path for fd in os.listdir(folder))
    except (IOError, OSError):
        return False


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as reader:
            return reader.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (IOError, OSError):
        return False


def _wait_for(condition, what, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("gave up waiting for " + what)
        time.sleep(0.02)


@pytest.fixture(scope="module")
def big_shard(data_dir, tmp_path_factory):
    """About 1 MB of the real corpus, cut at a line end: a shard that takes a worker a while.
    A smaller corpus (the shipped sample) is repeated, a blank line between the copies."""
    path = tmp_path_factory.mktemp("big") / "b.txt"
    with open(os.path.join(data_dir, "corpus", "news_comments.txt"), "rb") as reader:
        data = reader.read(1 << 20)
    data = data[:data.rindex(b"\n") + 1]
    copies = -(-(1 << 20) // len(data))
    path.write_bytes(b"\n".join([data] * copies))
    assert path.stat().st_size >= 1 << 20
    return str(path)


def test_a_killed_worker_stops_the_run_naming_its_shard(tmp_path, big_shard):
    shards = tmp_path / "shards"
    shards.mkdir()
    shutil.copy(CORPUS, str(shards / "a.txt"))
    shutil.copy(big_shard, str(shards / "b.txt"))
    out = tmp_path / "out"
    args = ["--do_lower_case=False", "--input_file=%s/*.txt" % shards, "--vocab_file=%s" % VOCAB,
            "--output_file=%s/" % out, "--num_workers=1", "--dupe_factor=5"]
    parent = script("create_pretraining_data.py", args)
    reading_b = []
    _wait_for(lambda: reading_b.extend(
        pid for pid in _children(parent.pid) if _has_open(pid, str(shards / "b.txt"))) or
        reading_b, "the worker of shard b")
    assert os.path.exists(str(out / "a.tfrecord.json"))  # one worker: shard a is done
    os.kill(reading_b[0], signal.SIGKILL)
    assert_one_line_error(finish(parent), "b.txt", "killed")
    assert sorted(os.listdir(str(out))) == ["a.tfrecord", "a.tfrecord.json"]
    alone = str(tmp_path / "a_alone.tfrecord")
    make(str(shards / "a.txt"), alone, dupe_factor=5)
    assert records(str(out / "a.tfrecord")) == records(alone)


def test_workers_stop_when_create_pretraining_data_dies(tmp_path, big_shard):
    shards = tmp_path / "shards"
    shards.mkdir()
    for name in ("c.txt", "d.txt"):
        shutil.copy(big_shard, str(shards / name))
    parent = script("create_pretraining_data.py", [
        "--do_lower_case=False", "--input_file=%s/*.txt" % shards, "--vocab_file=%s" % VOCAB,
        "--output_file=%s/" % (tmp_path / "out"), "--num_workers=2", "--dupe_factor=5"])
    _wait_for(lambda: len(_children(parent.pid)) == 2, "two workers")
    workers = _children(parent.pid)
    parent.kill()
    parent.communicate()
    _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to stop")
    # They stopped at once: neither finished its shard (each takes seconds of work).
    assert not [name for name in os.listdir(str(tmp_path / "out"))
                if not atomic.is_temporary_name(name)]


KILL_DURING_WRITE = r"""
import os, runpy, signal, sys
sys.path.insert(0, os.getcwd())
from krbert.files import fs
from krbert.tf_compat import tf
target, write = sys.argv[1], tf.io.gfile.GFile.write

def half_then_die(name, write_it, flush, data):
    if os.path.basename(name).startswith(target):
        write_it(data[:len(data) // 2])
        flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return write_it(data)

def write_half_then_die(self, data):
    return half_then_die(self.name, lambda part: write(self, part), self.flush, data)

class Writer(object):  # a local writer (the standard library's file)
    def __init__(self, handle):
        self.handle = handle
    def write(self, data):
        return half_then_die(self.handle.name, self.handle.write, self.handle.flush, data)
    def __getattr__(self, name):
        return getattr(self.handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *error):
        self.handle.close()

tf.io.gfile.GFile.write = write_half_then_die
def open_file(path, mode, open_local=fs.open_file):
    return Writer(open_local(path, mode)) if "w" in mode else open_local(path, mode)

fs.open_file = open_file
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("target", ["vocab.txt", "vocab.txt.report.json"])
def test_build_vocab_killed_while_writing_keeps_the_previous_files(tmp_path, target):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(1500))
    eval_file = write_lines(tmp_path / "eval.txt", make_corpus(100, seed=3))
    out = tmp_path / "out"
    args = VOCAB_FLAGS + ["--input_file=%s" % corpus, "--output_file=%s" % (out / "vocab.txt"),
                          "--eval_file=%s" % eval_file]
    assert run("build_vocab.py", args + ["--seed=1", "--input_sentence_size=1000"])[0] == 0
    before = {name: digest(out / name) for name in os.listdir(str(out))}
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, target,
                             os.path.join(ROOT, "build_vocab.py")] + args, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert killed.returncode == -signal.SIGKILL
    assert {name: digest(out / name) for name in os.listdir(str(out))
            if not atomic.is_temporary_name(name)} == before
    assert run("build_vocab.py", args)[0] == 0  # the rerun clears the leftover
    assert temporaries(out) == []
    assert digest(out / "vocab.txt") != before["vocab.txt"]  # all lines: a new sample


# ---------------------------------------------------------------------------------------------
# Full disks.

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs under tmp_path."""
    yield from mounted_tmpfs(tmp_path / "disk", "size=1m", "the full-disk test")


def fill(folder):
    """Writes a filler file until the disk of `folder` is full."""
    descriptor = os.open(os.path.join(str(folder), "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def test_full_disk_create_pretraining_data(small_disk):
    output = small_disk / "corpus.tfrecord"
    make(CORPUS, str(output), max_seq_length=32, dupe_factor=2)
    before = {name: digest(small_disk / name) for name in os.listdir(str(small_disk))}
    fill(small_disk)
    result = run("create_pretraining_data.py", SMALL_FLAGS + [
        "--random_seed=7", "--input_file=%s" % CORPUS, "--output_file=%s" % output,
        "--vocab_file=%s" % VOCAB])
    assert_one_line_error(result, str(output), "No space left")
    assert {name: digest(small_disk / name) for name in before} == before
    assert temporaries(small_disk) == []


def test_full_disk_shard_corpus(small_disk, tmp_path):
    corpus = tmp_path / "corpus.txt"
    with open(CORPUS, "rb") as reader:
        corpus.write_bytes(reader.read() * 20)
    fill(small_disk)
    result = run("shard_corpus.py", ["--input_file=%s" % corpus, "--num_shards=2",
                                     "--output_prefix=%s" % (small_disk / "part")])
    assert_one_line_error(result, str(small_disk / "part-00000.txt"), "No space left")
    assert sorted(os.listdir(str(small_disk))) == ["filler"]


def test_full_disk_build_vocab(small_disk, tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(1500))
    output = small_disk / "vocab.txt"
    output.write_text(u"[PAD]\n[UNK]\n")
    fill(small_disk)
    result = run("build_vocab.py", VOCAB_FLAGS + ["--input_file=%s" % corpus,
                                                  "--output_file=%s" % output])
    assert_one_line_error(result, str(output), "No space left")
    assert output.read_text() == u"[PAD]\n[UNK]\n"
    assert temporaries(small_disk) == []


RESULT_WRITERS = r"""
import os, sys
sys.path.insert(0, os.getcwd())
from krbert import cli
folder, which = sys.argv[1], sys.argv[2]
if which == "run_pretraining":
    import run_pretraining
    writers = [lambda: run_pretraining.write_eval_results({"loss": 1.5}, folder)]
else:
    import numpy as np
    import run_classifier
    from krbert.classifier import metrics, tasks as classifier_tasks
    processor = classifier_tasks.get_processor("hate")
    examples = [classifier_tasks.InputExample(str(i), "text %d" % i, label, i + 2)
                for i, label in enumerate(["none", "hate", "offensive"])]
    split = classifier_tasks.Split("dev", "dev.tsv", examples, True)
    probabilities = np.eye(3)
    report = metrics.classification_report([0, 2, 1], probabilities, processor.labels)
    writers = [lambda: run_classifier.write_eval_results(
                   os.path.join(folder, "eval_results.txt"), report, processor.labels, "dev", 7),
               lambda: run_classifier.write_predictions(folder, split, probabilities, processor)]
for write in writers:
    try:
        write()
        print("written")
    except cli.InputError as e:
        print("error: %s" % e)
"""
RESULT_FILES = {"run_classifier": ["eval_results.txt", "test_results.tsv", "predictions.tsv",
                                   "submission.csv"],
                "run_pretraining": ["eval_results.txt"]}


@pytest.mark.parametrize("which", sorted(RESULT_FILES))
def test_full_disk_keeps_the_previous_results(small_disk, which):
    for name in RESULT_FILES[which]:
        (small_disk / name).write_text(u"the previous run's results\n")
    fill(small_disk)
    done = subprocess.run([sys.executable, "-c", RESULT_WRITERS, str(small_disk), which],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = done.stdout.decode("utf-8").splitlines()
    assert done.returncode == 0 and lines, done.stderr.decode("utf-8")[-3000:]
    assert all(line.startswith("error: ") and "No space left" in line for line in lines), lines
    for name in RESULT_FILES[which]:
        assert (small_disk / name).read_text() == u"the previous run's results\n"
    assert temporaries(small_disk) == []

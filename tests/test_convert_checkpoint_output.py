"""convert_checkpoint.py's output folder: written whole, never over a model or an input.

The checkpoints are the session fixtures pretrained_tiny (run_pretraining.py's tiny model) and
pretrained_tiny_hf (its Hugging Face export), in tests/conftest.py.
"""

import os
import subprocess
import sys

import pytest
from test_convert_checkpoint import (ROOT, SCRIPT, convert, needs_safetensors, one_line_error,
                                     to_hf_args, to_tf_args)


def listing(folder):
    """{relative path: bytes} of every file under ``folder``."""
    found = {}
    for parent, _, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, str(folder))] = handle.read()
    return found


@needs_safetensors
@pytest.mark.parametrize("direction", ["hf", "tf"])
def test_a_model_already_in_the_output_folder_is_never_replaced(pretrained_tiny, pretrained_tiny_hf,
                                                                tmp_path, direction):
    config, checkpoint, vocab = pretrained_tiny
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text(u"{}")
    (out / "pytorch_model.bin").write_bytes(b"an older model")
    before = listing(out)
    args = (to_hf_args(config, checkpoint, vocab, out) if direction == "hf"
            else to_tf_args(pretrained_tiny_hf[0], out))
    assert one_line_error(args) == (
        "error: --output_dir=%s already holds 2 file(s) (config.json, pytorch_model.bin); give "
        "a new or empty folder (nothing there is replaced)" % out)
    assert listing(out) == before and sorted(os.listdir(str(tmp_path))) == ["model"]
    for name in os.listdir(str(out)):
        os.remove(str(out / name))
    convert(args)  # an empty folder is filled
    assert "vocab.txt" in os.listdir(str(out)) and "pytorch_model.bin" not in os.listdir(str(out))


@needs_safetensors
def test_an_output_folder_that_is_an_input_is_refused_and_left_as_it_was(
        pretrained_tiny, pretrained_tiny_hf, tmp_path):
    config, checkpoint, vocab = pretrained_tiny
    hf_dir = pretrained_tiny_hf[0]
    before = listing(hf_dir)
    assert one_line_error(to_tf_args(hf_dir, hf_dir)) == (
        "error: %s: --output_dir would write over this input (--hf_dir); write the output "
        "elsewhere" % hf_dir)
    link = tmp_path / "link"
    os.symlink(hf_dir, str(link))
    assert one_line_error(to_tf_args(hf_dir, link)).startswith(
        "error: %s: --output_dir would write over this input (--hf_dir)" % hf_dir)
    assert one_line_error(to_hf_args(config, checkpoint, hf_dir + "/vocab.txt", link)) == (
        "error: %s/vocab.txt: --output_dir would write over this input (--vocab_file); write "
        "the output elsewhere" % hf_dir)
    assert listing(hf_dir) == before and sorted(os.listdir(str(tmp_path))) == ["link"]


KILL_AFTER_VOCAB = r"""
import os, runpy, signal, sys
sys.path.insert(0, os.getcwd())
from krbert.checkpoints import huggingface
copy_vocab = huggingface.copy_vocab

def copy_then_die(vocab_file, output_dir):
    copy_vocab(vocab_file, output_dir)
    os.kill(os.getpid(), signal.SIGKILL)

huggingface.copy_vocab = copy_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@needs_safetensors
@pytest.mark.parametrize("direction", ["hf", "tf"])
def test_a_conversion_killed_midway_leaves_no_model_and_the_next_one_clears_it(
        pretrained_tiny, pretrained_tiny_hf, tmp_path, direction):
    config, checkpoint, vocab = pretrained_tiny
    out = tmp_path / "model"
    args = (to_hf_args(config, checkpoint, vocab, out) if direction == "hf"
            else to_tf_args(pretrained_tiny_hf[0], out))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_VOCAB, SCRIPT] + args, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = os.listdir(str(tmp_path))
    assert len(left) == 1 and left[0].startswith("model.tmp-"), left  # no model folder
    assert "vocab.txt" in os.listdir(str(tmp_path / left[0]))
    _, log = convert(args)
    assert os.listdir(str(tmp_path)) == ["model"]
    assert "Removed %s, left by a run that died" % (tmp_path / left[0]) in log


@needs_safetensors
@pytest.mark.parametrize("direction", ["hf", "tf"])
def test_a_full_disk_is_one_line_and_leaves_no_folder(pretrained_tiny, pretrained_tiny_hf, tmp_path,
                                                      file_size_limit, direction):
    config, checkpoint, vocab = pretrained_tiny
    out = tmp_path / "model"
    args = (to_hf_args(config, checkpoint, vocab, out) if direction == "hf"
            else to_tf_args(pretrained_tiny_hf[0], out))
    done = subprocess.run([sys.executable, SCRIPT] + args, cwd=ROOT, timeout=300,
                          preexec_fn=file_size_limit(20000), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(errors) == 1, \
        done.stderr[-3000:]
    assert errors[0].startswith("error: %s: could not be written (" % out), errors[0]
    assert os.listdir(str(tmp_path)) == []


@needs_safetensors
def test_a_read_only_output_folder_is_one_line(pretrained_tiny, read_only_folder):
    config, checkpoint, vocab = pretrained_tiny
    error = one_line_error(to_hf_args(config, checkpoint, vocab, read_only_folder / "model"))
    assert error.startswith("error: %s: could not be written (" % (read_only_folder / "model"))
    assert "Read-only file system" in error and os.listdir(str(read_only_folder)) == []


def test_a_cloud_storage_output_is_refused_in_one_line(tmp_path):
    assert one_line_error(to_tf_args(tmp_path, "gs://bucket/model")) == (
        "error: --output_dir=gs://bucket/model: the converter writes a local folder; convert "
        "to a local folder, then copy it (gsutil -m cp -r)")


@needs_safetensors
def test_the_written_files_have_the_default_mode(pretrained_tiny_hf):
    mask = os.umask(0)
    os.umask(mask)
    for name in os.listdir(pretrained_tiny_hf[0]):
        mode = os.stat(os.path.join(pretrained_tiny_hf[0], name)).st_mode & 0o777
        assert mode == 0o666 & ~mask, (name, oct(mode))
    assert os.stat(pretrained_tiny_hf[0]).st_mode & 0o777 == 0o777 & ~mask

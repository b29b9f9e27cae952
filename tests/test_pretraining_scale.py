"""run_pretraining.py at scale, on this machine's CPU: gradient accumulation on one device
and on two CPU replicas against one batch, one seed giving one model on any device count,
float16 against float32, and XLA against none.

The runs share the fixture of tests/test_distributed_training.py (one device, STEPS steps
from one initial checkpoint, no dropout), and its tolerance: every model variable and Adam
slot within RTOL of the variable's largest value.
"""

import os
import re
import subprocess

import numpy as np
import pytest

from krbert.checkpoints import huggingface
from krbert.estimator import distribution
from krbert.tf_compat import tf
from test_distributed_training import NOISE_ONLY, ROOT, RTOL, STEPS, flags, logged_losses
from test_distributed_training import pretraining
from test_distributed_training import run as run_script

__all__ = ["pretraining"]  # the shared fixture


def run(script, args, env=None, expect_ok=True):
    """run_script with room for a busy machine (each run trains a few steps)."""
    return run_script(script, args, env=env, expect_ok=expect_ok, timeout=1200)


def checkpoint_values(folder):
    checkpoint = tf.train.latest_checkpoint(folder)
    assert checkpoint, folder
    return {name: tf.train.load_variable(checkpoint, name)
            for name, _ in tf.train.list_variables(checkpoint)}


def assert_same_model(expected_dir, got_dir, rtol=RTOL):
    """The variables the two last checkpoints share are within ``rtol`` (the attention key
    biases, pure rounding noise, below 1e-6); returns the names only ``got_dir`` holds."""
    expected, got = checkpoint_values(expected_dir), checkpoint_values(got_dir)
    assert set(expected) <= set(got)
    assert any(name.endswith("/adam_m") for name in expected)
    for name, want in sorted(expected.items()):
        if NOISE_ONLY in name:
            assert np.max(np.abs(got[name])) < 1e-6, name
            continue
        scale = max(float(np.max(np.abs(want))), 1e-30)
        assert np.max(np.abs(got[name] - want)) <= rtol * scale, (
            name, float(np.max(np.abs(got[name] - want))) / scale)
    return sorted(set(got) - set(expected))


@pytest.mark.parametrize("extra", [{"gradient_accumulation_steps": 2},
                                   {"gradient_accumulation_steps": 2, "num_cpu_replicas": 2}])
def test_accumulated_micro_batches_match_one_batch(pretraining, extra):
    out = str(pretraining["tmp"] / ("accumulate_%d" % len(extra)))
    _, log = run("run_pretraining.py", flags(dict(pretraining["flags"], output_dir=out,
                                                  **extra)))
    assert "Each update: 2 micro-batches of 8" in log
    extras = assert_same_model(pretraining["one_device"], out)
    assert extras and all(not huggingface.is_model_variable(name) for name in extras)
    assert "grad_accum_micro_steps" in extras
    values = checkpoint_values(out)
    assert values["global_step"] == STEPS and values["grad_accum_micro_steps"] == 0
    assert [int(step) for step, *_ in logged_losses(log)] == list(range(1, STEPS + 1))


def test_one_seed_gives_one_model_on_one_device_and_two_replicas(pretraining):
    """No checkpoint: both runs start from the weights --seed=7 gives."""
    values = dict(pretraining["flags"], seed=7)
    del values["init_checkpoint"]
    one, two = (str(pretraining["tmp"] / name) for name in ("seed_one", "seed_two"))
    run("run_pretraining.py", flags(dict(values, output_dir=one)))
    run("run_pretraining.py", flags(dict(values, output_dir=two, num_cpu_replicas=2)))
    assert assert_same_model(one, two) == []
    # and not the initial checkpoint's weights
    assert not np.allclose(checkpoint_values(one)["bert/embeddings/word_embeddings"],
                           checkpoint_values(pretraining["one_device"])[
                               "bert/embeddings/word_embeddings"], atol=1e-3)


XLA_RTOL = 1e-4
"""XLA against no XLA, the logged losses: XLA fuses and reorders the float32 arithmetic, so
the two runs differ by rounding."""

XLA_MODEL_RTOL = 1e-3
"""XLA against no XLA, the variables after the steps: Adam divides each update by the root of
its second moment, which magnifies that rounding where a gradient is near 0 (up to 1.1e-4 of
a variable's scale measured on TensorFlow 1.15, from run to run)."""


def test_xla_gives_the_losses_and_model_of_no_xla(pretraining):
    out = str(pretraining["tmp"] / "xla")
    _, log = run("run_pretraining.py", flags(dict(pretraining["flags"], output_dir=out,
                                                  xla_jit=True)))
    assert_same_model(pretraining["one_device"], out, rtol=XLA_MODEL_RTOL)
    want = [[float(v) for v in row[1:]] for row in logged_losses(pretraining["log"])]
    got = [[float(v) for v in row[1:]] for row in logged_losses(log)]
    assert len(got) == STEPS
    np.testing.assert_allclose(got, want, rtol=XLA_RTOL)


FP16_STEPS = 20
FP16_RTOL = 0.01
"""float16 against float32 from one checkpoint: every logged loss of FP16_STEPS steps within
1% (float16 keeps 11 bits; the losses here are 4-5)."""


def test_float16_follows_float32_from_one_checkpoint(pretraining):
    values = dict(pretraining["flags"], num_train_steps=FP16_STEPS, log_every_n_steps=1)
    logs = {}
    for name, extra in (("fp32", {}), ("fp16", {"use_fp16": True})):
        _, logs[name] = run("run_pretraining.py", flags(dict(
            values, output_dir=str(pretraining["tmp"] / name), **extra)),
            env={distribution.FP16_ON_CPU_VARIABLE: "1"})
    fp32, fp16 = ([[float(v) for v in row[1:]] for row in logged_losses(logs[name])]
                  for name in ("fp32", "fp16"))
    assert len(fp16) == len(fp32) == FP16_STEPS
    np.testing.assert_allclose(fp16, fp32, rtol=FP16_RTOL)
    # Resuming the float32 run in float16 is refused before any graph, in one line.
    code, log = run("run_pretraining.py", flags(dict(
        values, output_dir=str(pretraining["tmp"] / "fp32"), num_train_steps=FP16_STEPS + 1,
        use_fp16=True)), env={distribution.FP16_ON_CPU_VARIABLE: "1"}, expect_ok=False)
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in log, log[-2000:]
    assert re.search(r"holds a float32 run; resume it without --use_fp16, or start a new "
                     r"--output_dir with --init_checkpoint=\S+model\.ckpt-20 ", errors[0])


@pytest.mark.parametrize("flags_line, env, want", [
    ("fpu avx512f avx512_bf16 amx_tile", {"TF": "2"}, "bfloat16"),
    ("fpu avx512f amx_bf16", {"TF": "2"}, "bfloat16"),
    ("fpu avx512f avx512_bf16", {"TF": "1"}, "float32"),
    ("fpu avx512f avx2", {"TF": "2"}, "float32"),
    ("fpu avx512f avx512_bf16", {"TF": "2", "PRECISION": "float32"}, "float32"),
])
def test_cpu_script_picks_bfloat16_where_the_cpu_and_tensorflow_have_it(tmp_path, flags_line,
                                                                        env, want):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: %s\n" % flags_line)
    done = subprocess.run(
        ["bash", "scripts/pretrain_cpu.sh"], cwd=ROOT, universal_newlines=True,
        env=dict(os.environ, INPUT="/tmp/x.tfrecord", DRY_RUN="1",
                 CPUINFO=str(cpuinfo), **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("precision: %s " % want), lines[0]
    assert ("--use_bfloat16=%s" % ("true" if want == "bfloat16" else "false")) in lines[-1]

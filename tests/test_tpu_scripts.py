"""The TPU job scripts as a user runs them, without a network: scripts/pretrain_tpu.sh
and scripts/continue_pretraining.sh with USE_TPU=1, driven against a fake ``gcloud`` on
PATH (it records its calls) and a fake python on the VM side (it records its command
line and environment).

Every bad setting is refused in one line before the first gcloud call (nothing is
created or billed); the run goes create, copy, set-up and smoke job, long run; a failed
smoke job stops there with its last lines.
"""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TPU_ENV = {"BUCKET": "gs://krbert-bucket", "TPU_NAME": "krbert-tpu",
           "TPU_ZONE": "europe-west4-a", "GCP_PROJECT": "krbert-project"}

FAKE_GCLOUD = r"""#!/usr/bin/env bash
# Records each call (arguments joined by a tab) in $GCLOUD_LOG.
(IFS=$'\t'; echo "$*") >> "$GCLOUD_LOG"
case "$*" in
  *" describe "*) exit "${FAKE_DESCRIBE_RC:-1}" ;;
  *"STAGE=smoke"*) exit "${FAKE_SMOKE_RC:-0}" ;;
  *"cat krbert/pretrain_tpu.status"*) echo "${FAKE_STATUS:-0}" ;;
esac
exit 0
"""

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Records its arguments (one per line, then a blank line) and TPU_LOAD_LIBRARY; fails
# with FAKE_FAIL=1 when run for the smoke job.
{ printf '%s\n' "$@"; echo "TPU_LOAD_LIBRARY=${TPU_LOAD_LIBRARY:-unset}"; echo; } >> "$PYTHON_LOG"
case "$*" in
  *krbert_smoke*)
    if [ "${FAKE_FAIL:-0}" = 1 ]; then
      for i in $(seq 1 40); do echo "log line $i"; done
      echo "RuntimeError: the last line of the smoke job"
      exit 1
    fi ;;
esac
exit 0
"""


@pytest.fixture
def fakes(tmp_path):
    """A bin folder with the fake gcloud and python, and the paths of their logs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("gcloud", FAKE_GCLOUD), ("python", FAKE_PYTHON)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    return {"bin": str(bin_dir), "gcloud_log": tmp_path / "gcloud.log",
            "python": str(bin_dir / "python"), "python_log": tmp_path / "python.log",
            "tmp": tmp_path}


def run_tpu_script(fakes, name="pretrain_tpu.sh", args=(), **env):
    environment = dict(os.environ, **TPU_ENV)
    environment.update(PATH="%s:%s" % (fakes["bin"], os.environ["PATH"]),
                       GCLOUD_LOG=str(fakes["gcloud_log"]),
                       PYTHON_LOG=str(fakes["python_log"]), TMPDIR=str(fakes["tmp"]),
                       SMOKE_LOG=str(fakes["tmp"] / "smoke.log"), POLL_SECS="1")
    for key in ("DRY_RUN", "DELETE", "ON_TPU_VM", "STAGE", "PYTHON", "ACCELERATOR", "RUNTIME",
                "INIT_CHECKPOINT", "TRAIN_BATCH_SIZE", "USE_TPU", "INPUT", "OUTPUT_DIR",
                "BERT_CONFIG", "SMOKE_STEPS", "SMOKE_DIR", "BATCH", "STEPS", "WARMUP", "LR",
                "MAX_SEQ", "MAX_PRED", "TF"):
        environment.pop(key, None)
    environment.update(env)
    environment = {key: value for key, value in environment.items() if value is not None}
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", name)] + list(args),
                          cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def gcloud_calls(fakes):
    """The fake gcloud's calls, each a list of its arguments."""
    if not fakes["gcloud_log"].exists():
        return []
    return [line.split("\t") for line in fakes["gcloud_log"].read_text().splitlines()]


def python_runs(fakes):
    """The fake python's runs on the 'VM': [(arguments, TPU_LOAD_LIBRARY)]."""
    if not fakes["python_log"].exists():
        return []
    runs = []
    for block in fakes["python_log"].read_text().split("\n\n"):
        lines = block.strip().splitlines()
        if lines:
            runs.append((lines[:-1], lines[-1].split("=", 1)[1]))
    return runs


def assert_one_line_refusal(proc, fakes, starts):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: " + starts), lines[0]
    assert "line " not in lines[0] and "syntax error" not in proc.stderr
    assert gcloud_calls(fakes) == []  # nothing created, nothing billed
    return lines[0]


# ---------------------------------------------------------------------------------------
# scripts/pretrain_tpu.sh: the checks before the first gcloud call


@pytest.mark.parametrize("env, starts, words", [
    ({"ACCELERATOR": "v3-0"}, "ACCELERATOR=v3-0 ", ["v3-8"]),
    ({"ACCELERATOR": "v3-8abc"}, "ACCELERATOR=v3-8abc ", ["v3-8"]),
    ({"ACCELERATOR": "v3-08"}, "ACCELERATOR=v3-08 ", ["v3-8"]),
    ({"ACCELERATOR": "v3-16"}, "ACCELERATOR=v3-16 ", ["multiple of 32"]),
    ({"ACCELERATOR": "v5p-8"}, "ACCELERATOR=v5p-8:", ["pjrt", "90807"]),
    ({"ACCELERATOR": "v5litepod-8"}, "ACCELERATOR=v5litepod-8:", ["pjrt"]),
    ({"BUCKET": "gs://"}, "BUCKET=gs:// ", ["names no bucket"]),
    ({"BUCKET": "gs://my bucket"}, "BUCKET=gs://my bucket ", ["no spaces"]),
    ({"BUCKET": "gs://My_Bucket"}, "BUCKET=gs://My_Bucket ", ["lower-case"]),
    ({"BUCKET": "gs://krbert-bucket/data"}, "BUCKET=gs://krbert-bucket/data ",
     ["bucket alone"]),
    ({"TRAIN_BATCH_SIZE": "0"}, "TRAIN_BATCH_SIZE=0 ", ["positive whole number"]),
    ({"TRAIN_BATCH_SIZE": "-64"}, "TRAIN_BATCH_SIZE=-64 ", ["positive whole number"]),
    ({"TRAIN_BATCH_SIZE": "abc"}, "TRAIN_BATCH_SIZE=abc ", ["positive whole number"]),
    ({"TRAIN_BATCH_SIZE": "60"}, "TRAIN_BATCH_SIZE=60 ", ["multiple of the 8 TPU cores"]),
    ({"ACCELERATOR": "v4-8", "TRAIN_BATCH_SIZE": "6"}, "TRAIN_BATCH_SIZE=6 ",
     ["multiple of the 4 TPU cores of v4-8"]),
    ({"INIT_CHECKPOINT": "models/krbert_medium/model.ckpt-2000000"},
     "INIT_CHECKPOINT=models/krbert_medium/model.ckpt-2000000 must be on gs://",
     ["the TPU reads", "Cloud Storage only", "gsutil cp"]),
    ({"RUNTIME": "tpu-vm-tf-2.15.1-pjrt"}, "RUNTIME=tpu-vm-tf-2.15.1-pjrt:",
     ["stream executor"]),
    ({"RUNTIME": "tpu-vm-tf-2.15.1-se", "ACCELERATOR": "v3-32"},
     "RUNTIME=tpu-vm-tf-2.15.1-se is a one-host runtime", ["pod-se"]),
    ({"SMOKE_STEPS": "few"}, "SMOKE_STEPS=few ", ["SMOKE_STEPS=20"]),
    ({"INPUT": "/data/*.tfrecord"}, "INPUT=/data/*.tfrecord ", ["gs://"]),
])
def test_pretrain_tpu_refuses_bad_settings_in_one_line_before_gcloud(fakes, env, starts,
                                                                      words):
    message = assert_one_line_refusal(run_tpu_script(fakes, **env), fakes, starts)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("accelerator, cores, pod", [
    ("v2-8", 8, False), ("v3-8", 8, False), ("v3-32", 32, True), ("v4-8", 4, False),
    ("v4-32", 16, True)])
def test_pretrain_tpu_accepts_v2_to_v4_with_their_se_runtime_and_core_count(
        fakes, accelerator, cores, pod):
    proc = run_tpu_script(fakes, DRY_RUN="1", ACCELERATOR=accelerator)
    assert proc.returncode == 0, proc.stderr
    runtime = "tpu-vm-tf-2.15.1-pod-se" if pod else "tpu-vm-tf-2.15.1-se"
    assert "--version=%s" % runtime in proc.stdout.split()
    long_run = [line for line in proc.stdout.splitlines()
                if line.startswith("  .venv-tpu/bin/python run_pretraining.py")][-1]
    assert "--num_tpu_cores=%d" % cores in long_run.split()
    assert ("--tpu_name=krbert-tpu" if pod else "--tpu_name=local") in long_run.split()
    assert "--use_bfloat16=true" in long_run.split()
    assert gcloud_calls(fakes) == []  # DRY_RUN=1 only prints


# ---------------------------------------------------------------------------------------
# scripts/pretrain_tpu.sh from a workstation: create, copy, smoke job, long run, delete


def test_pretrain_tpu_creates_copies_smoke_tests_then_starts_and_prints_the_delete(fakes):
    proc = run_tpu_script(fakes, args=["--do_eval=true"])
    assert proc.returncode == 0, proc.stderr
    calls = gcloud_calls(fakes)
    verbs = [call[3] for call in calls]
    assert verbs == ["describe", "create", "scp", "ssh", "ssh"], calls
    assert "--version=tpu-vm-tf-2.15.1-se" in calls[1]
    smoke, start = calls[3][-1], calls[4][-1]
    assert "TPU_VM=1 TF=2 scripts/setup.sh" in smoke and "STAGE=smoke" in smoke
    assert "--do_eval=true" in smoke and "STAGE=train" in start and "nohup" in start
    assert "pretrain_tpu.status" in start
    delete = [line for line in proc.stdout.splitlines() if "tpu-vm delete" in line]
    assert len(delete) == 1 and "gcloud compute tpus tpu-vm delete krbert-tpu" in delete[0]
    assert "--zone=europe-west4-a --project=krbert-project" in delete[0]


def test_pretrain_tpu_with_delete_waits_for_the_run_then_deletes_the_vm(fakes):
    proc = run_tpu_script(fakes, DELETE="1", FAKE_STATUS="0")
    assert proc.returncode == 0, proc.stderr
    calls = gcloud_calls(fakes)
    assert [call[3] for call in calls][-1] == "delete", calls
    assert calls[-1][4] == "krbert-tpu" and "--quiet" in calls[-1]
    assert any("cat krbert/pretrain_tpu.status" in call[-1] for call in calls[:-1])
    assert "The run ended with status 0" in proc.stdout


@pytest.mark.parametrize("delete", ["0", "1"])
def test_pretrain_tpu_stops_when_the_smoke_job_fails(fakes, delete):
    proc = run_tpu_script(fakes, FAKE_SMOKE_RC="1", DELETE=delete)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "smoke job failed on TPU VM krbert-tpu" in errors[0], \
        proc.stderr
    verbs = [call[3] for call in gcloud_calls(fakes)]
    assert verbs.count("ssh") == 1  # no long run started
    if delete == "1":
        assert verbs[-1] == "delete"
    else:
        assert "delete" not in verbs and "tpu-vm delete krbert-tpu" in proc.stderr


# ---------------------------------------------------------------------------------------
# scripts/pretrain_tpu.sh on the TPU VM: smoke job, then the long run


def test_on_the_vm_the_smoke_job_runs_first_into_a_scratch_folder(fakes):
    proc = run_tpu_script(fakes, ON_TPU_VM="1", PYTHON=fakes["python"], SMOKE_STEPS="20",
                          SMOKE_DIR="gs://krbert-bucket/krbert_smoke/test")
    assert proc.returncode == 0, proc.stderr
    (smoke, smoke_library), (run, run_library) = python_runs(fakes)
    assert smoke[0] == "run_pretraining.py" and run[0] == "run_pretraining.py"
    # Later flags override earlier ones: the smoke job's output and steps come last.
    assert smoke[-4:] == ["--output_dir=gs://krbert-bucket/krbert_smoke/test",
                          "--num_train_steps=20", "--iterations_per_loop=10",
                          "--save_checkpoints_steps=20"]
    assert "--output_dir=gs://krbert-bucket/krbert_medium" in run
    assert "--num_train_steps=2000000" in run and not [a for a in run if "smoke" in a]
    for args in (smoke, run):
        assert "--use_bfloat16=true" in args and "--tpu_name=local" in args
    assert smoke_library == run_library == "unset"  # one host: the TPU opened in-process


def test_on_a_pod_slice_the_run_sets_tpu_load_library_0(fakes):
    proc = run_tpu_script(fakes, ON_TPU_VM="1", PYTHON=fakes["python"], ACCELERATOR="v3-32",
                          SMOKE_STEPS="0")
    assert proc.returncode == 0, proc.stderr
    ((run, library),) = python_runs(fakes)  # SMOKE_STEPS=0: no smoke job
    assert library == "0" and "--tpu_name=krbert-tpu" in run


def test_on_the_vm_a_failed_smoke_job_stops_with_its_last_lines(fakes):
    proc = run_tpu_script(fakes, ON_TPU_VM="1", PYTHON=fakes["python"], FAKE_FAIL="1")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: the smoke job (20 steps into gs://krbert-bucket/"
                               "krbert_smoke/"), lines
    assert "the long run was not started" in lines[0]
    assert lines[-1] == "RuntimeError: the last line of the smoke job"
    assert "log line 40" in lines and "log line 1" not in lines  # the last lines only
    assert len(python_runs(fakes)) == 1  # no long run


# ---------------------------------------------------------------------------------------
# scripts/continue_pretraining.sh


def a_checkpoint(tmp_path):
    """A folder with the files a checkpoint prefix model.ckpt-10 and its config leave."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.ckpt-5.index", "model.ckpt-10.index", "bert_config.json"):
        (folder / name).write_text("{}")
    return folder


TPU_CONTINUATION = {"USE_TPU": "1", "BUCKET": "my-bucket", "TPU_NAME": None, "TPU_ZONE": None,
                    "GCP_PROJECT": None, "INPUT": "gs://my-bucket/domain/*.tfrecord",
                    "INIT_CHECKPOINT": "gs://my-bucket/krbert_medium/model.ckpt-2000000"}


def test_continue_pretraining_on_tpu_runs_as_documented(fakes):
    """The header's and docs/continue_pretraining.md's TPU command, on the TPU VM: the
    checkpoint and its default config on gs://, not checked as local files; TensorFlow
    2.15's environment of the TPU VM and the TPU of this VM."""
    proc = run_tpu_script(fakes, "continue_pretraining.sh", DRY_RUN="1", **TPU_CONTINUATION)
    assert proc.returncode == 0, proc.stderr
    command = proc.stdout.strip().splitlines()[-1].split()
    assert command[:2] == [".venv-tpu/bin/python", "run_pretraining.py"], command
    assert "--bert_config_file=gs://my-bucket/krbert_medium/bert_config.json" in command
    assert "--init_checkpoint=gs://my-bucket/krbert_medium/model.ckpt-2000000" in command
    assert "--output_dir=gs://my-bucket/continue_pretraining" in command
    assert "--use_tpu=true" in command and "--tpu_name=local" in command
    assert not [flag for flag in command if flag.startswith(("--tpu_zone", "--gcp_project"))]
    assert gcloud_calls(fakes) == []


@pytest.mark.parametrize("env, tpu_flags, load_library", [
    ({}, ["--tpu_name=local"], "unset"),
    ({"TPU_NAME": "krbert-pod", "TPU_ZONE": "europe-west4-a", "GCP_PROJECT": "krbert-project"},
     ["--tpu_name=krbert-pod", "--tpu_zone=europe-west4-a", "--gcp_project=krbert-project"],
     "0"),
])
def test_continue_pretraining_on_tpu_runs_the_tpu_vm_python(fakes, env, tpu_flags,
                                                           load_library):
    """Not a dry run: the job runs (here the fake python) with the TPU of this VM, or a pod
    slice by name from worker 0 with TPU_LOAD_LIBRARY=0."""
    proc = run_tpu_script(fakes, "continue_pretraining.sh", PYTHON=fakes["python"],
                          **dict(TPU_CONTINUATION, **env))
    assert proc.returncode == 0, proc.stderr
    [(arguments, loads)] = python_runs(fakes)
    assert arguments[0] == "run_pretraining.py" and "--use_tpu=true" in arguments
    assert [flag for flag in arguments if flag.startswith(("--tpu", "--gcp"))] == tpu_flags
    assert loads == load_library and gcloud_calls(fakes) == []


@pytest.mark.parametrize("env, starts, words", [
    ({"INIT_CHECKPOINT": "{model}"}, "INIT_CHECKPOINT={model} is a folder",
     ["INIT_CHECKPOINT={model}/model.ckpt-10"]),
    ({"INIT_CHECKPOINT": "{model}/model.ckpt-3"}, "INIT_CHECKPOINT={model}/model.ckpt-3 not "
     "found", ["model.ckpt-3.index"]),
    ({"INIT_CHECKPOINT": "{tmp}/nowhere/model.ckpt"}, "INIT_CHECKPOINT={tmp}/nowhere/"
     "model.ckpt not found", []),
    ({"BERT_CONFIG": "{tmp}/none.json"}, "BERT_CONFIG={tmp}/none.json not found", []),
    ({"STEPS": "abc"}, "STEPS=abc is not a positive whole number", ["STEPS=1000"]),
    ({"TRAIN_BATCH_SIZE": "abc"}, "TRAIN_BATCH_SIZE=abc is not a positive whole number", []),
    ({"BATCH": "-64"}, "BATCH=-64 is not a positive whole number", []),
    ({"WARMUP": "ten"}, "WARMUP=ten is not a whole number", []),
    ({"LR": "fast"}, "LR=fast is not a learning rate", []),
    ({"USE_TPU": "1", "INPUT": "gs://krbert-bucket/domain/*.tfrecord",
      "INIT_CHECKPOINT": "gs://krbert-bucket/m/model.ckpt", "STEPS": "abc"},
     "STEPS=abc is not a positive whole number", ["STEPS=100000"]),
])
def test_continue_pretraining_blames_the_setting_at_fault_in_one_line(fakes, env, starts,
                                                                      words):
    model = a_checkpoint(fakes["tmp"])
    values = {"INPUT": "/data/*.tfrecord", "INIT_CHECKPOINT": str(model / "model.ckpt-10")}
    values.update(env)
    values = {key: value.format(model=model, tmp=fakes["tmp"])
              for key, value in values.items()}
    proc = run_tpu_script(fakes, "continue_pretraining.sh", DRY_RUN="1", **values)
    message = assert_one_line_refusal(proc, fakes,
                                      starts.format(model=model, tmp=fakes["tmp"]))
    for word in words:
        assert word.format(model=model) in message, message


def test_continue_pretraining_takes_train_batch_size_as_pretrain_tpu_does(fakes):
    model = a_checkpoint(fakes["tmp"])
    proc = run_tpu_script(fakes, "continue_pretraining.sh", DRY_RUN="1", TRAIN_BATCH_SIZE="32",
                          INPUT="/data/*.tfrecord", INIT_CHECKPOINT=str(model / "model.ckpt-10"))
    assert proc.returncode == 0, proc.stderr
    assert "--train_batch_size=32" in proc.stdout.split()

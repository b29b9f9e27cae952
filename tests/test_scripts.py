"""The job scripts' checks that run before any TensorFlow work, and the results summary."""

import os
import subprocess
import sys

import pytest

from krbert.tf_compat import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import make_sample  # noqa: E402
import reproduce_summary  # noqa: E402


def run_script(name, *args, **env):
    proc = subprocess.run([os.path.join(ROOT, "scripts", name)] + list(args), cwd=ROOT,
                          env=dict(os.environ, **env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("script", ["demo.sh", "reproduce_small.sh"])
def test_script_without_data_says_how_to_get_it(tmp_path, script):
    code, out, err = run_script(script, DATA_DIR=str(tmp_path))
    assert code == 1
    assert err.count("\n") == 1, err
    assert "corpus/nsmc_reviews.txt not found" in err and "download_data.sh" in err


def pick_data_dir(cwd, **env):
    """common.sh's pick_data_dir run in ``cwd``; returns (stdout, stderr)."""
    environment = dict((key, value) for key, value in os.environ.items() if key != "DATA_DIR")
    environment.update(env)
    proc = subprocess.run(["bash", "-c", 'source "$0"; pick_data_dir nsmc/train.tsv',
                           os.path.join(ROOT, "scripts", "common.sh")], cwd=str(cwd),
                          env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


def test_scripts_fall_back_to_the_sample_and_say_so(tmp_path):
    out, err = pick_data_dir(tmp_path)
    assert out == "data/sample"
    assert err.count("\n") == 1 and "shipped sample" in err and "download_data.sh" in err
    (tmp_path / "data" / "nsmc").mkdir(parents=True)
    (tmp_path / "data" / "nsmc" / "train.tsv").write_text("id\tdocument\tlabel\n")
    assert pick_data_dir(tmp_path) == ("data", "")
    assert pick_data_dir(tmp_path, DATA_DIR="/elsewhere") == ("/elsewhere", "")


def test_make_sample_cuts_rows_and_whole_documents():
    table = [b"id\tdocument\tlabel\n", b"1\ta\t0\n", b"2\t\t1\n", b"3\tb\t1\n", b"4\t\t0\n"]
    assert make_sample.cut_table(table, 1, False) == table[:2]
    assert make_sample.cut_table(table, 1, True) == table[:3] + table[4:]
    corpus = [b"a\n", b"b\n", b"\n", b"c\n", b"d\n", b"e\n", b"\n", b"f\n"]
    assert make_sample.cut_corpus(corpus, 4, True) == corpus[:6]
    assert make_sample.cut_corpus(corpus, 3, True) == corpus[:3]
    assert make_sample.cut_corpus(corpus, 4, False) == corpus[:4]


SAMPLE = os.path.join(ROOT, "data", "sample")


def test_the_shipped_sample_is_what_make_sample_cuts(full_data_dir, tmp_path):
    written = make_sample.make_sample(full_data_dir, str(tmp_path))
    shipped = sorted(os.path.relpath(os.path.join(folder, name), SAMPLE)
                     for folder, _, names in os.walk(SAMPLE) for name in names
                     if name != "README.md")
    assert sorted(name for name, _, _ in written) == shipped
    assert sum(size for _, _, size in written) < 5e6
    for name, _, _ in written:
        with open(os.path.join(ROOT, "data", "sample", name), "rb") as shipped:
            assert (tmp_path / name).read_bytes() == shipped.read(), name


def test_reproduce_rejects_an_unknown_stage():
    code, _, err = run_script("reproduce_small.sh", "pretrian")
    assert code == 1
    assert "unknown stage 'pretrian'" in err


def test_reproduce_resume_keeps_finished_fine_tuning_runs(tmp_path):
    names = ["nsmc_10_scratch_seed1", "hate_scratch_seed1"]
    for name in names:
        (tmp_path / "finetune" / name).mkdir(parents=True)
        (tmp_path / "finetune" / name / "eval_results.txt").write_text("eval_accuracy = 0.5\n")
    code, out, err = run_script(
        "reproduce_small.sh", "finetune", DATA_DIR=os.path.join(ROOT, "data", "sample"),
        WORK=str(tmp_path), INITS="scratch", SEEDS="1", NSMC_100_SEEDS="", RESUME="1",
        TF="2" if sys.version_info >= (3, 8) else "1")
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith("===")] == [
        "=== %s: finished before, kept (RESUME=1)" % name for name in names]
    for name in names:
        assert (tmp_path / "finetune" / name / "eval_results.txt").read_text() == \
            "eval_accuracy = 0.5\n"


def write_scalars(folder, series):
    """One event file holding {tag: [(step, value), ...]}."""
    writer = tf.summary.FileWriter(str(folder))
    for tag, values in sorted(series.items()):
        for step, value in values:
            summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)])
            writer.add_summary(summary, step)
    writer.close()


def test_reproduce_summary_reports_both_initialisations(tmp_path, capsys):
    pretrain = tmp_path / "pretrain"
    pretrain.mkdir()
    write_scalars(pretrain, {"masked_lm_accuracy": [(1, 0.0), (1000, 0.25), (2000, 0.375)],
                             "masked_lm_loss": [(1, 9.5), (1000, 5.0), (2000, 4.0)]})
    (pretrain / "eval_results.txt").write_text(
        "global_step = 2000\nmasked_lm_accuracy = 0.4\nnext_sentence_accuracy = 0.8\n")
    for run, value in [("nsmc_10_pretrained_seed1", "0.85"), ("nsmc_10_pretrained_seed2", "0.87"),
                       ("nsmc_10_scratch_seed1", "0.8"), ("nsmc_10_scratch_seed2", "0.8"),
                       ("hate_scratch_seed1", "0.5")]:
        (tmp_path / "finetune" / run).mkdir(parents=True)
        (tmp_path / "finetune" / run / "eval_results.txt").write_text(
            "eval_accuracy = %s\neval_macro_f1 = %s\n" % (value, value))
    (tmp_path / "finetune" / "hate_pretrained_seed1").mkdir()  # a run that did not finish
    (tmp_path / "stage_seconds.tsv").write_text(  # pretraining stopped once and resumed
        "pretraining\t240\npretraining\t360\nnsmc_10_pretrained_seed1\t61\n"
        "nsmc_10_pretrained_seed2\t63\nnsmc_10_scratch_seed1\t59\nnsmc_10_scratch_seed2\t59\n")
    (tmp_path / "tasks" / "nsmc_10").mkdir(parents=True)
    (tmp_path / "tasks" / "nsmc_10" / "train.tsv").write_text(
        "id\tdocument\tlabel\n" + "1\tgood\t1\n" * 1200)
    reproduce_summary.main(str(tmp_path))
    out = capsys.readouterr().out
    assert "| steps | 2000 |" in out and "| wall time (all pretraining stages) | 10 min |" in out
    assert "NSMC, first 1,200 rows of train, 3 epochs | test accuracy (?) |" in out
    assert "1000: 0.250, 2000: 0.375" in out
    assert "| 86.00 ± 1.41 (2) | 80.00 ± 0.00 (2) | +6.00 | 62 s / 59 s |" in out
    assert "| n/a | 50.00 (1) | n/a | n/a / n/a |" in out  # HATE: one run of two finished
    assert "| n/a | n/a | n/a | n/a / n/a |" in out  # NSMC 100%: not run
    curve = (tmp_path / "mlm_curve.tsv").read_text().splitlines()
    assert curve == ["step\tmasked_lm_accuracy\tmasked_lm_loss", "1\t0.0000\t9.5000",
                     "1000\t0.2500\t5.0000", "2000\t0.3750\t4.0000"]


def test_the_data_marker_selects_exactly_the_tests_that_read_the_data_folder():
    """CI runs `scripts/test.sh -m data` without DATA_DIR (a fresh clone's sample): every
    test that takes data_dir, even through another fixture, and no other."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
         "-m", "data", "tests/test_data_safety.py", "tests/test_layout.py"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
        env=dict(os.environ, DATA_DIR=""))
    selected = {line.split("[")[0] for line in done.stdout.splitlines() if "::" in line}
    assert "tests/test_data_safety.py::test_a_killed_worker_stops_the_run_naming_its_shard" \
        in selected, done.stdout[-3000:]  # big_shard -> data_dir
    assert not [name for name in selected if "test_layout.py" in name]
    assert "tests/test_data_safety.py::test_build_vocab_refuses_to_write_over_its_input" \
        not in selected


def test_ci_runs_a_fresh_clones_demo_and_data_tests_on_the_sample():
    with open(os.path.join(ROOT, ".ci", "run")) as handle:
        lines = [line.strip() for line in handle if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    assert 'env -u DATA_DIR TF=$tf WORK="runs/ci-demo-tf$tf" scripts/demo.sh' in text
    assert "for tf in 1 2; do" in text
    assert "env -u DATA_DIR TF=2 scripts/test.sh -m data" in text

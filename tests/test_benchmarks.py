"""krbert/benchmarks.py: the benchmark list, the runs' result files and the one table."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from krbert import benchmarks

from tiny_models import ROOT


def write_results(folder, name, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join("%s = %s\n" % item for item in lines))


def test_the_classifier_benchmarks_are_listed_with_their_files_and_headlines(data_dir):
    found = {b.name: b for b in benchmarks.all_benchmarks()}
    assert {"KORNLI", "KORSTS", "KLUE_NLI", "KLUE_STS"} <= set(found)
    assert found["KORSTS"].headline == "spearman" and found["KLUE_STS"].headline == "pearson"
    for benchmark in found.values():
        assert benchmark.headline in benchmark.metrics
        if benchmark.script == "run_classifier.py":
            assert benchmarks.missing_files(benchmark, data_dir) == []  # the sample has them
    command = benchmarks.command(found["KORSTS"], "python", "/d", "/o", ["--seed=3"])
    assert command[:2] == ["python", "run_classifier.py"]
    assert "--data_dir=/d/korsts" in command and "--output_dir=/o" in command
    assert command[-1] == "--seed=3"


def test_select_keeps_the_order_asked_and_names_an_unknown_task():
    listed = benchmarks.all_benchmarks()
    assert [b.name for b in benchmarks.select(listed, ["korsts", "KORNLI"])] == ["KORSTS",
                                                                                "KORNLI"]
    assert benchmarks.select(listed, []) == listed
    with pytest.raises(ValueError, match="unknown KORQUAD9"):
        benchmarks.select(listed, ["KORQUAD9"])


def test_the_table_shows_mean_and_sd_per_split_from_the_result_files(tmp_path):
    korsts = [b for b in benchmarks.all_benchmarks() if b.name == "KORSTS"][0]
    runs = []
    for seed, (dev, test) in enumerate([(0.5, 0.4), (0.7, 0.6)]):
        folder = tmp_path / ("seed%d" % seed)
        write_results(folder, "eval_results.txt", [("spearman", dev), ("pearson", dev),
                                                   ("split", "dev")])
        write_results(folder, "test_eval_results.txt", [("spearman", test), ("split", "test")])
        runs.append(benchmarks.read_results(str(folder)))
    assert runs[0]["dev"]["spearman"] == 0.5 and runs[0]["test"]["split"] == "test"
    lines = benchmarks.table([(korsts, runs)])
    assert lines[0].split() == ["task", "metric", "dev", "test"]
    assert lines[1].split() == ["KORSTS", "spearman", "*", "60.00", "±", "14.14", "(2)",
                                "50.00", "±", "14.14", "(2)"]
    assert lines[2].split()[:2] == ["KORSTS", "pearson"] and lines[2].endswith("-")


def load_evaluate_tasks():
    path = os.path.join(ROOT, "scripts", "evaluate_tasks.py")
    spec = importlib.util.spec_from_file_location("evaluate_tasks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_task_keeps_its_own_sequence_length_unless_one_is_given():
    evaluate_tasks = load_evaluate_tasks()
    korquad = [b for b in benchmarks.all_benchmarks() if b.name == "KorQuAD-carved"][0]

    def lengths(*flags):
        args = evaluate_tasks.parse_args(["--data_dir=/d", "--work=/w", "--bert_config=c",
                                          "--vocab=v"] + list(flags))
        command = benchmarks.command(korquad, "python", "/d", "/o",
                                     evaluate_tasks.run_flags(args, 1))
        return [f for f in command if f.startswith("--max_seq_length=")]

    # The last of a repeated flag is the one the script reads.
    assert lengths()[-1] == "--max_seq_length=384"
    assert lengths("--max_seq_length=", "--learning_rate=")[-1] == "--max_seq_length=384"
    assert lengths("--max_seq_length=256")[-1] == "--max_seq_length=256"
    assert lengths("--max_seq_length=256", "--", "--max_seq_length=192")[-1] == (
        "--max_seq_length=192")


def test_the_transformers_peer_times_its_model_per_op_class():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    # Its own process, as benchmark.sh runs it: the script defines absl flags at import.
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "hf_classifier.py"),
         "--bert_config_file=%s" % os.path.join(ROOT, "vocab", "bert_config_tiny.json"),
         "--profile_length=8", "--batch_size=2", "--threads=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["milliseconds"] > 0
    assert abs(sum(found["shares"].values()) - 1.0) < 1e-6
    assert found["shares"]["matrix products"] > 0.05
    assert set(found["shares"]) <= {"matrix products", "fused attention", "softmax",
                                    "layer norm", "casts and copies", "embedding lookup",
                                    "layout", "element-wise"}

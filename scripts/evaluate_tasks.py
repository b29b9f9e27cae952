"""Fine-tunes one checkpoint on every benchmark whose data is present, then prints one table.

    python scripts/evaluate_tasks.py --data_dir=data --work=runs/evaluate \
        --init_checkpoint=runs/pretrain/model.ckpt-10000 --bert_config=vocab/bert_config_mini.json \
        --vocab=vocab/vocab_20000.txt --seeds="1 2 3" [--tasks="KORNLI KORSTS"] [-- FLAG...]

scripts/evaluate.sh calls it with its environment variables. Each run goes to
WORK/<task>_seed<N> (a run whose result files are there already is kept, not run again);
flags after ``--`` go to every run. The hyper-parameters --max_seq_length,
--train_batch_size, --learning_rate and --num_train_epochs go to every run when given (not
empty); otherwise each task keeps its own (its flags in the registry, then its script's
defaults: KorQuAD's seq 384 is not cut to a classifier's 128).

The table (krbert/benchmarks.py) has one row per task and metric: the mean ± sample
standard deviation over the seeds (their number in brackets) on dev and test, x100; the
headline metric is marked ``*``. It is printed and written to WORK/results.txt.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from krbert import benchmarks  # noqa: E402
from krbert.files import atomic  # noqa: E402

HYPER_PARAMETERS = ("max_seq_length", "train_batch_size", "learning_rate", "num_train_epochs")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--init_checkpoint", default="")
    parser.add_argument("--bert_config", required=True)
    parser.add_argument("--vocab", required=True)
    parser.add_argument("--do_lower_case", default="False")
    parser.add_argument("--seeds", default="1 2 3")
    parser.add_argument("--tasks", default="")
    parser.add_argument("--python", default=sys.executable)
    for name in HYPER_PARAMETERS:
        parser.add_argument("--" + name, default="", help="every run's (default: each task's)")
    parser.add_argument("extra", nargs="*", help="flags for every run (after --)")
    return parser.parse_args(argv)


def run_flags(args, seed):
    """The flags of one run after its task's own: model, seed, the hyper-parameters given,
    then the extra flags (the last of a repeated flag wins)."""
    flags = ["--vocab_file=%s" % args.vocab, "--bert_config_file=%s" % args.bert_config,
             "--do_lower_case=%s" % args.do_lower_case, "--seed=%s" % seed]
    if args.init_checkpoint:
        flags.append("--init_checkpoint=%s" % args.init_checkpoint)
    flags += ["--%s=%s" % (name, getattr(args, name)) for name in HYPER_PARAMETERS
              if getattr(args, name)]
    return flags + list(args.extra)


def main(argv):
    args = parse_args(argv)
    try:
        chosen = benchmarks.select(benchmarks.all_benchmarks(), args.tasks.split())
    except ValueError as e:
        sys.exit("error: %s" % e)
    seeds = args.seeds.split()
    if not seeds:
        sys.exit("error: SEEDS is empty; give one or more seeds, e.g. SEEDS=\"1 2 3\"")
    rows = []
    for benchmark in chosen:
        missing = benchmarks.missing_files(benchmark, args.data_dir)
        if missing:
            print("=== %s: skipped, %s not in DATA_DIR=%s" % (benchmark.name, ", ".join(missing),
                                                           args.data_dir), flush=True)
            continue
        runs = []
        for seed in seeds:
            output_dir = os.path.join(args.work, "%s_seed%s" % (benchmark.name.lower(), seed))
            if not benchmarks.read_results(output_dir):
                cmd = benchmarks.command(benchmark, args.python, args.data_dir, output_dir,
                                         run_flags(args, seed))
                print("=== %s seed %s: %s" % (benchmark.name, seed, " ".join(cmd)), flush=True)
                done = subprocess.run(cmd)
                if done.returncode != 0:
                    sys.exit("error: %s seed %s failed (exit %d); its log is above"
                             % (benchmark.name, seed, done.returncode))
            else:
                print("=== %s seed %s: finished before, kept (%s)" % (benchmark.name, seed,
                                                                      output_dir), flush=True)
            runs.append(benchmarks.read_results(output_dir))
        rows.append((benchmark, runs))
    if not rows:
        sys.exit("error: no benchmark's data is in DATA_DIR=%s (see data/README.md and "
                 "scripts/download_data.sh)" % args.data_dir)
    lines = benchmarks.table(rows)
    header = "init_checkpoint: %s; seeds: %s" % (args.init_checkpoint or "none (random weights)",
                                                 " ".join(seeds))
    text = "\n".join([header] + lines) + "\n"
    os.makedirs(args.work, exist_ok=True)
    atomic.write_text_atomic(os.path.join(args.work, "results.txt"), text)
    print()
    print(text, end="")


if __name__ == "__main__":
    main(sys.argv[1:])

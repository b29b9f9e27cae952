"""The machinery of create_pretraining_data.py (no flags here; shard_corpus.py's is
krbert.corpus.shards).

``run`` expands the inputs, pairs them with outputs, skips the complete ones and makes the
others in forked worker processes, one shard per process (``make_shard``): read and tokenize
the file once, draw the instances (krbert.pretraining.instances.InstanceMaker), write the
TFRecords under a temporary name, rename, write the OUTPUT.json sidecar.

Files go through tf.io.gfile and krbert.files, so gs:// paths work and every output is
complete or absent. Problems the user can fix raise cli.InputError with a one-line message;
so does a worker that dies (killed by a signal, as the out-of-memory killer does).
"""

import gc
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import signal
import sys
import time
import traceback

from tqdm import tqdm

import tokenization
from krbert import cli
from krbert.files import atomic, in_use
from krbert.files import paths as file_paths
from krbert.files import reading as file_reading
from krbert.pretraining import instances as pretraining_instances
from krbert.pretraining import records
from krbert.tf_compat import tf

TOKENIZER_CACHE = 1 << 15
"""Words whose pieces a worker's tokenizer remembers (bounded memory per worker)."""
SIDECAR_FORMAT = 1
TEXT_CHECK_LINES = 4096
"""Lines after which a worker checks that its input is text (and again at its end)."""

# Set in the parent before the worker processes fork, so they share it.
_shared = {}


# ---------------------------------------------------------------------------------------------
# Planning: files, outputs, settings.

def _is_directory(name):
    """Whether an output name stands for a directory."""
    if name.endswith("/"):
        return True
    try:
        return tf.io.gfile.isdir(name)
    except tf.errors.OpError:
        return False


def plan_outputs(inputs, output_spec):
    """Pairs every input with its output files: a list of (input, [outputs]).

    N inputs and N names pair up in order; one input and several names is one job written
    round-robin; several inputs and one name derive a name per input (``derive_names``).
    """
    names = [n.strip() for n in output_spec.split(",") if n.strip()]
    if not names:
        raise cli.InputError("--output_file is empty; pass where to write the examples")
    if len(names) == len(inputs) and not (len(names) == 1 and _is_directory(names[0])):
        jobs = [(path, [name]) for path, name in zip(inputs, names)]
    elif len(inputs) == 1 and len(names) > 1:
        jobs = [(inputs[0], names)]
    elif len(names) == 1:
        jobs = [(path, [name]) for path, name in zip(inputs, derive_names(inputs, names[0]))]
    else:
        raise cli.InputError(
            "--output_file has %d names for %d input files; give one name (or a directory) "
            "or exactly one name per input file" % (len(names), len(inputs)))
    seen = {}
    for path, names_ in jobs:
        for name in names_:
            if name in seen:
                raise cli.InputError(
                    "--output_file: %s would be written twice (from %s and from %s, input files "
                    "of the same name); give one output name per input" % (name, seen[name], path))
            seen[name] = path
    return jobs


def check_no_earlier_output(inputs, input_file):
    """InputError when an input is an output of an earlier run (a file with a sidecar, or
    a sidecar): a glob such as DIR/* that matches what was written into DIR."""
    for path in inputs:
        output = path[:-len(".json")] if path.endswith(".json") else path
        if (output == path or output in inputs) and records.read_sidecar(output) is not None:
            raise cli.InputError(
                "--input_file=%s matches %s, an output of create_pretraining_data.py (%s is its "
                "record); narrow --input_file to the text files"
                % (input_file, output, records.sidecar_name(output)))


def plan(input_file, output_file):
    """(inputs, jobs) of the flags: the input files and the outputs of each (plan_outputs);
    a glob that matches earlier outputs is named as such."""
    inputs = file_paths.glob_input_files(input_file, "--input_file")
    try:
        jobs = plan_outputs(inputs, output_file)
        outputs = [name for _, names in jobs for name in names]
        file_paths.check_outputs_spare_inputs(
            outputs + [records.sidecar_name(name) for name in outputs], inputs,
            "--output_file", "--input_file")
    except cli.InputError:
        check_no_earlier_output(inputs, input_file)
        raise
    return inputs, jobs


def derive_names(inputs, name):
    """Per-input output names from one name: DIR/<stem>.tfrecord or NAME-0000i-of-0000N.EXT."""
    if _is_directory(name):
        directory = name.rstrip("/") or "/"
        return [os.path.join(directory, os.path.splitext(os.path.basename(path))[0] +
                             ".tfrecord") for path in inputs]
    root, ext = os.path.splitext(name)
    return ["%s-%05d-of-%05d%s" % (root, i, len(inputs), ext) for i in range(len(inputs))]


def options_of(settings):
    """pretraining_instances.Options from a settings dict."""
    return pretraining_instances.Options(
        max_seq_length=settings["max_seq_length"],
        max_predictions_per_seq=settings["max_predictions_per_seq"],
        dupe_factor=settings["dupe_factor"], masked_lm_prob=settings["masked_lm_prob"],
        short_seq_prob=settings["short_seq_prob"],
        do_whole_word_mask=settings["do_whole_word_mask"])


def load_tokenizer(vocab_file, settings):
    """The project's FullTokenizer and the ids the algorithm needs; InputError on problems.

    Every worker's tokenizer remembers at most TOKENIZER_CACHE words (bounded memory).
    """
    tokenizer = tokenization.FullTokenizer(
        vocab_file, do_lower_case=settings["do_lower_case"], tokenizer=settings["tokenizer"],
        subchar=settings["subchar"], cache_size=TOKENIZER_CACHE)
    try:
        vocabulary = pretraining_instances.Vocabulary(tokenizer.vocab)
    except KeyError as e:
        raise cli.InputError("%s: the vocabulary has no %s token; pass a BERT vocabulary "
                             "(with [CLS], [SEP] and [MASK])" % (vocab_file, e.args[0]))
    return tokenizer, vocabulary


# ---------------------------------------------------------------------------------------------
# Sidecars and resuming.

def job_key(path, outputs, settings, vocab_sha256):
    """What must match for an existing output to count as done."""
    return {"input_file": path, "input_bytes": tf.io.gfile.stat(path).length,
            "outputs": list(outputs), "settings": settings, "vocab_sha256": vocab_sha256,
            "format": SIDECAR_FORMAT}


def is_complete(outputs, key):
    """Whether every output exists with a sidecar recording `key` and its byte size."""
    for output in outputs:
        sidecar = records.read_sidecar(output)
        if sidecar is None or any(sidecar.get(name) != value for name, value in key.items()):
            return False
        try:
            if tf.io.gfile.stat(output).length != sidecar["bytes"]:
                return False
        except (tf.errors.OpError, OSError):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# One shard (runs in a worker process).

def check_text(path, corpus):
    """InputError when most lines read so far are not valid UTF-8 (a binary file)."""
    if corpus.invalid_lines * 2 > corpus.lines:
        raise cli.InputError("%s: %d of the first %d lines are not valid UTF-8, so this is not "
                             "a text file; pass UTF-8 text, one sentence per line"
                             % (path, corpus.invalid_lines, corpus.lines))


def read_corpus(path, tokenizer, bar):
    """Tokenizes one input file into a pretraining_instances.Corpus."""
    corpus = pretraining_instances.Corpus()
    tokenize, to_ids = tokenizer.tokenize, tokenizer.convert_tokens_to_ids

    def ids_of(text):
        return to_ids(tokenize(text))

    decode = pretraining_instances.decode_line
    for raw in file_reading.read_lines(path, bar.update):
        try:
            corpus.add_line(decode(raw, corpus), ids_of)
        except KeyError as e:
            raise cli.InputError("%s:%d: the tokenizer made %s, which the vocabulary lacks; "
                                 "use a vocabulary with it" % (path, corpus.lines, e))
        if corpus.lines == TEXT_CHECK_LINES:
            check_text(path, corpus)
    check_text(path, corpus)
    corpus.end_document()
    return corpus


def write_examples(maker, order, outputs, bar):
    """Writes the instances in `order`, round-robin over `outputs`, under temporary names.

    Returns the number of examples written to each output. A write that fails (a full
    disk) removes the temporary files and raises InputError naming the output.
    """
    temporaries = [atomic.temporary_name(output) for output in outputs]
    writers = []
    counts = [0] * len(outputs)
    current = 0
    examples = pretraining_instances.serialized_examples(maker, order)
    try:
        for current, tmp_path in enumerate(temporaries):
            writers.append(tf.io.TFRecordWriter(tmp_path))
        if len(writers) == 1:
            write = writers[0].write
            for number, example in enumerate(examples):
                write(example)
                if number & 1023 == 1023:
                    bar.update(1024)
            counts[0] = len(order)
        else:
            for number, example in enumerate(examples):
                current = number % len(writers)
                writers[current].write(example)
                counts[current] += 1
        for current, writer in enumerate(writers):
            writer.close()
    except BaseException as e:
        for writer in writers:
            _close_quietly(writer)
        for tmp_path in temporaries:
            atomic.discard(tmp_path)
        if isinstance(e, (tf.errors.OpError, OSError)):
            raise atomic.write_error(outputs[current], e)
        raise
    return counts


def _close_quietly(writer):
    try:
        writer.close()
    except (tf.errors.OpError, OSError):
        pass


def _next_phase(bar, description, unit, total):
    """Turns a worker's progress bar to the next phase."""
    bar.set_description(description, refresh=False)
    bar.unit, bar.unit_scale = unit, False
    bar.reset(total=total)


def make_shard(path, outputs, key, slot=0, show_progress=True):
    """Makes the examples of one input file; returns a dict of statistics.

    The statistics include the CPU seconds of each phase (read, mask, write).
    """
    started = time.time()
    cpu = [time.process_time()]
    tokenizer, vocabulary, settings = _shared["tokenizer"], _shared["vocabulary"], key["settings"]
    options = options_of(settings)
    name = os.path.basename(path)
    bar = tqdm(total=key["input_bytes"], unit="B", unit_scale=True, desc="%s: reading" % name,
               position=slot, leave=False, mininterval=0.5,
               disable=None if show_progress else True)
    try:
        corpus = read_corpus(path, tokenizer, bar)
        cpu.append(time.process_time())
        if corpus.num_documents == 0:
            raise cli.InputError("%s: no text to make examples from (the file is empty or "
                                 "blank); give one sentence per line, blank lines between "
                                 "documents" % path)
        maker = pretraining_instances.InstanceMaker(corpus, vocabulary, options,
                                                    random.Random(settings["random_seed"]))
        _next_phase(bar, "%s: masking" % name, "doc", corpus.num_documents * options.dupe_factor)
        maker.all_rounds(bar.update)
        order = maker.final_order()
        cpu.append(time.process_time())
        _next_phase(bar, "%s: writing" % name, "ex", len(order))
        counts = write_examples(maker, order, outputs, bar)
        cpu.append(time.process_time())
    finally:
        bar.close()
    stats = {"input_file": path, "documents": corpus.num_documents,
             "instances": len(order), "tokens": len(corpus.tokens), "lines": corpus.lines,
             "invalid_utf8_lines": corpus.invalid_lines,
             "seconds": round(time.time() - started, 3),
             "cpu_seconds": dict(zip(("read", "mask", "write"),
                                     [round(b - a, 3) for a, b in zip(cpu, cpu[1:])])),
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    for part, (output, count) in enumerate(zip(outputs, counts)):
        # an old sidecar must not vouch for the new file
        atomic.discard(records.sidecar_name(output))
        atomic.commit(atomic.temporary_name(output), output)
        sidecar = dict(key, output=output, part=part, instances=count,
                       bytes=tf.io.gfile.stat(output).length,
                       documents=stats["documents"], tokens=stats["tokens"],
                       invalid_utf8_lines=stats["invalid_utf8_lines"])
        atomic.write_text_atomic(records.sidecar_name(output),
                                 json.dumps(sidecar, indent=1, sort_keys=True))
    return stats


def _worker_main(job, slot, sender, parent_pid):
    """A worker process: makes one shard and sends ("ok", stats) or the error back."""
    cli.stop_with_parent(parent_pid)
    gc.disable()  # no reference cycles are made; a worker lives for one shard
    path, outputs, key, show_progress = job
    try:
        outcome = ("ok", make_shard(path, outputs, key, slot, show_progress))
    except cli.InputError as e:
        outcome = ("input_error", str(e))
    except Exception:  # sent to the parent, which raises it with this traceback
        outcome = ("error", traceback.format_exc())
    sender.send(outcome)
    sender.close()


def _death_message(path, outputs, exitcode):
    """The one line for a worker that ended without a result."""
    if exitcode is not None and exitcode < 0:
        try:
            cause = "was killed by %s" % signal.Signals(-exitcode).name
        except ValueError:
            cause = "was killed by signal %d" % -exitcode
        if exitcode == -signal.SIGKILL:
            cause += " (as the out-of-memory killer does)"
    else:
        cause = "exited with status %s without a result" % exitcode
    return ("%s: the worker making %s %s; outputs already finished are kept, a rerun makes the "
            "rest (fewer --num_workers need less memory)" % (path, ", ".join(outputs), cause))


# ---------------------------------------------------------------------------------------------
# The whole run.

def run(input_file, output_file, vocab_file, settings, num_workers=0, show_progress=True,
        in_process=False):
    """Makes every output that is not already complete; returns a summary dict.

    Args:
      input_file, output_file, vocab_file: as the flags.
      settings: dict as ``settings_from_flags``.
      num_workers: processes; 0 = one per CPU core. Never more than the pending shards.
      in_process: make the shards in this process, one after the other (for profiling).
    """
    started = time.time()
    problem = options_of(settings).check()
    if problem:
        raise cli.InputError(problem)
    if num_workers < 0:
        raise cli.InputError("--num_workers=%d: pass 0 (one per CPU core) or a positive number"
                             % num_workers)
    if not input_file:
        raise cli.InputError("--input_file is missing; pass the text files (comma-separated "
                             "globs)")
    if not output_file:
        raise cli.InputError("--output_file is missing; pass where to write the examples")
    _, jobs = plan(input_file, output_file)
    file_paths.check_input_file(vocab_file, "--vocab_file")
    outputs = [name for _, names in jobs for name in names]
    file_paths.check_outputs_spare_inputs(
        outputs + [records.sidecar_name(name) for name in outputs], [vocab_file],
        "--output_file", "--vocab_file")
    atomic.check_writable(outputs, "--output_file")
    with in_use.claimed([os.path.dirname(name) or "." for name in outputs], "--output_file"):
        atomic.remove_stale_temporaries_of(outputs)
        summary = _make(jobs, vocab_file, settings, num_workers, show_progress, in_process)
    summary["seconds"] = round(time.time() - started, 2)
    return summary


def _make(jobs, vocab_file, settings, num_workers, show_progress, in_process):
    """Makes the outputs of ``jobs`` that are not complete; the summary of ``run``."""
    vocab_sha256 = file_reading.file_sha256(vocab_file)
    pending, skipped = [], 0
    for path, outputs in jobs:
        key = job_key(path, outputs, settings, vocab_sha256)
        if is_complete(outputs, key):
            skipped += 1
        else:
            pending.append((path, outputs, key, show_progress))
    if pending:
        tokenizer, vocabulary = load_tokenizer(vocab_file, settings)
        _shared.update(tokenizer=tokenizer, vocabulary=vocabulary)
    workers = min(num_workers or _cpu_count(), len(pending))
    startup_cpu = time.process_time()  # this process's CPU so far, imports included
    results = []
    if in_process or not hasattr(os, "fork"):
        for job in pending:
            results.append(make_shard(*job))
            _warn_invalid(results[-1])
    elif pending:
        results = _run_pool(pending, workers)
    summary = {"outputs": sum(len(job[1]) for job in pending), "shards": len(pending),
               "skipped": skipped, "workers": 0 if in_process else workers,
               "documents": 0, "instances": 0, "tokens": 0, "invalid_utf8_lines": 0,
               "peak_worker_rss_mb": 0.0, "startup_cpu_seconds": round(startup_cpu, 2),
               "slowest_shard_cpu_seconds": 0.0}
    for stats in results:
        for name in ("documents", "instances", "tokens", "invalid_utf8_lines"):
            summary[name] += stats[name]
        summary["peak_worker_rss_mb"] = max(summary["peak_worker_rss_mb"], stats["peak_rss_mb"])
        summary["slowest_shard_cpu_seconds"] = max(summary["slowest_shard_cpu_seconds"],
                                                   sum(stats["cpu_seconds"].values()))
    summary["shard_stats"] = results
    return summary


def _cpu_count():
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _run_pool(pending, workers):
    """make_shard for every pending job, each in its own forked process, `workers` at once.

    Returns the statistics of every shard. A worker that dies without a result (SIGKILL)
    stops the run with an InputError naming its shard; the other workers are then stopped
    and their temporary files removed, finished outputs stay.
    """
    context = multiprocessing.get_context("fork")
    queue = list(pending)
    free_slots = list(range(workers))
    running = {}  # receiving end of a worker's pipe -> (process, job, slot)
    results = []
    if hasattr(gc, "freeze"):
        gc.freeze()  # the workers then never scan the parent's objects
    try:
        while queue or running:
            while queue and free_slots:
                receiver, sender = context.Pipe(duplex=False)
                job, slot = queue.pop(0), free_slots.pop(0)
                process = context.Process(target=_worker_main,
                                          args=(job, slot, sender, os.getpid()))
                process.start()
                sender.close()
                running[receiver] = (process, job, slot)
            for receiver in multiprocessing.connection.wait(list(running)):
                process, job, slot = running.pop(receiver)
                free_slots.append(slot)
                results.append(_outcome(receiver, process, job))
    finally:
        for process, job, _ in running.values():
            process.terminate()
            process.join()
            _discard_temporaries(job[1], process.pid)
        if hasattr(gc, "unfreeze"):
            gc.unfreeze()
    return results


def _outcome(receiver, process, job):
    """The statistics a finished worker sent; raises what it raised or how it died."""
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    receiver.close()
    process.join()
    path, outputs = job[0], job[1]
    if outcome is None:
        _discard_temporaries(outputs, process.pid)
        raise cli.InputError(_death_message(path, outputs, process.exitcode))
    if outcome[0] == "input_error":
        raise cli.InputError(outcome[1])
    if outcome[0] == "error":
        raise RuntimeError("the worker making %s failed:\n%s" % (", ".join(outputs), outcome[1]))
    _warn_invalid(outcome[1])
    return outcome[1]


def _discard_temporaries(outputs, pid):
    """Removes what a stopped worker left under its temporary names."""
    for output in outputs:
        atomic.discard(atomic.temporary_name(output, pid))
        sidecar = records.sidecar_name(output)
        atomic.discard(atomic.temporary_name(sidecar, pid))


def _warn_invalid(stats):
    if stats["invalid_utf8_lines"]:
        tqdm.write("warning: %s: %d lines were not valid UTF-8; their bad bytes were replaced "
                   "by U+FFFD" % (stats["input_file"], stats["invalid_utf8_lines"]),
                   file=sys.stderr)


def summary_line(summary):
    """The final line: what was made and how long it took."""
    line = ("create_pretraining_data: %d outputs from %d shards (%d already complete, "
            "skipped): %d documents, %d instances, %d tokens, %.1f s"
            % (summary["outputs"], summary["shards"], summary["skipped"],
               summary["documents"], summary["instances"], summary["tokens"],
               summary["seconds"]))
    if summary["shards"]:
        line += (", %d workers, peak worker RSS %.0f MB, CPU: start-up %.1f s, slowest shard "
                 "%.1f s" % (summary["workers"], summary["peak_worker_rss_mb"],
                             summary["startup_cpu_seconds"], summary["slowest_shard_cpu_seconds"]))
    return line

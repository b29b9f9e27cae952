"""The machinery of create_pretraining_data.py and shard_corpus.py (no flags here).

* ``run``: expands the inputs, pairs them with outputs, skips the complete ones and makes
  the others in forked worker processes, one shard per process (``make_shard``): read and
  tokenize the file once, draw the instances (pretraining_data.InstanceMaker), write the
  TFRecords as OUTPUT.tmp, rename, write the OUTPUT.json sidecar.
* ``shard_corpus``: cuts a corpus into shard files at document boundaries, streaming.

Files go through tf.io.gfile, so gs:// paths work. Problems the user can fix raise
cli.InputError with a one-line message.
"""

import gc
import hashlib
import json
import multiprocessing
import os
import random
import resource
import sys
import time

from tqdm import tqdm

import cli
import pretraining_data
import tokenization
from tf_compat import tf

READ_CHUNK = 1 << 20
TOKENIZER_CACHE = 1 << 15
"""Words whose pieces a worker's tokenizer remembers (bounded memory per worker)."""
SIDECAR_FORMAT = 1

# Set in the parent before the worker processes fork, so they share it.
_shared = {}


# ---------------------------------------------------------------------------------------------
# Planning: files, outputs, settings.

def expand_inputs(patterns, flag="--input_file"):
    """Input files of comma-separated globs, sorted per glob, without repeats."""
    files = []
    for pattern in [p.strip() for p in patterns.split(",") if p.strip()]:
        try:
            matches = sorted(tf.io.gfile.glob(pattern))
        except tf.errors.NotFoundError:
            matches = []
        except tf.errors.OpError as e:
            raise cli.InputError("%s=%s: cannot list it (%s); check the path"
                                 % (flag, pattern, e.message))
        if not matches:
            raise cli.InputError("%s: no file matches %s; check the path or the glob"
                                 % (flag, pattern))
        files.extend(m for m in matches if m not in files)
    if not files:
        raise cli.InputError("%s is empty; pass the text files (comma-separated globs)" % flag)
    return files


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
    seen = set()
    for name in [name for _, names_ in jobs for name in names_]:
        if name in seen:
            raise cli.InputError("--output_file: %s would be written twice (two input files "
                                 "have the same name); give one output name per input" % name)
        seen.add(name)
    return jobs


def derive_names(inputs, name):
    """Per-input output names from one name: DIR/<stem>.tfrecord or NAME-0000i-of-0000N.EXT."""
    if _is_directory(name):
        directory = name.rstrip("/") or "/"
        return [os.path.join(directory, os.path.splitext(os.path.basename(path))[0] +
                             ".tfrecord") for path in inputs]
    root, ext = os.path.splitext(name)
    return ["%s-%05d-of-%05d%s" % (root, i, len(inputs), ext) for i in range(len(inputs))]


def check_writable(outputs):
    """Creates the output directories and writes a probe file in each; InputError if not."""
    for directory in sorted(set(os.path.dirname(name) or "." for name in outputs)):
        probe = os.path.join(directory, ".create_pretraining_data.%d.probe" % os.getpid())
        try:
            tf.io.gfile.makedirs(directory)
            with tf.io.gfile.GFile(probe, "w") as writer:
                writer.write("")
            tf.io.gfile.remove(probe)
        except (tf.errors.OpError, OSError) as e:
            reason = getattr(e, "message", None) or getattr(e, "strerror", None) or str(e)
            raise cli.InputError("%s: cannot write to this output directory (%s); choose a "
                                 "writable --output_file" % (directory, reason))


def options_of(settings):
    """pretraining_data.Options from a settings dict."""
    return pretraining_data.Options(
        max_seq_length=settings["max_seq_length"],
        max_predictions_per_seq=settings["max_predictions_per_seq"],
        dupe_factor=settings["dupe_factor"], masked_lm_prob=settings["masked_lm_prob"],
        short_seq_prob=settings["short_seq_prob"],
        do_whole_word_mask=settings["do_whole_word_mask"])


def file_sha256(path):
    """Hex sha256 of a file's bytes (read through gfile)."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as reader:
        for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_tokenizer(vocab_file, settings):
    """The project's FullTokenizer and the ids the algorithm needs; InputError on problems.

    Every worker's tokenizer remembers at most TOKENIZER_CACHE words (bounded memory).
    """
    tokenizer = tokenization.FullTokenizer(
        vocab_file, do_lower_case=settings["do_lower_case"], tokenizer=settings["tokenizer"],
        subchar=settings["subchar"], cache_size=TOKENIZER_CACHE)
    try:
        vocabulary = pretraining_data.Vocabulary(tokenizer.vocab)
    except KeyError as e:
        raise cli.InputError("%s: the vocabulary has no %s token; pass a BERT vocabulary "
                             "(with [CLS], [SEP] and [MASK])" % (vocab_file, e.args[0]))
    return tokenizer, vocabulary


# ---------------------------------------------------------------------------------------------
# Sidecars and resuming.

def sidecar_name(output):
    return output + ".json"


def job_key(path, outputs, settings, vocab_sha256):
    """What must match for an existing output to count as done."""
    return {"input_file": path, "input_bytes": tf.io.gfile.stat(path).length,
            "outputs": list(outputs), "settings": settings, "vocab_sha256": vocab_sha256,
            "format": SIDECAR_FORMAT}


def is_complete(outputs, key):
    """Whether every output exists with a sidecar recording `key` and its byte size."""
    for output in outputs:
        try:
            with tf.io.gfile.GFile(sidecar_name(output), "r") as reader:
                sidecar = json.loads(reader.read())
            if any(sidecar.get(name) != value for name, value in key.items()):
                return False
            if tf.io.gfile.stat(output).length != sidecar.get("bytes"):
                return False
        except (tf.errors.OpError, ValueError, OSError):
            return False
    return True


def write_text_atomically(path, text):
    """Writes `text` to path.tmp, then renames it to path."""
    with tf.io.gfile.GFile(path + ".tmp", "w") as writer:
        writer.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


# ---------------------------------------------------------------------------------------------
# One shard (runs in a worker process).

def read_corpus(path, tokenizer, bar):
    """Tokenizes one input file into a pretraining_data.Corpus."""
    corpus = pretraining_data.Corpus()
    tokenize, to_ids = tokenizer.tokenize, tokenizer.convert_tokens_to_ids

    def ids_of(text):
        return to_ids(tokenize(text))

    def chunks(reader):
        for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
            bar.update(len(chunk))
            yield chunk

    decode = pretraining_data.decode_line
    with tf.io.gfile.GFile(path, "rb") as reader:
        for raw in pretraining_data.split_lines(chunks(reader)):
            try:
                corpus.add_line(decode(raw, corpus), ids_of)
            except KeyError as e:
                raise cli.InputError("%s:%d: the tokenizer made %s, which the vocabulary lacks; "
                                     "use a vocabulary with it" % (path, corpus.lines, e))
    corpus.end_document()
    return corpus


def write_examples(maker, order, outputs, bar):
    """Writes the instances in `order`, round-robin over `outputs` (as .tmp files).

    Returns the number of examples written to each output.
    """
    writers = [tf.io.TFRecordWriter(output + ".tmp") for output in outputs]
    counts = [0] * len(outputs)
    try:
        if len(writers) == 1:
            write = writers[0].write
            for number, example in enumerate(pretraining_data.serialized_examples(maker, order)):
                write(example)
                if number & 1023 == 1023:
                    bar.update(1024)
            counts[0] = len(order)
        else:
            for number, example in enumerate(pretraining_data.serialized_examples(maker, order)):
                writers[number % len(writers)].write(example)
                counts[number % len(writers)] += 1
    finally:
        for writer in writers:
            writer.close()
    return counts


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
        maker = pretraining_data.InstanceMaker(corpus, vocabulary, options,
                                               random.Random(settings["random_seed"]))
        _next_phase(bar, "%s: masking" % name, "doc", corpus.num_documents * options.dupe_factor)
        maker.all_rounds(bar.update)
        order = maker.final_order()
        cpu.append(time.process_time())
        _next_phase(bar, "%s: writing" % name, "ex", len(order))
        for output in outputs:  # an old sidecar must not vouch for a new, partial output
            if tf.io.gfile.exists(sidecar_name(output)):
                tf.io.gfile.remove(sidecar_name(output))
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
        tf.io.gfile.rename(output + ".tmp", output, overwrite=True)
        sidecar = dict(key, output=output, part=part, instances=count,
                       bytes=tf.io.gfile.stat(output).length,
                       documents=stats["documents"], tokens=stats["tokens"],
                       invalid_utf8_lines=stats["invalid_utf8_lines"])
        write_text_atomically(sidecar_name(output), json.dumps(sidecar, indent=1, sort_keys=True))
    return stats


_slots = None


def _init_worker(slots):
    """Pool initializer: the queue of free progress-bar rows."""
    global _slots
    _slots = slots
    gc.disable()  # no reference cycles are made; a worker lives for one shard


def _worker_job(job):
    """Runs make_shard in a worker, on a free progress-bar row."""
    path, outputs, key, show_progress = job
    slot = _slots.get()
    try:
        return make_shard(path, outputs, key, slot, show_progress)
    finally:
        _slots.put(slot)


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
    if not input_file:
        raise cli.InputError("--input_file is missing; pass the text files (comma-separated "
                             "globs)")
    if not output_file:
        raise cli.InputError("--output_file is missing; pass where to write the examples")
    inputs = expand_inputs(input_file)
    jobs = plan_outputs(inputs, output_file)
    check_writable([name for _, names in jobs for name in names])
    if not vocab_file:
        raise cli.InputError("--vocab_file is missing; pass the model's vocabulary file")
    if not tf.io.gfile.exists(vocab_file):
        raise cli.InputError("%s: --vocab_file not found; check the path" % vocab_file)
    vocab_sha256 = file_sha256(vocab_file)
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
    summary["seconds"] = round(time.time() - started, 2)
    summary["shard_stats"] = results
    return summary


def _cpu_count():
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _run_pool(pending, workers):
    """make_shard for every pending job in `workers` forked processes, one shard each."""
    context = multiprocessing.get_context("fork")
    slots = context.Queue()
    for slot in range(workers):
        slots.put(slot)
    if hasattr(gc, "freeze"):
        gc.freeze()  # the workers then never scan the parent's objects
    results = []
    try:
        with context.Pool(workers, initializer=_init_worker, initargs=(slots,),
                          maxtasksperchild=1) as pool:
            for stats in pool.imap_unordered(_worker_job, pending):
                _warn_invalid(stats)
                results.append(stats)
    finally:
        if hasattr(gc, "unfreeze"):
            gc.unfreeze()
    return results


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


# ---------------------------------------------------------------------------------------------
# Cutting a corpus into shards.

def is_blank(raw_line):
    """Whether a line (bytes) ends a document: only whitespace, as str.strip() sees it.

    Only short lines are decoded to look for Unicode spaces (U+3000, U+00A0, ...): a longer
    line of nothing but such spaces is kept as text, which never splits a document.
    """
    if not raw_line.strip():
        return True
    if len(raw_line) > 64:
        return False
    return not raw_line.decode("utf-8", "replace").strip()


def read_documents(paths, bar):
    """Yields every document as a list of its lines (bytes, with b"\\n")."""
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as reader:
            def chunks():
                for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
                    bar.update(len(chunk))
                    yield chunk

            document = []
            for line in pretraining_data.split_lines(chunks()):
                if is_blank(line):
                    if document:
                        yield document
                        document = []
                else:
                    document.append(line + b"\n")
            if document:
                yield document


class ShardWriter(object):
    """Writes shards one after the other: PREFIX-00000SUFFIX.tmp, renamed when closed."""

    def __init__(self, prefix, suffix):
        self.prefix, self.suffix = prefix, suffix
        self.names = []
        self.writer = None
        self.bytes = 0
        self.lines = 0

    def start(self):
        self.close()
        name = "%s-%05d%s" % (self.prefix, len(self.names), self.suffix)
        self.names.append(name)
        self.writer = tf.io.gfile.GFile(name + ".tmp", "wb")
        self.lines = 0

    def add(self, document):
        if self.lines:
            self.writer.write(b"\n")
            self.bytes += 1
        data = b"".join(document)
        self.writer.write(data)
        self.bytes += len(data)
        self.lines += len(document)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            tf.io.gfile.rename(self.names[-1] + ".tmp", self.names[-1], overwrite=True)
            self.writer = None


def shard_corpus(paths, prefix, suffix, num_shards=0, lines_per_shard=0, show_progress=True):
    """Cuts the documents of `paths` into shards; returns (shard names, documents, lines)."""
    total = sum(tf.io.gfile.stat(path).length for path in paths)
    directory = os.path.dirname(prefix)
    try:
        if directory:
            tf.io.gfile.makedirs(directory)
    except tf.errors.OpError as e:
        raise cli.InputError("%s: cannot create the output directory (%s); choose another "
                             "--output_prefix" % (directory, e.message))
    out = ShardWriter(prefix, suffix)
    documents = lines = 0
    bar = tqdm(total=total, unit="B", unit_scale=True, mininterval=0.5, leave=False,
               disable=None if show_progress else True)
    try:
        for document in read_documents(paths, bar):
            if out.writer is None:
                out.start()
            elif num_shards and out.bytes >= total * len(out.names) / num_shards:
                out.start()
            elif lines_per_shard and out.lines >= lines_per_shard:
                out.start()
            out.add(document)
            documents += 1
            lines += len(document)
    except tf.errors.OpError as e:
        raise cli.InputError("%s: cannot write the shard (%s); choose a writable "
                             "--output_prefix" % (out.names[-1] if out.names else prefix,
                                                  e.message))
    finally:
        bar.close()
        out.close()
    return out.names, documents, lines

"""Raw sources to a sharded pretraining corpus (build_corpus.py is the command line).

The main process reads the inputs (krbert.corpus.sources) as a stream of documents, hands
them in batches to worker processes, and takes the results back in input order, so the
output does not depend on the number of workers. A worker cleans every paragraph
(clean.Cleaner), drops those equal to an excluded text, splits the rest into sentences
(split.SentenceSplitter), drops excluded, short or non-Korean sentences and repeats within
the document, and hashes the document. The main process drops exact (and, optionally,
near-) duplicate documents and writes the rest into shards (writer.ShardWriter).

Memory: at most ``WINDOW_PER_WORKER`` batches per worker are in flight, and a batch holds
about BATCH_BYTES of text; the only state that grows with the corpus is the table of
document hashes (dedup.HashSet64, 16-32 bytes per document) and the optional MinHash index.
"""

import collections
import multiprocessing
import os
import signal
import sys
import time
from concurrent import futures

from krbert import cli
from krbert.corpus import clean, dedup, sources, split, writer
from krbert.files import atomic
from krbert.files import paths as file_paths
from krbert.files import reading

BATCH_BYTES = 1 << 17
BATCH_DOCUMENTS = 512
WINDOW_PER_WORKER = 4
NSMC_QUOTE_ROUNDS = 2
"""Layers of CSV quoting undone in an excluded TSV column (NSMC quotes some reviews twice)."""


class DocumentProcessor(object):
    """Cleans, decontaminates, splits, filters and hashes documents (in a worker)."""

    def __init__(self, settings, exclusions):
        self.settings = settings
        self.cleaner = clean.Cleaner(settings["mask_urls"], settings["mask_emails"],
                                     settings["max_repeat"], settings["min_chars"],
                                     settings["min_hangul"])
        self.splitter = split.SentenceSplitter(settings["splitter"])
        self.exclusions = exclusions
        self.num_perm = settings["near_dedup_num_perm"] if settings["near_dedup"] else 0
        self.counts = collections.Counter()

    def process(self, paragraphs):
        """(sentences, hash, MinHash signature or None) of one document, or None if nothing is
        left."""
        counts, exclusions = self.counts, self.exclusions
        sentences = []
        for paragraph in paragraphs:
            text = self.cleaner.clean(paragraph)
            if not text:
                continue
            if text in exclusions:
                counts["excluded_paragraphs"] += 1
                continue
            for sentence in self.splitter.split(text):
                counts["sentences_split"] += 1
                if sentence in exclusions:
                    counts["excluded_sentences"] += 1
                elif self.cleaner.keep_sentence(sentence):
                    sentences.append(sentence)
        sentences = dedup.unique_sentences(sentences, counts)
        if not sentences:
            counts["empty_documents"] += 1
            return None
        signature = dedup.minhash(sentences, self.num_perm) if self.num_perm else None
        return sentences, dedup.document_hash(sentences), signature

    def process_batch(self, batch):
        """[(result of process(), its counts or None)] for every document of ``batch`` (the
        counts go with each document, so that a rerun never counts one twice)."""
        results = []
        counters = (self.counts, self.cleaner.counts, self.splitter.counts)
        for paragraphs in batch:
            result = self.process(paragraphs)
            counts = None
            for counter in counters:
                if counter:
                    counts = counts or {}
                    for key, value in counter.items():
                        counts[key] = counts.get(key, 0) + value
                    counter.clear()
            results.append((result, counts))
        return results


_WORKER = {}


def _start_worker(parent_pid, settings, exclusions):
    cli.stop_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group: the main process alone stops the run (it
    # says what was kept); a worker finishes its batch and is shut down with the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["processor"] = DocumentProcessor(settings, exclusions)
    _WORKER["processor"].splitter.load()


def _process_in_worker(batch):
    return _WORKER["processor"].process_batch(batch)


def ordered_results(batches, num_workers, settings, exclusions):
    """Yields process_batch() of every batch, in order; at most WINDOW_PER_WORKER batches
    per worker are queued at a time (memory stays flat)."""
    if num_workers <= 1:
        processor = DocumentProcessor(settings, exclusions)
        processor.splitter.load()
        for batch in batches:
            yield processor.process_batch(batch)
        return
    context = multiprocessing.get_context("fork")
    with futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                     initializer=_start_worker,
                                     initargs=(os.getpid(), settings, exclusions)) as pool:
        pending = collections.deque()
        try:
            for batch in batches:
                pending.append(pool.submit(_process_in_worker, batch))
                if len(pending) >= WINDOW_PER_WORKER * num_workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except futures.process.BrokenProcessPool:
            raise cli.InputError("a worker process died (killed, perhaps for lack of memory); "
                                 "rerun with fewer --num_workers (finished shards are kept)")
        finally:
            for future in pending:
                future.cancel()


def batches_of(documents, skip):
    """Groups the paragraphs of documents (after the first ``skip``) into batches of about
    BATCH_BYTES."""
    batch, size = [], 0
    for index, document in enumerate(documents):
        if index < skip:
            continue
        batch.append(document.paragraphs)
        size += sum(len(p) for p in document.paragraphs)
        if size >= BATCH_BYTES or len(batch) >= BATCH_DOCUMENTS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def read_exclusions(specs, settings):
    """The decontamination set and its report: every text of the --exclude_file specs
    (PATH, or PATH:COLUMN for a TSV/CSV with a header line), cleaned as the corpus is."""
    cleaner = DocumentProcessor(settings, set()).cleaner
    keys, files = set(), []
    for spec in specs:
        path, column = parse_exclude_spec(spec)
        file_paths.check_input_file(path, "--exclude_file")
        before = len(keys)
        texts = 0
        for text in exclusion_texts(path, column):
            texts += 1
            key = cleaner.clean(text)
            if key:
                keys.add(key)
        files.append({"file": path, "column": column, "texts": texts,
                      "new_distinct": len(keys) - before})
    return keys, {"files": files, "texts": len(keys)}


def parse_exclude_spec(spec):
    """PATH or PATH:COLUMN -> (path, column or None); a colon inside a path is kept."""
    if ":" in spec:
        path, column = spec.rsplit(":", 1)
        if column and "/" not in column and os.path.exists(path):
            return path, column
    return spec, None


def exclusion_texts(path, column):
    """The texts of an exclude file: its lines, or the cells of one column."""
    if column is None:
        for _, line in sources.decoded_lines(path):
            yield line
    elif sources.csv_delimiter(path, None) == ",":
        for document in sources.read_csv(path, column):
            yield "\n".join(document.paragraphs)
    else:
        for _, row in reading.read_tsv(path, [column],
                                       quote_rounds={column: NSMC_QUOTE_ROUNDS}):
            yield row[column]


class CorpusBuilder(object):
    """One run: inputs [(path, format)], an output folder, settings and exclusions."""

    def __init__(self, inputs, output_dir, settings, exclusions, exclusion_report,
                 num_workers=1, shard_bytes=256 << 20, show_progress=True, log=None):
        self.inputs = inputs
        self.output_dir = output_dir
        self.settings = settings
        self.exclusions = exclusions
        self.exclusion_report = exclusion_report
        self.num_workers = num_workers
        self.shard_bytes = shard_bytes
        self.show_progress = show_progress
        self.log = log or (lambda line: sys.stderr.write(line + "\n"))
        self.counts = collections.Counter()
        self.source_counts = collections.Counter()
        self.output = collections.Counter()
        self.read = collections.Counter()
        self.warnings = []
        self.position = 0
        self.started = time.time()

    def fingerprint(self):
        """What must match for a rerun to continue an earlier run's shards."""
        return {"inputs": [[path, fmt, os.path.getsize(path)] for path, fmt in self.inputs],
                "settings": self.settings, "shard_bytes": self.shard_bytes,
                "exclusions": self.exclusion_report}

    def report(self, complete):
        output = dict(self.output)
        for key in ("shards", "bytes", "documents", "sentences", "words"):
            output.setdefault(key, 0)
        return collections.OrderedDict([
            ("complete", complete), ("output_dir", self.output_dir),
            ("output", output),
            ("read", {"documents": self.read["documents"], "bytes": self.read["bytes"],
                      "input_documents_done": self.position}),
            ("counts", dict(sorted(self.counts.items()))),
            ("sources", dict(sorted(self.source_counts.items()))),
            ("exclusions", self.exclusion_report),
            ("warnings", self.warnings),
            ("seconds", round(time.time() - self.started, 1)),
            ("fingerprint", self.fingerprint())])

    def run(self):
        """Builds the corpus; returns the final report (a dict, as in corpus_stats.json)."""
        os.makedirs(self.output_dir, exist_ok=True)
        skip, first_shard = self.resume()
        if skip is None:
            return self.previous
        shards = writer.ShardWriter(self.output_dir, self.shard_bytes, first_shard,
                                    self.shard_done)
        doc_hashes, near = self.dedup_state(first_shard)
        results = ordered_results(batches_of(self.documents(), skip), self.num_workers,
                                  self.settings, self.exclusions)
        try:
            self.position = skip
            for batch_results in results:
                for result, counts in batch_results:
                    self.position += 1
                    if counts:
                        self.counts.update(counts)
                    if result is not None and self.is_new(result, doc_hashes, near):
                        self.write(shards, result[0])
        except BaseException as e:
            shards.abandon(e)
            raise
        finally:
            results.close()  # the worker pool shuts down here, in this thread
        shards.finish_shard()
        if not self.output["documents"]:
            raise cli.InputError(
                "%s: no document left to write (%d read; see the counts: %s); check --format, "
                "--text_field/--column and the filters" % (
                    ",".join(path for path, _ in self.inputs), self.read["documents"],
                    ", ".join("%s %d" % kv for kv in sorted(self.counts.items()) if kv[1])))
        final = self.report(complete=True)
        writer.write_state(self.output_dir, final)
        return final

    def resume(self):
        """(input documents to skip, first shard index) from an earlier run's state, or
        (None, n) when that run is complete and matches."""
        self.previous = writer.read_state(self.output_dir)
        atomic.remove_stale_temporaries(self.output_dir, (writer.SHARD_PREFIX, writer.STATS_NAME))
        if self.previous is None:
            existing = [n for n in os.listdir(self.output_dir) if writer.SHARD_PATTERN.match(n)]
            if existing:
                raise cli.InputError("%s: holds shards (%s, ...) but no %s; empty the folder or "
                                     "choose another --output_dir"
                                     % (self.output_dir, sorted(existing)[0], writer.STATS_NAME))
            return 0, 0
        if self.previous.get("fingerprint") != _plain(self.fingerprint()):
            raise cli.InputError(
                "%s: holds a corpus built from other inputs or settings (see its %s); choose "
                "another --output_dir, or empty it to start again"
                % (self.output_dir, writer.STATS_NAME))
        if self.previous.get("complete"):
            self.log("build_corpus: %s already holds the complete corpus; nothing to do"
                     % self.output_dir)
            return None, self.previous["output"]["shards"]
        done = self.previous["output"]["shards"]
        self.counts.update(self.previous["counts"])
        self.output.update(self.previous["output"])
        self.log("build_corpus: continuing after the %d finished shards in %s"
                 % (done, self.output_dir))
        return self.previous["read"]["input_documents_done"], done

    def interrupted_message(self):
        """The line for a run stopped by Ctrl-C: what is kept and how to go on, as the
        state on disk says (a Ctrl-C during shard_done's write leaves the earlier one)."""
        state = writer.read_state(self.output_dir)
        kept = state["output"] if state else {"shards": 0, "documents": 0}
        return ("interrupted: --output_dir=%s keeps the %d finished shards (%d documents); "
                "rerun the same command to continue after them"
                % (self.output_dir, kept["shards"], kept["documents"]))

    def dedup_state(self, finished_shards):
        """The document hashes (and MinHash index), rebuilt from finished shards."""
        doc_hashes = dedup.HashSet64()
        near = None
        if self.settings["near_dedup"]:
            near = dedup.NearDuplicates(self.settings["near_dedup_threshold"],
                                        self.settings["near_dedup_num_perm"])
        for index in range(finished_shards):
            for sentences in writer.read_shard_documents(writer.shard_path(self.output_dir,
                                                                           index)):
                doc_hashes.add(dedup.document_hash(sentences))
                if near is not None:
                    near.is_new(dedup.minhash(sentences, near.num_perm))
        return doc_hashes, near

    def is_new(self, result, doc_hashes, near):
        sentences, doc_hash, signature = result
        if not doc_hashes.add(doc_hash):
            self.counts["duplicate_documents"] += 1
            return False
        if near is not None and not near.is_new(signature):
            self.counts["near_duplicate_documents"] += 1
            return False
        return True

    def write(self, shards, sentences):
        self.output["documents"] += 1
        self.output["sentences"] += len(sentences)
        self.output["words"] += sum(len(s.split(" ")) for s in sentences)
        self.output["bytes"] += shards.add(sentences)
        if shards.full:
            shards.finish_shard()

    def shard_done(self, shards_done):
        """After a shard is renamed: record the state a rerun continues from."""
        self.output["shards"] = shards_done
        writer.write_state(self.output_dir, self.report(complete=False))

    def documents(self):
        """Every input's documents in order, with a progress bar over the bytes read
        (decompressed; no total when an input is compressed)."""
        from tqdm import tqdm

        total = sum(sources.file_size(path) for path, _ in self.inputs)
        if any(path.endswith((".bz2", ".gz")) for path, _ in self.inputs):
            total = None
        bar = tqdm(total=total, unit="B", unit_scale=True, mininterval=1.0, leave=False,
                   disable=None if self.show_progress else True)

        def on_bytes(n):
            self.read["bytes"] += n
            bar.update(n)

        try:
            for path, fmt in self.inputs:
                for document in sources.read_documents(path, fmt, self.settings,
                                                       self.source_counts, on_bytes, self.warn):
                    self.read["documents"] += 1
                    yield document
        finally:
            bar.close()

    def warn(self, line):
        self.warnings.append(line)
        self.log("warning: " + line)


def _plain(value):
    """``value`` as it reads back from JSON (tuples become lists)."""
    import json

    return json.loads(json.dumps(value))

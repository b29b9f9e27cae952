"""The corpus's shards: documents in the create_pretraining_data format (one sentence a line,
a blank line between documents), cut at document ends into OUTPUT_DIR/corpus-00000.txt,
corpus-00001.txt, ... of about ``shard_bytes`` each.

A shard is written under a temporary name and renamed when complete (krbert.files.atomic).
After every shard, OUTPUT_DIR/corpus_stats.json records the shards done, how many input
documents they consumed and the counts so far, with "complete": false; a rerun with the same
inputs and settings keeps those shards, skips their input documents without cleaning or
splitting them, rebuilds the deduplication state from the shards themselves, and goes on.
"""

import io
import json
import os
import re

from krbert import cli
from krbert.files import atomic

SHARD_PREFIX = "corpus-"
SHARD_SUFFIX = ".txt"
STATS_NAME = "corpus_stats.json"
SHARD_PATTERN = re.compile(r"^%s\d{5,}%s$" % (re.escape(SHARD_PREFIX), re.escape(SHARD_SUFFIX)))


def shard_path(output_dir, index):
    return os.path.join(output_dir, "%s%05d%s" % (SHARD_PREFIX, index, SHARD_SUFFIX))


def stats_path(output_dir):
    return os.path.join(output_dir, STATS_NAME)


def read_state(output_dir):
    """The corpus_stats.json of an earlier run in ``output_dir``, or None."""
    path = stats_path(output_dir)
    if not os.path.isfile(path):
        return None
    try:
        with io.open(path, encoding="utf-8") as reader:
            state = json.load(reader)
    except ValueError as e:
        raise cli.InputError("%s: not valid JSON (%s); remove it, or choose another "
                             "--output_dir" % (path, e))
    problem = _state_problem(state)
    if problem:
        raise cli.InputError("%s: not the record of a build_corpus.py run (%s); remove it, "
                             "or choose another --output_dir" % (path, problem))
    return state


STATE_PARTS = {"complete": bool, "output": dict, "read": dict, "counts": dict,
               "fingerprint": dict}
"""The parts of corpus_stats.json a rerun reads, and their JSON types."""


def _state_problem(state):
    """What makes ``state`` (read from JSON) unusable for a rerun, or None."""
    if not isinstance(state, dict):
        return "it holds a JSON %s, not an object" % type(state).__name__
    for key, kind in sorted(STATE_PARTS.items()):
        if not isinstance(state.get(key), kind):
            return "no %s %r" % ("object" if kind is dict else "true/false", key)
    for part, key in (("output", "shards"), ("output", "documents"),
                      ("read", "input_documents_done")):
        value = state[part].get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return "%s.%s is not a count" % (part, key)
    return None


def write_state(output_dir, state):
    """Writes corpus_stats.json whole (temporary name, then rename)."""
    atomic.write_text_atomic(stats_path(output_dir),
                             json.dumps(state, indent=2, ensure_ascii=False) + "\n")


def read_shard_documents(path):
    """The documents of a finished shard, each a list of sentences."""
    document = []
    with io.open(path, encoding="utf-8") as reader:
        for line in reader:
            line = line.rstrip("\n")
            if line:
                document.append(line)
            elif document:
                yield document
                document = []
    if document:
        yield document


class ShardWriter(object):
    """Writes documents into shards of about ``shard_bytes``; ``on_shard(index)`` runs after
    each shard has been renamed onto its final name."""

    def __init__(self, output_dir, shard_bytes, first_index, on_shard):
        self.output_dir = output_dir
        self.shard_bytes = shard_bytes
        self.index = first_index
        self.on_shard = on_shard
        self._context = None
        self._writer = None
        self.bytes = 0

    def add(self, sentences):
        """Appends one document (a list of sentences) to the open shard (opened if none is);
        returns the bytes written. The caller calls ``finish_shard`` once ``full``."""
        if self._writer is None:
            self._context = atomic.atomic_write(shard_path(self.output_dir, self.index), "wb")
            self._writer = self._context.__enter__()
            self.bytes = 0
        data = ("\n".join(sentences) + "\n").encode("utf-8")
        if self.bytes:
            data = b"\n" + data
        self._writer.write(data)
        self.bytes += len(data)
        return len(data)

    @property
    def full(self):
        return self._writer is not None and self.bytes >= self.shard_bytes

    def finish_shard(self):
        """Closes and renames the open shard, if any; then calls ``on_shard``."""
        if self._writer is None:
            return
        context, self._context, self._writer = self._context, None, None
        context.__exit__(None, None, None)
        self.index += 1
        self.on_shard(self.index)

    def abandon(self, error):
        """Removes the open shard's temporary file (after ``error``)."""
        if self._writer is not None:
            context, self._context, self._writer = self._context, None, None
            context.__exit__(type(error), error, None)

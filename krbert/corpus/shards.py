"""Cutting a pretraining corpus into shards at document boundaries, streaming
(shard_corpus.py is the command line; no flags here).

A document is the lines between blank ones (``is_blank``). ``shard_corpus`` writes them to
PREFIX-00000SUFFIX, PREFIX-00001SUFFIX, ..., each under a temporary name until it is
complete, so a shard that exists is whole.
"""

import os
import re

from tqdm import tqdm

from krbert.files import atomic, reading
from krbert.files import paths as file_paths
from krbert.tf_compat import tf


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
        document = []
        for line in reading.read_lines(path, bar.update):
            if is_blank(line):
                if document:
                    yield document
                    document = []
            else:
                document.append(line + b"\n")
        if document:
            yield document


class ShardWriter(object):
    """Writes shards one after the other: PREFIX-00000SUFFIX, ..., each under a temporary
    name until it is closed (atomic.atomic_write)."""

    def __init__(self, prefix, suffix):
        self.prefix, self.suffix = prefix, suffix
        self.names = []
        self.writer = None
        self._open = None
        self.bytes = 0
        self.lines = 0

    def start(self):
        self.close()
        name = "%s-%05d%s" % (self.prefix, len(self.names), self.suffix)
        self.names.append(name)
        self._open = atomic.atomic_write(name, "wb")
        self.writer = self._open.__enter__()
        self.lines = 0

    def add(self, document):
        if self.lines:
            self.writer.write(b"\n")
            self.bytes += 1
        data = b"".join(document)
        self.writer.write(data)
        self.bytes += len(data)
        self.lines += len(document)

    def close(self, error=None):
        """Finishes the open shard; with `error` (an exception) its temporary is removed."""
        if self.writer is not None:
            self.writer = None
            if error is None:
                self._open.__exit__(None, None, None)
            else:
                self._open.__exit__(type(error), error, None)


def check_shards_spare_inputs(paths, prefix, suffix):
    """InputError when a shard PREFIX-0000iSUFFIX could be one of the input files."""
    shard = re.compile(re.escape(os.path.basename(prefix)) + r"-\d{5,}" + re.escape(suffix) + "$")
    clashes = [os.path.join(os.path.dirname(prefix), os.path.basename(path)) for path in paths
               if shard.match(os.path.basename(path))]
    file_paths.check_outputs_spare_inputs(clashes, paths, "--output_prefix")


def shard_corpus(paths, prefix, suffix, num_shards=0, lines_per_shard=0, show_progress=True):
    """Cuts the documents of `paths` into shards; returns (shard names, documents, lines).

    A shard that cannot be written (a full disk) is an InputError naming it; shards already
    closed are complete.
    """
    total = sum(tf.io.gfile.stat(path).length for path in paths)
    check_shards_spare_inputs(paths, prefix, suffix)
    atomic.check_writable(["%s-%05d%s" % (prefix, 0, suffix)], "--output_prefix")
    atomic.remove_stale_temporaries(os.path.dirname(prefix) or ".",
                                    os.path.basename(prefix) + "-")
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
    except BaseException as e:
        bar.close()
        out.close(e)  # removes the open shard's temporary file
        raise
    bar.close()
    out.close()
    return out.names, documents, lines

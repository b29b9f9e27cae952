"""KLUE-NER files: reading, checking, carving and writing (no TensorFlow graph, no flags).

The format (KLUE v1.1, ``klue-ner-v1.1_{train,dev}.tsv``): sentences separated by a blank
line; in a sentence, ``##`` lines are comments, the last one holding a tab gives the
sentence id and the tagged sentence (``## <id>\\t<경찰:OG>은 ...``), and every other line is
one character, a tab and its BIO tag (B-/I- of PS, LC, OG, DT, TI, QT, or O). A space is a
character line too (`` \\tO``, or ``I-PS`` inside an entity). The file opens with a few
comment lines describing the format; they are kept as the first sentence's comments, so
``write_file`` of what ``read_file`` read gives the same bytes.

Bad input: a character line without a tab, with more than one character or a tag outside
the scheme stops the run with ``path:line`` and what to do. An ``I-X`` tag that does not
continue a ``B-X``/``I-X`` is repaired to ``B-X`` and counted (one warning line with the
total and the first place), as CoNLL's evaluation reads such a tag.

Splits: KLUE publishes train and dev; when ``klue-ner-v1.1_train.tsv`` is missing but dev is
there (the shared data holds dev only), ``carve`` splits dev by a fixed rule: its first
``CARVE_TRAIN_FRACTION`` of sentences (rounded down) train, the rest is the held-out dev.
"""

import collections
import os

from krbert import cli
from krbert.files import atomic
from krbert.tf_compat import tf

ENTITY_TYPES = ("PS", "LC", "OG", "DT", "TI", "QT")
LABELS = tuple("%s-%s" % (p, t) for t in ENTITY_TYPES for p in ("B", "I")) + ("O",)
"""KLUE's label order (B-PS, I-PS, ..., B-QT, I-QT, O): the tagger's output ids."""
FILES = {"train": "klue-ner-v1.1_train.tsv", "dev": "klue-ner-v1.1_dev.tsv"}
CARVE_TRAIN_FRACTION = 0.8

Sentence = collections.namedtuple("Sentence", ["guid", "chars", "tags", "line", "comments"])
"""One sentence: guid (its ``##`` id, else ``line <n>``), chars (list of one-character str,
spaces included), tags (list of str, one per char), line (1-based line of its first
character, for messages), comments (the ``##`` lines before its id line, as read)."""

NerFile = collections.namedtuple("NerFile", ["path", "sentences", "repaired"])
"""A read file: its path, its sentences and how many I- tags were repaired to B-."""


def entity_type(tag):
    """"PS" for B-PS or I-PS; None for O."""
    return tag[2:] if tag != "O" else None


def _split_char_line(path, number, line):
    if "\t" not in line:
        raise cli.InputError(
            "%s:%d: no tab in %r; a character line is the character, a tab and its tag "
            "(e.g. '서\\tB-LC'); fix the line" % (path, number, line))
    char, tag = line.split("\t", 1)
    if len(char) != 1:
        raise cli.InputError(
            "%s:%d: %r is not one character; each line holds one character and its tag; fix "
            "the line" % (path, number, char))
    if tag not in LABELS:
        raise cli.InputError(
            "%s:%d: tag %r is not in KLUE-NER's scheme (B-/I- of %s, or O); fix the line"
            % (path, number, tag, ", ".join(ENTITY_TYPES)))
    return char, tag


def _blocks(path, text):
    """(first line number, lines) of each blank-line-separated block of ``text``."""
    block, start = [], None
    for number, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if line in ("", "\t"):
            if block:
                yield start, block
            block, start = [], None
        else:
            if not block:
                start = number
            block.append(line)
    if block:
        yield start, block


def parse(path, text):
    """The sentences of KLUE-NER ``text`` read from ``path`` (for messages): a NerFile."""
    sentences, repaired, first_repair = [], 0, None
    pending_comments = []
    for start, lines in _blocks(path, text):
        comments, guid, chars, tags, first = [], None, [], [], None
        for offset, line in enumerate(lines):
            number = start + offset
            if line.startswith("##"):  # a character line never does: one char, then a tab
                comments.append(line)
                continue
            char, tag = _split_char_line(path, number, line)
            if tag.startswith("I-") and (not tags or entity_type(tags[-1]) != tag[2:]):
                repaired += 1
                first_repair = first_repair or "%s:%d" % (path, number)
                tag = "B-" + tag[2:]
            chars.append(char)
            tags.append(tag)
            first = first or number
        if not chars:  # the file's opening comments, or a sentence without characters
            pending_comments.extend(comments)
            continue
        id_lines = [i for i, c in enumerate(comments) if "\t" in c]
        if id_lines:
            id_line = comments[id_lines[-1]]
            guid = id_line[2:].split("\t", 1)[0].strip()
            comments = comments[:id_lines[-1]] + comments[id_lines[-1] + 1:]
        sentences.append(Sentence(guid or "line %d" % first, chars, tags, first,
                                  pending_comments + comments))
        pending_comments = []
    if repaired:
        tf.logging.warning("%s: %d I- tags followed no B-/I- tag of their type and were read "
                           "as B- (the first at %s)", path, repaired, first_repair)
    return NerFile(path, sentences, repaired)


def read_file(path):
    """Reads a KLUE-NER file into a NerFile; InputError on bad lines (see the module)."""
    try:
        with tf.io.gfile.GFile(path, "rb") as reader:
            data = reader.read()
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("%s cannot be read (%s)" % (path, cli.error_reason(e)))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise cli.InputError("%s:%d: not UTF-8 text; save the file as UTF-8" % (path, line))
    ner_file = parse(path, text)
    if not ner_file.sentences:
        raise cli.InputError("%s holds no sentence (no character lines); check the file"
                             % path)
    return ner_file


# ---------------------------------------------------------------------------------------
# Splits


def carve(sentences):
    """(train, held_out): the first CARVE_TRAIN_FRACTION of ``sentences`` (rounded down)
    and the rest, in file order."""
    cut = int(len(sentences) * CARVE_TRAIN_FRACTION)
    return sentences[:cut], sentences[cut:]


def find_split(data_dir, split):
    """(path, carved) of ``split`` (train or dev) in ``data_dir``: KLUE's own file, or,
    when the train file is missing and dev is there, the dev file with ``carved`` True
    (train is then dev's first part, dev the rest). InputError when neither is there."""
    if split not in FILES:
        raise cli.InputError("KLUE-NER has no split '%s'; choose train or dev" % split)
    own = os.path.join(data_dir, FILES[split])
    train = os.path.join(data_dir, FILES["train"])
    dev = os.path.join(data_dir, FILES["dev"])
    if tf.io.gfile.exists(train):
        if not tf.io.gfile.exists(own):
            raise cli.InputError("--data_dir=%s: %s not found; put KLUE's %s there"
                                 % (data_dir, FILES[split], FILES[split]))
        return own, False
    if tf.io.gfile.exists(dev):
        return dev, True
    raise cli.InputError("--data_dir=%s holds neither %s nor %s; pass the folder of KLUE-NER's "
                         "files (scripts/download_data.sh fetches them)"
                         % (data_dir, FILES["train"], FILES["dev"]))


def read_splits(data_dir, names):
    """{split: (sentences, path)} for each of ``names`` (train, dev) in ``data_dir``,
    each file read once; with a carved dev (see find_split) one log line states the rule."""
    found = {name: find_split(data_dir, name) for name in names}
    files = {}
    for path, _ in found.values():
        if path not in files:
            files[path] = read_file(path).sentences
    out = {}
    for name, (path, carved) in found.items():
        sentences = files[path]
        if carved:
            sentences = carve(sentences)[0 if name == "train" else 1]
        out[name] = (sentences, path)
    if any(carved for _, carved in found.values()):
        train, held_out = carve(files[found[names[0]][0]])
        tf.logging.info("%s not in %s: training on the first %d sentences of %s and holding "
                        "out the other %d as dev (docs/ner.md)", FILES["train"], data_dir,
                        len(train), FILES["dev"], len(held_out))
    return out


# ---------------------------------------------------------------------------------------
# Writing


def space_tags(chars, tags):
    """``tags`` with every space re-tagged: I-X between two characters of one X entity
    (as KLUE's files tag them), else O."""
    out = list(tags)
    for i, char in enumerate(chars):
        if char != " ":
            continue
        before = next((out[j] for j in range(i - 1, -1, -1) if chars[j] != " "), "O")
        after = next((out[j] for j in range(i + 1, len(chars)) if chars[j] != " "), "O")
        kind = entity_type(before)
        out[i] = "I-" + kind if kind and after == "I-" + kind else "O"
    return out


def tagged_text(chars, tags):
    """The sentence with each entity written ``<text:TYPE>``, as in KLUE's ``##`` lines."""
    pieces, open_type = [], None
    for char, tag in zip(chars, tags):
        kind = entity_type(tag)
        if open_type and (tag.startswith("B-") or kind != open_type):
            pieces.append(":%s>" % open_type)
            open_type = None
        if tag.startswith("B-"):
            pieces.append("<")
            open_type = kind
        pieces.append(char)
    if open_type:
        pieces.append(":%s>" % open_type)
    return "".join(pieces)


def format_sentence(sentence, tags):
    """The lines of ``sentence`` with ``tags`` (its comments, the id line, one line per
    character) and the blank line after it, as one str."""
    lines = list(sentence.comments)
    lines.append("## %s\t%s" % (sentence.guid, tagged_text(sentence.chars, tags)))
    lines.extend("%s\t%s" % pair for pair in zip(sentence.chars, tags))
    return "\n".join(lines) + "\n\n"


def write_file(path, sentences, tag_lists):
    """Writes ``sentences`` with ``tag_lists`` (one list of tags per sentence) in
    KLUE-NER's format, whole (temporary name, then renamed)."""
    with atomic.atomic_write(path) as writer:
        for sentence, tags in zip(sentences, tag_lists):
            writer.write(format_sentence(sentence, tags))

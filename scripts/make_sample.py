r"""Cuts the shipped sample (data/sample/) from the full data: the first rows of every file.

    python scripts/make_sample.py ../shared/data data/sample

Deterministic: the same full data always give the same bytes. Files keep their names,
headers and formats, so any script reads the sample with DATA_DIR=data/sample. What is cut:

    nsmc/train.tsv            the first 6,000 rows
    nsmc/dev.tsv              the first 1,000 rows
    nsmc/test.tsv             the first 1,000 rows, then every later row with an empty
                              document (the split's 3), in file order
    hate/train.tsv            the first 600 rows
    hate/dev.tsv              the first 300 rows
    hate/test.no_label.tsv    the first 300 rows
    corpus/nsmc_reviews.txt   the first 24,000 lines, then on to the end of that document
    corpus/news_comments.txt  the first 2,000 lines (one comment a line)
    kornli/xnli.dev.ko.tsv    the first 400 rows
    kornli/xnli.test.ko.tsv   the first 400 rows
    korsts/sts-train.tsv      the first 600 rows
    korsts/sts-dev.tsv        the first 200 rows
    korsts/sts-test.tsv       the first 200 rows
    klue/klue-nli-v1.1_dev.json   the first 300 entries (JSON, indented by 4)
    klue/klue-sts-v1.1_dev.json   the first 120 entries
    reviews/{train,dev,test}.csv  a custom-task example (docs/pairs.md): NSMC rows 1-300,
                              301-400 and 401-500 of the training split as CSV with the
                              columns review, sentiment (negative / positive)
    klue/klue-ner-v1.1_dev.tsv    the opening comment lines and the first 400 sentences
    korquad/KorQuAD_v1.0_dev.json  the first 6 articles, unchanged (its "version" kept;
                              written with json.dumps(ensure_ascii=False))

The published KR-BERT vocabularies (krbert/) are not part of the sample: their licence is
not stated. Prints one line per file: rows (lines for the corpus) and bytes.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from krbert import cli  # noqa: E402
from krbert.files import reading  # noqa: E402

# (file, data rows kept from the top, keep later rows whose document is empty)
TABLES = [
    ("nsmc/train.tsv", 6000, False),
    ("nsmc/dev.tsv", 1000, False),
    ("nsmc/test.tsv", 1000, True),
    ("hate/train.tsv", 600, False),
    ("hate/dev.tsv", 300, False),
    ("hate/test.no_label.tsv", 300, False),
    ("kornli/xnli.dev.ko.tsv", 400, False),
    ("kornli/xnli.test.ko.tsv", 400, False),
    ("korsts/sts-train.tsv", 600, False),
    ("korsts/sts-dev.tsv", 200, False),
    ("korsts/sts-test.tsv", 200, False),
]
# (file, entries kept from the top of a JSON list)
JSON_LISTS = [
    ("klue/klue-nli-v1.1_dev.json", 300),
    ("klue/klue-sts-v1.1_dev.json", 120),
]
# (file, lines kept from the top, complete the document in progress; news_comments.txt has
# no document breaks)
CORPORA = [
    ("corpus/nsmc_reviews.txt", 24000, True),
    ("corpus/news_comments.txt", 2000, False),
]

# (KLUE-NER file, sentences kept from the top: a byte prefix that ends with the blank line
# after the last sentence kept)
TAGGED_FILES = [
    ("klue/klue-ner-v1.1_dev.tsv", 400),
]

# (SQuAD-format file, articles kept from the top)
SQUAD_FILES = [
    ("korquad/KorQuAD_v1.0_dev.json", 6),
]


def cut_table(lines, rows, keep_empty_documents):
    """The header and the first ``rows`` data lines of a TSV (raw byte lines), plus, with
    ``keep_empty_documents``, every later line whose second column is empty."""
    kept = lines[:rows + 1]
    if keep_empty_documents:
        kept += [line for line in lines[rows + 1:] if line.split(b"\t")[1:2] == [b""]]
    return kept


def cut_corpus(lines, count, complete_document):
    """The first ``count`` lines of a corpus; with ``complete_document`` on up to the next
    blank line, so that no document is cut short."""
    end = min(count, len(lines))
    while complete_document and 0 < end < len(lines) and lines[end - 1].strip() \
            and lines[end].strip():
        end += 1
    return lines[:end]


def cut_sentences(lines, count):
    """The raw byte lines up to and including the ``count``-th empty line."""
    seen = 0
    for end, line in enumerate(lines, 1):
        if line == b"\n":
            seen += 1
            if seen == count:
                return lines[:end]
    return lines


def read_lines(path):
    if not os.path.isfile(path):
        raise cli.InputError("%s not found: DATA_DIR must hold the full data (nsmc/, hate/, "
                             "corpus/; see data/README.md)" % path)
    with open(path, "rb") as reader:
        return reader.read().splitlines(True)


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as writer:
        writer.writelines(lines)
    return os.path.getsize(path)


REVIEWS = [("train.csv", 0, 300), ("dev.csv", 300, 400), ("test.csv", 400, 500)]


def reviews_csv(nsmc_lines, start, end):
    """CSV bytes (header review,sentiment) of NSMC training rows [start, end)."""
    import csv
    import io

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["review", "sentiment"])
    for line in nsmc_lines[1 + start:1 + end]:
        _, document, label = line.decode("utf-8").rstrip("\n").split("\t")
        writer.writerow([reading.unquote_csv(document, 2),
                         "positive" if label == "1" else "negative"])
    return out.getvalue().encode("utf-8")


def make_sample(data_dir, output_dir):
    """Writes the sample; returns [(file, data rows or corpus lines, bytes)]."""
    written = []
    for name, rows, keep_empty in TABLES:
        lines = cut_table(read_lines(os.path.join(data_dir, name)), rows, keep_empty)
        size = write_lines(os.path.join(output_dir, name), lines)
        written.append((name, len(lines) - 1, size))
    nsmc = read_lines(os.path.join(data_dir, "nsmc/train.tsv"))
    for name, start, end in REVIEWS:
        path = os.path.join(output_dir, "reviews", name)
        written.append(("reviews/" + name, end - start,
                        write_lines(path, [reviews_csv(nsmc, start, end)])))
    for name, count in JSON_LISTS:
        entries = json.loads(b"".join(read_lines(os.path.join(data_dir, name))).decode("utf-8"))
        text = json.dumps(entries[:count], ensure_ascii=False, indent=4) + "\n"
        written.append((name, count, write_lines(os.path.join(output_dir, name),
                                                 [text.encode("utf-8")])))
    for name, count, complete in CORPORA:
        lines = cut_corpus(read_lines(os.path.join(data_dir, name)), count, complete)
        written.append((name, len(lines), write_lines(os.path.join(output_dir, name), lines)))
    for name, count in TAGGED_FILES:
        lines = cut_sentences(read_lines(os.path.join(data_dir, name)), count)
        written.append((name, count, write_lines(os.path.join(output_dir, name), lines)))
    for name, articles in SQUAD_FILES:
        document = json.loads(b"".join(read_lines(os.path.join(data_dir, name))).decode("utf-8"))
        document["data"] = document["data"][:articles]
        text = json.dumps(document, ensure_ascii=False).encode("utf-8")
        written.append((name, articles, write_lines(os.path.join(output_dir, name), [text])))
    return written


def main(argv):
    if len(argv) not in (2, 3):
        raise cli.InputError("usage: python scripts/make_sample.py DATA_DIR [OUTPUT_DIR]: "
                             "DATA_DIR holds the full data; OUTPUT_DIR defaults to data/sample")
    written = make_sample(argv[1], argv[2] if len(argv) == 3 else "data/sample")
    for name, rows, size in written:
        print("%-26s %7d rows/lines %9d bytes" % (name, rows, size))
    print("%-26s %26d bytes" % ("total", sum(size for _, _, size in written)))


if __name__ == "__main__":
    cli.run(main)

"""Korean sentence splitters compared on text whose boundaries are known: speed and how many
of the known boundaries each finds.

Text: news comments (DATA_DIR/corpus/news_comments.txt), GROUP of them joined by a space
into one paragraph, the way comments, reviews or posts arrive glued together. The end of
every comment but the last is a known sentence boundary (a comment may hold more
sentences: splits inside a comment are counted, not judged). For each splitter: MB of text
per CPU-second, the share of known boundaries found (recall), splits inside comments per
comment, and the share of its sentences identical to kiwipiepy's.

Splitters: kiwipiepy's split_into_sents on every paragraph; krbert.corpus.split's
SentenceSplitter("kiwi") (punctuation rules, kiwipiepy only where a sentence may end
without punctuation); its punctuation rules alone; and kss.split_sentences when kss is
installed (it is not in the project's requirements; pip install kss into a scratch
environment to compare).

    DATA_DIR=../shared/data python benchmarks/compare_splitters.py [COMMENTS] [KSS_COMMENTS]
"""

import io
import os
import resource
import sys

import common
from krbert.corpus import clean, split  # noqa: E402

GROUP = 20


def cpu_now():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paragraphs(path, count):
    """[(paragraph, [end offset of each comment but the last])] of ``count`` comments."""
    cleaner = clean.Cleaner()
    comments = []
    with io.open(path, encoding="utf-8") as reader:
        for line in reader:
            text = cleaner.clean(line)
            if text:
                comments.append(text)
            if len(comments) >= count:
                break
    out = []
    for start in range(0, len(comments), GROUP):
        group = comments[start:start + GROUP]
        ends, offset = [], 0
        for comment in group[:-1]:
            offset += len(comment)
            ends.append(offset)
            offset += 1
        out.append((" ".join(group), ends))
    return out


def sentence_ends(paragraph, sentences):
    """End offsets of the sentences in the paragraph (found left to right)."""
    ends, position = set(), 0
    for sentence in sentences:
        found = paragraph.find(sentence, position)
        if found < 0:
            continue
        position = found + len(sentence)
        ends.add(position)
    return ends


def measure(name, split_fn, data, reference=None):
    """One row: speed, known-boundary recall, inside splits, agreement with ``reference``."""
    start = cpu_now()
    results = [split_fn(text) for text, _ in data]
    seconds = cpu_now() - start
    megabytes = sum(len(text.encode("utf-8")) for text, _ in data) / 1e6
    known = found = inside = comments = 0
    for (text, joins), sentences in zip(data, results):
        ends = sentence_ends(text, sentences)
        ends.discard(len(text))
        known += len(joins)
        found += len(ends & set(joins))
        inside += len(ends - set(joins))
        comments += len(joins) + 1
    setting = "%s, %d paragraphs of %d comments (%.3f MB)" % (name, len(data), GROUP,
                                                              megabytes)
    common.row("splitter", setting, megabytes / seconds, "MB/CPU-s")
    common.row("splitter", setting, 100.0 * found / known, "% known boundaries found")
    common.row("splitter", setting, inside / float(comments), "splits inside / comment")
    if reference is not None:
        same = total = 0
        for mine, theirs in zip(results, reference):
            same += len(set(mine) & set(theirs))
            total += len(mine)
        common.row("splitter", setting, 100.0 * same / total, "% sentences = kiwipiepy's")
    return results


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    kss_count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    path = os.path.join(common.data_dir(), "corpus", "news_comments.txt")
    data = paragraphs(path, count)
    hybrid = split.SentenceSplitter("kiwi").load()
    kiwi = hybrid._kiwi

    def kiwi_all(text):
        return [s.text.strip() for s in kiwi.split_into_sents(text, return_sub_sents=False)
                if s.text.strip()]

    reference = measure("kiwipiepy %s, every paragraph" % _version("kiwipiepy"), kiwi_all, data)
    measure("SentenceSplitter('kiwi'): rules, then kiwipiepy", hybrid.split, data, reference)
    measure("SentenceSplitter('punct'): rules only", split.split_punct, data, reference)
    try:
        import kss
    except ImportError:
        common.row("splitter", "kss", "not installed", "")
        return
    small = data[:max(1, kss_count // GROUP)]
    measure("kss %s (backend %s)" % (_version("kss"), _kss_backend()),
            lambda text: kss.split_sentences(text), small, reference[:len(small)])


def _version(module):
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return "?"


def _kss_backend():
    for module, name in (("mecab", "mecab"), ("konlpy", "mecab (konlpy)")):
        try:
            __import__(module)
            return name
        except ImportError:
            pass
    return "pecab (pure Python)"


if __name__ == "__main__":
    main()

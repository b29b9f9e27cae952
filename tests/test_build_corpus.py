"""Tests of build_corpus.py and krbert.corpus (sources, wikitext, clean, split, dedup, writer,
build), run as a user runs it, on the fixtures in tests/fixtures/corpus/:

- kowiki-sample.xml: a MediaWiki export with two articles (templates, labelled links, a
  table, <ref>, a heading, lists, a file link, categories, an interlanguage link), a
  redirect, a talk page and a disambiguation page;
- comments.jsonl, comments.csv: comments with zero-width characters, decomposed Hangul,
  long repeats, a URL, an e-mail address, a repeated document, quoted CSV cells;
- nsmc-excluded.tsv: evaluation texts in NSMC's format (one quoted twice).

The sentence splitter is kiwipiepy where it is installed (Python 3.11); the tests that
need it are skipped with the reason elsewhere (its model has only source releases for
Python 3.7).
"""

import bz2
import collections
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest

from krbert import cli
from krbert.corpus import build, clean, dedup, split, wikitext, writer
from krbert.files import in_use

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "corpus")
WIKI = os.path.join(FIXTURES, "kowiki-sample.xml")
JSONL = os.path.join(FIXTURES, "comments.jsonl")
CSV = os.path.join(FIXTURES, "comments.csv")
EXCLUDED = os.path.join(FIXTURES, "nsmc-excluded.tsv")

NO_KIWI = split.kiwi_missing_reason()
needs_kiwi = pytest.mark.skipif(
    NO_KIWI is not None,
    reason="kiwipiepy is not installed (%s); it is locked for Python 3.11 only: its model "
           "has only source releases for Python 3.7" % NO_KIWI)


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


needs_datasketch = pytest.mark.skipif(not _importable("datasketch"),
                                      reason="datasketch is not installed")
SPLITTERS = ["punct", pytest.param("kiwi", marks=needs_kiwi)]

WIKI_TEXT = """\
대한민국(大韓民國)은 동아시아의 한반도 남부에 있는 공화국이다.
수도는 서울이다.
고조선은 한반도 최초의 국가로 알려져 있다.
이후 여러 나라가 세워졌다.
가장 긴 강은 낙동강이다.
가장 높은 산은 한라산이다.
자세한 내용은 공식 누리집에서 볼 수 있다.

김치는 채소를 소금에 절여 양념과 함께 발효시킨 음식이다.
김치는 배추로 많이 만든다.
배추김치는 가장 흔한 김치이다.
깍두기는 무로 만든다.
이 영화 정말 최고예요!
"""

COMMENTS_TEXT = """\
배우들 연기가 정말 좋았어요.
다시 보고 싶네요!

ㅋㅋㅋ 너무 웃겨요{split}진짜로.
하하하 최고!!!

첫 문단입니다.
한국 영화는 둘째 문단입니다.

문의는 [EMAIL] 으로 주세요.
자세한 건 [URL] 에 있어요.

배우, 감독, 음악 모두 좋았다.

첫 줄의 감상이다.
둘째 줄의 감상이다.

2019년 개봉작 중 최고.
"""


def run_build(*flags, **kwargs):
    """Runs build_corpus.py; returns (exit status, stdout, stderr)."""
    command = [sys.executable, os.path.join(ROOT, "build_corpus.py"), "--noprogress"]
    command += list(flags)
    proc = subprocess.run(command, cwd=kwargs.get("cwd", ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    return proc.returncode, proc.stdout, proc.stderr


def corpus_text(output_dir):
    """The shards of ``output_dir`` concatenated in order, with a blank line between
    shards (they end documents)."""
    names = sorted(n for n in os.listdir(str(output_dir)) if n.startswith("corpus-"))
    parts = [io.open(os.path.join(str(output_dir), n), encoding="utf-8").read() for n in names]
    return "\n".join(parts)


def corpus_stats(output_dir):
    with io.open(os.path.join(str(output_dir), "corpus_stats.json"), encoding="utf-8") as f:
        return json.load(f)


def one_error_line(status, err):
    """The error line of a failed run (checks it is one line, no traceback)."""
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("splitter", SPLITTERS)
def test_wiki_dump_becomes_articles_one_sentence_a_line(tmp_path, splitter):
    status, out, err = run_build("--input_file=" + WIKI, "--output_dir=%s" % tmp_path,
                                 "--splitter=" + splitter)
    assert status == 0, err
    assert corpus_text(tmp_path) == WIKI_TEXT
    report = corpus_stats(tmp_path)
    assert report["sources"] == {"pages": 5, "article_pages": 2, "redirect_pages": 1,
                                 "disambiguation_pages": 1, "non_article_pages": 1}
    assert report["counts"]["duplicate_sentences_in_document"] == 1
    assert report["output"]["documents"] == 2 and report["output"]["sentences"] == 12
    assert report["output"]["words"] == sum(len(line.split()) for line in
                                            WIKI_TEXT.splitlines())
    assert report["output"]["bytes"] == len(WIKI_TEXT.encode("utf-8")) and report["complete"]
    assert "| sentences | 12 | 91M |" in out and "| documents | 2 | - | - |" in out


def test_wiki_bz2_reads_as_plain_and_a_truncated_one_keeps_the_pages_before(tmp_path):
    data = open(WIKI, "rb").read()
    # Two bz2 streams, as in a multistream dump: the first four pages, then the rest.
    cut = data.index(b"  <page>\n    <title>\xea\xb9\x80\xec\xb9\x98")
    whole = tmp_path / "kowiki-pages-articles.xml.bz2"
    whole.write_bytes(bz2.compress(data[:cut]) + bz2.compress(data[cut:]))
    status, _, err = run_build("--input_file=%s" % whole, "--output_dir=%s" % (tmp_path / "a"),
                               "--splitter=punct")
    assert status == 0, err
    assert corpus_text(tmp_path / "a") == WIKI_TEXT
    truncated = tmp_path / "kowiki-truncated.xml.bz2"
    second = bz2.compress(data[cut:])
    truncated.write_bytes(bz2.compress(data[:cut]) + second[:len(second) // 2])
    status, _, err = run_build("--input_file=%s" % truncated,
                               "--output_dir=%s" % (tmp_path / "b"), "--splitter=punct")
    assert status == 0, err
    warning = err.strip().splitlines()[0]
    assert warning.startswith("warning: %s: the compressed file ends early or is corrupt"
                              % truncated)
    assert "kept the 4 pages before it" in warning
    assert corpus_text(tmp_path / "b") == WIKI_TEXT.split("\n\n")[0] + "\n"
    assert corpus_stats(tmp_path / "b")["warnings"] == [warning[len("warning: "):]]


def test_xml_that_breaks_off_keeps_the_pages_before_and_says_where(tmp_path):
    text = io.open(WIKI, encoding="utf-8").read()
    broken = tmp_path / "broken.xml"
    cut = text.index("<title>서울 (동음이의)")
    broken.write_text(text[:cut] + "<title>깨진 <문서</title>\n", encoding="utf-8")
    status, _, err = run_build("--input_file=%s" % broken, "--output_dir=%s" % (tmp_path / "o"),
                               "--splitter=punct")
    assert status == 0, err
    line = text[:cut].count("\n") + 1
    assert err.strip().startswith("warning: %s:%d:" % (broken, line)), err
    assert "the XML breaks off here" in err and "kept the 3 pages before it" in err
    assert corpus_text(tmp_path / "o") == WIKI_TEXT.split("\n\n")[0] + "\n"


@pytest.mark.parametrize("splitter", SPLITTERS)
def test_jsonl_and_csv_cleaned_split_deduplicated_and_decontaminated(tmp_path, splitter):
    status, out, err = run_build(
        "--input_file=%s,%s" % (JSONL, CSV), "--column=comment",
        "--output_dir=%s" % tmp_path, "--exclude_file=%s:document" % EXCLUDED,
        "--mask_urls", "--mask_emails", "--max_repeat=3", "--splitter=" + splitter)
    assert status == 0, err
    # kiwipiepy finds the sentence that ends without punctuation ("웃겨요 진짜로.").
    expected = COMMENTS_TEXT.format(split="\n" if splitter == "kiwi" else " ")
    assert corpus_text(tmp_path) == expected
    counts = corpus_stats(tmp_path)["counts"]
    assert {key: counts.get(key, 0) for key in (
        "nfc_changed_paragraphs", "control_characters_removed", "urls_masked", "emails_masked",
        "repeats_shortened", "repeat_characters_removed", "excluded_paragraphs",
        "sentences_too_little_hangul", "empty_documents", "duplicate_documents")} == {
        "nfc_changed_paragraphs": 1, "control_characters_removed": 1, "urls_masked": 1,
        "emails_masked": 1, "repeats_shortened": 3, "repeat_characters_removed": 10,
        "excluded_paragraphs": 2, "sentences_too_little_hangul": 1, "empty_documents": 3,
        "duplicate_documents": 1}
    report = corpus_stats(tmp_path)
    assert report["read"]["documents"] == 11
    assert report["exclusions"]["texts"] == 2
    assert "| decontamination: paragraphs equal to an excluded text | 2 | paragraphs |" in out


def test_a_sentence_equal_to_an_excluded_text_is_dropped_inside_a_paragraph(tmp_path):
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("좋은 영화였다. 이 영화 정말 최고예요! 또 보고 싶다.\n", encoding="utf-8")
    excluded = tmp_path / "excluded.txt"
    excluded.write_text("이 영화   정말 최고예요!\n", encoding="utf-8")
    status, out, err = run_build("--input_file=%s" % corpus, "--output_dir=%s" % (tmp_path / "o"),
                                 "--exclude_file=%s" % excluded, "--splitter=punct")
    assert status == 0, err
    assert corpus_text(tmp_path / "o") == "좋은 영화였다.\n또 보고 싶다.\n"
    assert corpus_stats(tmp_path / "o")["counts"]["excluded_sentences"] == 1


def test_shards_cut_at_documents_are_the_same_with_two_workers(tmp_path):
    corpus = tmp_path / "docs.txt"
    documents = ["%d번째 문서의 첫 문장이다. 둘째 문장도 있다." % i for i in range(40)]
    corpus.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    status, _, err = run_build("--input_file=%s" % corpus, "--output_dir=%s" % (tmp_path / "one"),
                               "--splitter=punct")
    assert status == 0, err
    status, _, err = run_build("--input_file=%s" % corpus, "--output_dir=%s" % (tmp_path / "two"),
                               "--splitter=punct", "--shard_size_mb=0.0005", "--num_workers=2")
    assert status == 0, err
    names = sorted(os.listdir(str(tmp_path / "two")))
    assert len(names) > 5 and names[0] == "corpus-00000.txt" and names[-1] == "corpus_stats.json"
    for name in names[:-1]:
        text = (tmp_path / "two" / name).read_text(encoding="utf-8")
        assert not text.startswith("\n") and text.endswith("다.\n")
    assert corpus_text(tmp_path / "two") == corpus_text(tmp_path / "one")
    assert corpus_text(tmp_path / "one").count("\n\n") == 39


def settings(**overrides):
    values = {"text_documents": "auto", "text_field": "text", "column": None, "delimiter": None,
              "splitter": "punct", "mask_urls": False, "mask_emails": False, "max_repeat": 0,
              "min_chars": 2, "min_hangul": 0.3, "near_dedup": False,
              "near_dedup_threshold": 0.8, "near_dedup_num_perm": 128}
    values.update(overrides)
    return values


def builder(corpus, output_dir, **overrides):
    return build.CorpusBuilder([(str(corpus), "text")], str(output_dir), settings(**overrides),
                               set(), {"files": [], "texts": 0}, shard_bytes=200,
                               show_progress=False, log=lambda line: None)


def test_a_rerun_continues_after_the_finished_shards(tmp_path, monkeypatch):
    corpus = tmp_path / "docs.txt"
    lines = ["%d번 문서는 이렇게 시작한다. 그리고 이렇게 끝난다." % (i % 25) for i in range(60)]
    corpus.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    clean_run = builder(corpus, tmp_path / "clean").run()
    original = build.CorpusBuilder.shard_done

    def killed_after_three(self, shards_done):
        original(self, shards_done)
        if shards_done == 3:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(build.CorpusBuilder, "shard_done", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        builder(corpus, tmp_path / "out").run()
    monkeypatch.setattr(build.CorpusBuilder, "shard_done", original)
    out = tmp_path / "out"
    assert sorted(os.listdir(str(out)))[3:] == ["corpus_stats.json"]
    kept = [os.stat(str(out / ("corpus-%05d.txt" % i))).st_ino for i in range(3)]
    logged = []
    second = builder(corpus, out)
    second.log = logged.append
    report = second.run()
    assert logged == ["build_corpus: continuing after the 3 finished shards in %s" % out]
    assert [os.stat(str(out / ("corpus-%05d.txt" % i))).st_ino for i in range(3)] == kept
    assert corpus_text(out) == corpus_text(tmp_path / "clean")
    for key in ("output", "counts", "read", "sources"):
        assert report[key] == json.loads(json.dumps(clean_run[key])), key
    assert report["counts"]["duplicate_documents"] == 35
    logged = []
    third = builder(corpus, out)
    third.log = logged.append
    assert third.run()["complete"] and logged == [
        "build_corpus: %s already holds the complete corpus; nothing to do" % out]
    with pytest.raises(cli.InputError, match="holds a corpus built from other inputs or settings"):
        builder(corpus, out, min_chars=5).run()


@needs_datasketch
def test_near_duplicate_documents_are_dropped(tmp_path):
    corpus = tmp_path / "docs.txt"
    base = ("오늘은 날씨가 맑고 바람이 시원해서 공원에 산책을 나가기에 아주 좋은 날이었다. "
            "저녁에는 가족과 함께 맛있는 음식을 먹으며 즐거운 이야기를 나누었다. "
            "내일도 오늘처럼 맑은 하늘 아래에서 천천히 걸을 수 있기를 바란다.")
    other = "전혀 다른 내용의 문서이다."
    corpus.write_text("\n\n".join([base, base.replace("아주", "아조"), other]) + "\n",
                      encoding="utf-8")
    status, _, err = run_build("--input_file=%s" % corpus, "--output_dir=%s" % (tmp_path / "o"),
                               "--splitter=punct", "--near_dedup")
    assert status == 0, err
    assert corpus_text(tmp_path / "o") == base.replace(". ", ".\n") + "\n\n" + other + "\n"
    assert corpus_stats(tmp_path / "o")["counts"]["near_duplicate_documents"] == 1


def corrupted(compress, text, start=200, length=60, bits=0x5A):
    """``compress(text)`` with ``bits`` of ``length`` bytes from ``start`` on flipped."""
    data = bytearray(compress(text))
    for index in range(start, start + length):
        data[index] ^= bits
    return bytes(data)


LINES = "".join("%d번 문장은 여기에 있다. 그리고 끝난다.\n\n" % i for i in range(3000))
# A corrupt bz2 block decompresses into bytes that are not UTF-8 before its check fails:
# one bit flipped in the Huffman data (the first line read is then junk).
JUNK_THEN_CORRUPT = corrupted(bz2.compress, LINES.encode("utf-8"), 112, 1, 0x01)


@pytest.mark.parametrize("name,content,flags,message", [
    ("lines.txt.gz", corrupted(lambda data: __import__("gzip").compress(data),
                               LINES.encode("utf-8")), [],
     r"lines.txt.gz: the gzip file is truncated or corrupt \(.+\) (after|at) line \d+; download "
     r"or copy it again$"),
    ("lines.txt.bz2", JUNK_THEN_CORRUPT, [],
     r"lines.txt.bz2: the bz2 file is truncated or corrupt \(Invalid data stream\) at line 1; "),
    ("lines.txt.bz2", bz2.compress(LINES[:100].encode("utf-8"))
     + corrupted(bz2.compress, LINES.encode("utf-8"), 40, 20), [],
     r"lines.txt.bz2: the bz2 file is truncated or corrupt \(Invalid data stream\) after line "),
    ("rows.csv", 'id,text\n1,"좋은 글이다\n2,두번째 글이다\n3,세번째 글이다\n'.encode("utf-8"),
     ["--column=text"], r"rows.csv:2: a quote opened in this row is never closed \(the file "
                        r"ends inside it, at line 4\); close the quote"),
    ("rows.csv", "id,text\n1,좋다\n".encode("utf-8"), ["--column=text", "--delimiter=ab"],
     r"^error: --delimiter=ab: must be one character other than a quote or a line break"),
    ("docs.txt", LINES.encode("utf-8"), ["--near_dedup", "--near_dedup_num_perm=0"],
     r"^error: --near_dedup_num_perm=0: MinHash needs 2 permutations or more"),
    pytest.param("docs.txt", LINES.encode("utf-8"), ["--near_dedup", "--near_dedup_threshold=1"],
                 r"^error: --near_dedup_num_perm=128 with --near_dedup_threshold=1.0: datasketch "
                 r"cannot band .*; lower --near_dedup_threshold", marks=needs_datasketch),
    ("bad.txt", b"\xec\xa2\x8b\xec\x9d\x80 \xeb\xac\xb8\xec\x9e\xa5.\n\nok\n\xff\xfe\n", [],
     r"bad.txt:4: not valid UTF-8 \(byte 1 of the line\); save the file as UTF-8$"),
    ("rows.csv", "id,text\n1,좋다\n".encode("utf-8"), ["--column=comment"],
     r"rows.csv:1: no column 'comment' in the header \(found: id, text\); pass --column$"),
    ("rows.jsonl", '{"text": "좋다"}\n{"body": "나쁘다"}\n'.encode("utf-8"), [],
     r"rows.jsonl:2: no field 'text' \(found: body\); pass --text_field$"),
    ("short.txt", "ㅋ\n\nOK\n".encode("utf-8"), [],
     r"short.txt: no document left to write \(2 read; .*\); check --format"),
    ("notes.md", b"text\n", [], r"notes.md: cannot tell the format from the file name; pass "
                                r"--format=text\|jsonl\|csv\|wiki$"),
], ids=["corrupt-gz", "corrupt-bz2-junk-first", "corrupt-second-bz2-stream", "csv-unclosed-quote",
        "delimiter", "num-perm", "threshold", "not-utf8", "csv-column", "jsonl-field",
        "nothing-left", "unknown-format"])
def test_bad_input_is_one_line_naming_the_file_and_place(tmp_path, name, content, flags,
                                                         message):
    path = tmp_path / name
    path.write_bytes(content)
    status, _, err = run_build("--input_file=%s" % path, "--output_dir=%s" % (tmp_path / "o"),
                               "--splitter=punct", *flags)
    assert pytest.importorskip("re").search(message, one_error_line(status, err)), err
    assert not os.path.exists(str(tmp_path / "o" / "corpus_stats.json"))


def test_an_output_that_would_replace_an_input_is_refused(tmp_path):
    shard = tmp_path / "corpus-00000.txt"
    shard.write_text("이미 있는 조각이다.\n", encoding="utf-8")
    status, _, err = run_build("--input_file=%s/*.txt" % tmp_path, "--output_dir=%s" % tmp_path,
                               "--splitter=punct")
    assert "corpus-00000.txt: --output_dir would write over this input" in one_error_line(
        status, err)
    assert shard.read_text(encoding="utf-8") == "이미 있는 조각이다.\n"


def test_a_folder_in_use_by_another_run_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    marker = in_use.claim(str(out), "--output_dir")  # this test process is the other run
    try:
        status, _, err = run_build("--input_file=%s" % WIKI, "--output_dir=%s" % out,
                                   "--splitter=punct")
        assert one_error_line(status, err).startswith(
            "error: --output_dir=%s is in use by another run (process %d on " % (out, os.getpid()))
        assert sorted(os.listdir(str(out))) == [os.path.basename(marker)]
    finally:
        in_use.release(marker)


def test_a_stats_file_that_is_no_record_of_a_run_is_one_line(tmp_path):
    stats_file = tmp_path / "corpus_stats.json"
    for text, problem in [("[1, 2]", "it holds a JSON list, not an object"),
                          ('{"complete": true}', "no object 'counts'")]:
        stats_file.write_text(text, encoding="utf-8")
        with pytest.raises(cli.InputError) as error:
            writer.read_state(str(tmp_path))
        assert str(error.value) == (
            "%s: not the record of a build_corpus.py run (%s); remove it, or choose another "
            "--output_dir" % (stats_file, problem))


CTRL_C_DOCS = 200000


def as_from_a_terminal():
    """In the child before exec: SIGINT's default action and unblocked, as a shell's
    foreground job has it, whatever the test process (an xdist worker) left it as."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def interrupted_build(tmp_path, out, docs):
    """Starts a 2-worker build of ``docs`` documents into ``out`` and sends it SIGINT once
    its second shard is written; returns (the build's flags, its exit status, its stderr)."""
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join("%d번 문서는 이렇게 시작한다. 그리고 %d번째로 끝난다.\n\n"
                              % (i, i) for i in range(docs)), encoding="utf-8")
    shutil.rmtree(str(out), ignore_errors=True)
    flags = ["--input_file=%s" % corpus, "--output_dir=%s" % out, "--splitter=punct",
             "--num_workers=2", "--shard_size_mb=0.1"]
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "build_corpus.py"),
                             "--noprogress"] + flags, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True,
                            preexec_fn=as_from_a_terminal)
    while proc.poll() is None and not (out / "corpus-00001.txt").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    return flags, proc.returncode, err


def test_ctrl_c_on_a_parallel_build_is_one_line_and_a_rerun_continues(tmp_path):
    # A build that outran the signal (a busy machine can stall this process for seconds)
    # proves nothing: it is started again on a corpus four times longer, up to twice.
    docs, out = CTRL_C_DOCS, tmp_path / "out"
    for _ in range(3):
        flags, status, err = interrupted_build(tmp_path, out, docs)
        if status != 0:
            break
        docs *= 4
    line = one_error_line(status, err)
    kept = corpus_stats(out)["output"]
    assert line == ("error: interrupted: --output_dir=%s keeps the %d finished shards (%d "
                    "documents); rerun the same command to continue after them"
                    % (out, kept["shards"], kept["documents"]))
    assert kept["shards"] >= 2 and not corpus_stats(out)["complete"]
    status, _, err = run_build(*flags)
    assert status == 0 and "continuing after the %d finished shards" % kept["shards"] in err
    assert corpus_stats(out)["output"]["documents"] == docs
    last = docs - 1
    assert corpus_text(out).split("\n\n")[last].startswith("%d번 문서는" % last)


def test_runs_without_tensorflow(tmp_path):
    code = ("import runpy, sys; sys.modules['tensorflow'] = None; "
            "sys.argv = ['build_corpus.py', '--noprogress', '--splitter=punct', "
            "'--input_file=%s', '--output_dir=%s']; "
            "runpy.run_path('build_corpus.py', run_name='__main__')" % (WIKI, tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    assert corpus_text(tmp_path) == WIKI_TEXT


def test_without_kiwipiepy_the_default_splitter_says_what_to_do(tmp_path):
    code = ("import runpy, sys; sys.modules['kiwipiepy'] = None; "
            "sys.argv = ['build_corpus.py', '--input_file=%s', '--output_dir=%s']; "
            "runpy.run_path('build_corpus.py', run_name='__main__')" % (WIKI, tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert one_error_line(proc.returncode, proc.stderr) == (
        "error: --splitter=kiwi needs the Python package kiwipiepy, which is not installed: "
        "pip install kiwipiepy (requirements/corpus.txt) or pass --splitter=punct")


def test_the_sample_corpus_keeps_no_text_of_the_excluded_test_reviews(tmp_path, data_dir):
    test_file = os.path.join(data_dir, "nsmc", "test.tsv")
    status, _, err = run_build("--input_file=%s" % os.path.join(data_dir, "corpus", "*.txt"),
                               "--output_dir=%s" % tmp_path, "--splitter=punct",
                               "--exclude_file=%s:document" % test_file)
    assert status == 0, err
    excluded, _ = build.read_exclusions(["%s:document" % test_file], settings())
    lines = set(corpus_text(tmp_path).splitlines())
    assert len(lines) > 1000 and not lines & excluded
    counts = corpus_stats(tmp_path)["counts"]
    assert counts["excluded_paragraphs"] + counts.get("excluded_sentences", 0) > 0


def test_cleaner_normalises_and_counts():
    cleaner = clean.Cleaner(max_repeat=2)
    assert cleaner.clean("\u1112\u1161\u11ab\u200b글\u00ad  ㅋㅋㅋㅋ\t1000000원!!!!") == \
        "한글 ㅋㅋ 1000000원!!"
    assert cleaner.counts == collections.Counter({
        "nfc_changed_paragraphs": 1, "control_characters_removed": 2, "repeats_shortened": 2,
        "repeat_characters_removed": 4})
    assert clean.hangul_share("ok 좋다") == pytest.approx(0.5)


def test_punctuation_split_keeps_quotes_and_numbers_together():
    assert split.split_punct('그는 "좋다. 가자"라고 말했다. 값은 3.5이다! 정말?? 그래…') == [
        '그는 "좋다. 가자"라고 말했다.', "값은 3.5이다!", "정말??", "그래…"]


def test_kiwi_missing_reason_is_none_only_when_kiwipiepy_imports(monkeypatch):
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)  # an import of it fails
    assert "kiwipiepy" in split.kiwi_missing_reason()
    monkeypatch.setitem(sys.modules, "kiwipiepy", types.ModuleType("kiwipiepy"))
    assert split.kiwi_missing_reason() is None


@needs_kiwi
def test_the_model_runs_only_where_a_sentence_may_end_without_punctuation():
    splitter = split.SentenceSplitter("kiwi")
    assert splitter.split("정말 재미있는 영화였다. 배우들은 연기를 잘했고 음악도 좋았다.") == [
        "정말 재미있는 영화였다.", "배우들은 연기를 잘했고 음악도 좋았다."]
    assert splitter.counts["pieces_split_by_model"] == 0
    assert splitter.split("여러 문장으로 구성된 텍스트네 이걸 분리해줘") == [
        "여러 문장으로 구성된 텍스트네", "이걸 분리해줘"]
    assert splitter.counts["pieces_split_by_model"] == 1
    assert splitter.split("연기가 정말 좋았어요 다음 편도 기대됩니다.") == [
        "연기가 정말 좋았어요", "다음 편도 기대됩니다."]
    assert splitter.counts["pieces_split_by_model"] == 2


UNPUNCTUATED = ("오늘 영화 정말 재밌었어요 배우들 연기도 좋고 음악도 좋았다 다음에 또 보고 싶네 "
                "ㅋㅋ 그런데 끝이 조금 아쉬웠음 ")


class _RecordingModel(object):
    """Stands in for kiwipiepy: records the length of every text, returns it whole."""

    def __init__(self):
        self.lengths = []

    def split_into_sents(self, text, return_sub_sents=False):
        self.lengths.append(len(text))
        return [collections.namedtuple("Sentence", "text")(text)]


def test_a_multi_megabyte_line_reaches_the_model_in_bounded_parts():
    line = "".join("%d번 %s" % (i, UNPUNCTUATED) for i in range(40000)).strip()
    assert len(line.encode("utf-8")) > 4e6
    splitter = split.SentenceSplitter("kiwi")
    splitter._kiwi = model = _RecordingModel()
    sentences = splitter.split(line)
    assert " ".join(sentences) == line  # every word kept, in order
    assert max(model.lengths) <= split.MODEL_MAX_CHARS
    assert len(model.lengths) <= 2 * len(line) // split.MODEL_MAX_CHARS + 1
    assert splitter.counts["pieces_cut_before_the_model"] == 1
    # A cut lands where a sentence may end: after a (final or connective) ending.
    assert all(split.MAY_END.search(s[-2:] + " 다") for s in sentences[:-1])
    assert not all(split.MAY_END.search(w[-2:] + " 다") for w in line.split())
    assert split.bounded_parts("가" * 5000, 2000) == ["가" * 2000, "가" * 2000, "가" * 1000]


@needs_kiwi
def test_kiwi_splits_a_long_unpunctuated_line_keeping_every_word():
    line = (UNPUNCTUATED * 80).strip()
    assert len(line) > 2 * split.MODEL_MAX_CHARS
    splitter = split.SentenceSplitter("kiwi")
    sentences = splitter.split(line)
    assert "".join("".join(sentences).split()) == "".join(line.split())
    assert len(sentences) > 80 and max(len(s) for s in sentences) < 100
    assert splitter.counts["pieces_cut_before_the_model"] == 1


def test_hash_set_grows_and_finds_duplicates():
    table = dedup.HashSet64(capacity=4)
    values = [dedup.text_hash("문서 %d" % i) for i in range(1000)]
    assert all(table.add(v) for v in values) and len(table) == 1000
    assert not any(table.add(v) for v in values) and len(table) == 1000
    assert table.nbytes <= 32 * 1000


def test_wikitext_links_and_markup():
    import mwparserfromhell

    code = mwparserfromhell.parse("[[:분류:국가]] [[서울|수도]], [[부산]] ''기울임'' "
                                  "<small>작게</small>{{틀}}<ref>참고</ref> [[ja:日本]]&amp;")
    assert wikitext.plain_text(code) == " 수도, 부산 기울임 작게 &"

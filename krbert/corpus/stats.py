"""The corpus report: counts of what was read, removed and written, and the tables
build_corpus.py prints (the model card's terms: size in GB, documents, sentences, words).

Words are whitespace-separated eojeol, as the card counts them; GB are 10^9 bytes of the
written shards (UTF-8, line breaks included).
"""

import collections

CARD = collections.OrderedDict([
    ("name", "KR-BERT-MEDIUM (model card)"), ("gb", 12.37), ("documents", None),
    ("sentences", 91e6), ("words", 1.17e9)])
"""The published corpus's figures; the card does not give a document count."""

REMOVED_ROWS = [
    # (count key, unit, what)
    ("nfc_changed_paragraphs", "paragraphs", "changed by Unicode NFC"),
    ("control_characters_removed", "characters", "control / zero-width characters removed"),
    ("urls_masked", "URLs", "URLs masked"),
    ("emails_masked", "addresses", "e-mail addresses masked"),
    ("repeats_shortened", "runs", "long repeats shortened"),
    ("repeat_characters_removed", "characters", "characters cut from long repeats"),
    ("excluded_paragraphs", "paragraphs", "decontamination: paragraphs equal to an excluded text"),
    ("excluded_sentences", "sentences", "decontamination: sentences equal to an excluded text"),
    ("sentences_too_short", "sentences", "filter: shorter than --min_chars"),
    ("sentences_too_little_hangul", "sentences", "filter: Hangul share below --min_hangul"),
    ("duplicate_sentences_in_document", "sentences", "exact duplicate sentences in a document"),
    ("empty_documents", "documents", "documents left with no sentence"),
    ("duplicate_documents", "documents", "exact duplicate documents"),
    ("near_duplicate_documents", "documents", "near-duplicate documents (MinHash)"),
]

SOURCE_ROWS = [
    ("pages", "wiki pages read"), ("article_pages", "wiki articles kept"),
    ("redirect_pages", "wiki redirects dropped"),
    ("disambiguation_pages", "wiki disambiguation pages dropped"),
    ("non_article_pages", "wiki pages of other namespaces dropped"),
]


def _human(value):
    """1234567 -> '1.23M'; small numbers as they are."""
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= limit:
            return "%.3g%s" % (value / limit, suffix)
    return "%d" % value if float(value).is_integer() else "%.3g" % value


def _share(value, card):
    return "%.3g%%" % (100.0 * value / card)


def card_table(output):
    """A markdown table: this corpus beside the model card's (``output``: the report's
    "output" part: bytes, documents, sentences, words)."""
    gb = output["bytes"] / 1e9
    rows = [("size (GB)", "%.4g" % gb, "%.2f" % CARD["gb"], _share(gb, CARD["gb"])),
            ("documents", "{:,}".format(output["documents"]), "-", "-")]
    for key in ("sentences", "words"):
        rows.append((key, "{:,}".format(output[key]), _human(CARD[key]),
                     _share(output[key], CARD[key])))
    lines = ["| | this corpus | %s | share |" % CARD["name"], "|---|---:|---:|---:|"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows]
    return "\n".join(lines)


def removed_table(report):
    """A markdown table of what the sources dropped and each cleaning step and filter
    removed or changed (zero rows left out)."""
    counts = report["counts"]
    sources = report.get("sources", {})
    lines = ["| step | count | unit |", "|---|---:|---|"]
    read = report["read"]
    lines.append("| documents read | {:,} | documents |".format(read["documents"]))
    lines.append("| bytes read | {:,} | bytes |".format(read["bytes"]))
    for key, what in SOURCE_ROWS:
        if sources.get(key):
            lines.append("| %s | {:,} | pages |".format(sources[key]) % what)
    for key, unit, what in REMOVED_ROWS:
        if counts.get(key):
            lines.append("| %s | {:,} | %s |".format(counts[key]) % (what, unit))
    if report.get("exclusions"):
        lines.append("| excluded texts loaded (distinct, cleaned) | {:,} | texts |".format(
            report["exclusions"]["texts"]))
    split = counts.get("bytes_split_by_model", 0)
    if split:
        lines.append("| text split by the model (the rest by rules) | {:,} | bytes |"
                     .format(split))
    if counts.get("pieces_cut_before_the_model"):
        lines.append("| pieces cut before the model (longer than split.MODEL_MAX_CHARS) | {:,} "
                     "| pieces |".format(counts["pieces_cut_before_the_model"]))
    return "\n".join(lines)


def summary(report):
    """Both tables with a title line each, for the console."""
    out = report["output"]
    return "\n".join([
        "corpus: %d shards in %s, %.1f s" % (out["shards"], report["output_dir"],
                                             report["seconds"]),
        "", card_table(out), "", removed_table(report)])

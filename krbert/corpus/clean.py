"""Cleaning and filtering text for the pretraining corpus, every change counted.

``Cleaner.clean`` normalises one paragraph, in this order:

1. Unicode NFC (Hangul typed as separate jamo becomes syllables);
2. control and format characters removed (categories Cc and Cf: zero-width spaces and
   joiners, byte order marks, soft hyphens, bidi marks); tabs and line breaks become spaces;
3. optionally URLs -> URL_MASK and e-mail addresses -> EMAIL_MASK;
4. optionally a run of one or two characters (not digits) repeated more than
   ``max_repeat`` times is cut to ``max_repeat`` repeats (ㅋㅋㅋㅋㅋㅋ -> ㅋㅋㅋ);
5. whitespace runs collapsed to one space, ends stripped.

``Cleaner.keep_sentence`` applies the filters: at least ``min_chars`` characters that are
not spaces, and at least ``min_hangul`` of them Hangul (syllables or jamo).

The decontamination set (build.read_exclusions) is made of the evaluation texts cleaned the
same way, so that a corpus sentence is compared with them after the same normalisation.
"""

import collections
import re
import sys
import unicodedata

URL_MASK = "[URL]"
EMAIL_MASK = "[EMAIL]"

_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPACE = re.compile(r"\s+")
_LINE_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")


def _category_class(categories):
    """A regex character class of every code point in the Unicode categories given."""
    ranges, start, previous = [], None, None
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in categories:
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append((start, previous))
            start = None
    if start is not None:
        ranges.append((start, previous))
    return "[%s]" % "".join(
        "\\U%08x" % a if a == b else "\\U%08x-\\U%08x" % (a, b) for a, b in ranges)


_INVISIBLE = None


def _invisible():
    """Control (Cc) and format (Cf) characters; built once, on first use."""
    global _INVISIBLE
    if _INVISIBLE is None:
        _INVISIBLE = re.compile(_category_class(("Cc", "Cf")))
    return _INVISIBLE


def is_hangul(char):
    """Hangul syllables, jamo and compatibility jamo."""
    code = ord(char)
    return (0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F
            or 0xA960 <= code <= 0xA97F or 0xD7B0 <= code <= 0xD7FF)


def hangul_share(text):
    """Share of Hangul among the characters of ``text`` that are not spaces (0 for none)."""
    letters = hangul = 0
    for char in text:
        if char != " ":
            letters += 1
            if "\uac00" <= char <= "\ud7a3" or is_hangul(char):
                hangul += 1
    return hangul / float(letters) if letters else 0.0


class Cleaner(object):
    """Normalises paragraphs and filters sentences; ``counts`` (a Counter) records every
    change: characters removed, masks, repeats cut, sentences filtered."""

    def __init__(self, mask_urls=False, mask_emails=False, max_repeat=0, min_chars=1,
                 min_hangul=0.0):
        self.mask_urls = mask_urls
        self.mask_emails = mask_emails
        self.max_repeat = max_repeat
        self.min_chars = min_chars
        self.min_hangul = min_hangul
        self.repeat = (re.compile(r"([^\d\s]{1,2}?)\1{%d,}" % max_repeat)
                       if max_repeat > 0 else None)
        self.counts = collections.Counter()
        _invisible()  # built once, before worker processes fork

    def settings(self):
        return collections.OrderedDict([
            ("mask_urls", self.mask_urls), ("mask_emails", self.mask_emails),
            ("max_repeat", self.max_repeat), ("min_chars", self.min_chars),
            ("min_hangul", self.min_hangul)])

    def clean(self, text):
        """The normalised paragraph (str); may be empty."""
        counts = self.counts
        if not text.isascii():
            normal = unicodedata.normalize("NFC", text)
            if normal != text:
                counts["nfc_changed_paragraphs"] += 1
                text = normal
        text = _LINE_BREAKS.sub(" ", text)
        text, removed = _invisible().subn("", text)
        if removed:
            counts["control_characters_removed"] += removed
        if self.mask_emails and "@" in text:
            text, masked = _EMAIL.subn(EMAIL_MASK, text)
            counts["emails_masked"] += masked
        if self.mask_urls and ("://" in text or "www." in text.lower()):
            text, masked = _URL.subn(URL_MASK, text)
            counts["urls_masked"] += masked
        if self.repeat is not None:
            before = len(text)
            text, cut = self.repeat.subn(self._cut_repeat, text)
            if cut:
                counts["repeats_shortened"] += cut
                counts["repeat_characters_removed"] += before - len(text)
        return _SPACE.sub(" ", text).strip()

    def _cut_repeat(self, match):
        return match.group(1) * self.max_repeat

    def keep_sentence(self, sentence):
        """False (and counted) for a sentence too short or with too little Hangul."""
        letters = len(sentence) - sentence.count(" ")
        if letters < self.min_chars:
            self.counts["sentences_too_short"] += 1
            return False
        if self.min_hangul > 0 and hangul_share(sentence) < self.min_hangul:
            self.counts["sentences_too_little_hangul"] += 1
            return False
        return True


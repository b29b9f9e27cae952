"""MediaWiki pages to plain text: which pages are articles, and wikitext to paragraphs.

The dump's XML is read by the standard library (sources.read_wiki); the wikitext of a page
is parsed by mwparserfromhell into a tree of typed nodes, and ``plain_text`` keeps what a
reader sees as running text:

- links: ``[[target|label]]`` gives the label, ``[[target]]`` the target; links to
  categories, files and other languages are dropped; ``[url label]`` gives the label;
- templates, parser functions, tables, ``<ref>``, ``<math>``, galleries, comments and
  headings are dropped (a heading is a title, not a sentence);
- bold, italics and other inline tags keep their text; list markers are dropped, each
  item stays on its own line; HTML entities become their characters.

Every non-blank line of the result is one paragraph.

Articles are pages of namespace 0 that are neither redirects nor disambiguation pages.
"""

import collections

Page = collections.namedtuple("Page", ["title", "namespace", "redirect", "text"])

DROPPED_TAGS = frozenset([
    "ref", "references", "math", "chem", "ce", "table", "gallery", "timeline", "score",
    "syntaxhighlight", "source", "pre", "code", "nowiki", "graph", "mapframe", "maplink",
    "templatedata", "imagemap", "hiero", "inputbox", "categorytree", "poem-ref",
])
"""Tags whose whole content is left out (``table`` includes wiki tables ``{| |}``)."""

LIST_MARKERS = frozenset(["li", "dt", "dd"])

DROPPED_LINK_PREFIXES = frozenset([
    "분류", "category", "파일", "file", "그림", "image", "미디어", "media", "틀", "template",
    "위키백과", "wikipedia", "wp", "포털", "portal", "특수", "special", "도움말", "help",
])
"""Namespaces (before the first colon of a link target, lower case) whose links are dropped."""

DISAMBIGUATION_TEMPLATES = frozenset([
    "동음이의", "동음이의어", "동음이의 문서", "disambig", "disambiguation", "dab", "동명이인",
    "지명 동음이의", "인명 동음이의",
])


def local_name(tag):
    """An XML tag without its {namespace}."""
    return tag.rsplit("}", 1)[-1]


def _child_text(element, name):
    for child in element:
        if local_name(child.tag) == name:
            return child.text or ""
    return None


def read_page(element):
    """The Page of a <page> element of a MediaWiki export."""
    text = ""
    for child in element:
        if local_name(child.tag) == "revision":
            text = _child_text(child, "text") or ""
    redirect = any(local_name(child.tag) == "redirect" for child in element)
    namespace = _child_text(element, "ns")
    return Page(title=_child_text(element, "title") or "",
                namespace=int(namespace) if namespace and namespace.strip().lstrip("-").isdigit()
                else 0,
                redirect=redirect, text=text)


def page_document(page, counts):
    """The paragraphs of an article, or None for another page (counted in ``counts``)."""
    counts["pages"] += 1
    if page.namespace != 0:
        counts["non_article_pages"] += 1
        return None
    if page.redirect or page.text.lstrip()[:9].lower() in ("#redirect", "#넘겨주기"):
        counts["redirect_pages"] += 1
        return None
    import mwparserfromhell

    code = mwparserfromhell.parse(page.text)
    if page.title.endswith("(동음이의)") or is_disambiguation(code):
        counts["disambiguation_pages"] += 1
        return None
    counts["article_pages"] += 1
    return [line.strip() for line in plain_text(code).split("\n") if line.strip()]


def template_name(template):
    return str(template.name).strip().replace("_", " ").lower()


def is_disambiguation(code):
    """Whether parsed wikitext uses a disambiguation template."""
    for template in code.filter_templates(recursive=False):
        if template_name(template) in DISAMBIGUATION_TEMPLATES:
            return True
    return False


def plain_text(code):
    """The running text of parsed wikitext (mwparserfromhell's Wikicode), lines kept."""
    parts = []
    _append_nodes(code.nodes, parts)
    return "".join(parts)


def _append_nodes(nodes, parts):
    from mwparserfromhell import nodes as mw

    for node in nodes:
        if isinstance(node, mw.Text):
            parts.append(node.value)
        elif isinstance(node, mw.Wikilink):
            parts.append(_link_text(node))
        elif isinstance(node, mw.ExternalLink):
            if node.title is not None:
                _append_nodes(node.title.nodes, parts)
            elif not node.brackets:
                parts.append(str(node.url))
        elif isinstance(node, mw.Tag):
            _append_tag(node, parts)
        elif isinstance(node, mw.HTMLEntity):
            parts.append(node.normalize())
        # Template, Argument, Comment, Heading: left out.


def _append_tag(tag, parts):
    name = str(tag.tag).strip().lower()
    if name in DROPPED_TAGS:
        return
    if name == "br":
        parts.append("\n")
    elif tag.wiki_markup and name in LIST_MARKERS:
        return  # the marker; the item's text follows as plain nodes
    elif tag.contents is not None:
        _append_nodes(tag.contents.nodes, parts)


def _link_text(link):
    target = str(link.title).strip()
    if target.startswith(":"):
        target = target[1:]
    prefix = target.split(":", 1)[0].strip().lower() if ":" in target else None
    if prefix is not None and (prefix in DROPPED_LINK_PREFIXES or _is_language_code(prefix)):
        return ""
    if link.text is not None:
        parts = []
        _append_nodes(link.text.nodes, parts)
        return "".join(parts)
    return target


def _is_language_code(prefix):
    """Interlanguage link prefixes: "en", "ja", "zh-yue", "simple", ..."""
    head = prefix.split("-", 1)[0]
    return 2 <= len(head) <= 3 and head.isascii() and head.isalpha() or prefix == "simple"

"""Replace or insert one ``## `` section of a Markdown document, keeping every other section as it is.

A section is its heading line (exactly the given title, e.g. ``"## Mask learning (`make bench-masks`)"``) and
every line up to the next ``## `` heading or the end of the text; ``###`` sub-headings belong to it. Writers of
``docs/*.md`` (``make table``, ``make bench-masks``, ``make hardware-e2e``) own one section each and rewrite it
with :func:`write_section`; a rewritten section is always ``title``, a blank line, the body, and one blank line
before the next section.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MarkdownSectionError", "find_section", "kept_subsection", "replace_section", "section_text",
           "write_section"]

_MISSING = ("append", "first", "error")


class MarkdownSectionError(ValueError):
    """A section heading is missing where it is required, or appears more than once."""


def _line_starts(text: str) -> list[int]:
    starts, at = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(at)
        at += len(line)
    return starts


def find_section(text: str, title: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of the section headed ``title`` (None when absent).

    Raises :class:`MarkdownSectionError` when the heading appears more than once (which one to replace?).
    """
    lines = text.splitlines(keepends=True)
    starts = _line_starts(text)
    found = [i for i, line in enumerate(lines) if line.rstrip() == title]
    if len(found) > 1:
        raise MarkdownSectionError(f"the heading {title!r} appears {len(found)} times; keep exactly one")
    if not found:
        return None
    first = found[0]
    end = next((starts[i] for i in range(first + 1, len(lines)) if lines[i].startswith("## ")), len(text))
    return starts[first], end


def section_text(text: str, title: str) -> str | None:
    """The whole section headed ``title`` (heading included), or None when absent."""
    span = find_section(text, title)
    return None if span is None else text[span[0]:span[1]]


def kept_subsection(path: str | Path, title: str, sub_title: str = "### Discussion") -> str:
    """The hand-written tail of a generated section: from ``sub_title`` to the section's end ("" when absent).
    Generators append it to the body they write, so a rerun keeps the words written under its numbers."""
    path = Path(path)
    if not path.is_file():
        return ""
    text = section_text(path.read_text(), title) or ""
    at = text.find(sub_title)
    return text[at:].strip() if at >= 0 else ""


def replace_section(text: str, title: str, body: str, missing: str = "append") -> str:
    """``text`` with the section ``title`` holding ``body`` (which does not repeat the heading).

    ``missing`` says what to do when there is no such section yet: ``"append"`` it at the end, put it ``"first"``
    (before the first ``## `` section, after the document's title and introduction), or ``"error"``.
    """
    if missing not in _MISSING:
        raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}")
    section = title + "\n\n" + body.strip("\n") + "\n"
    span = find_section(text, title)
    if span is not None:
        start, end = span
        return text[:start] + section + ("\n" + text[end:] if end < len(text) else "")
    if missing == "error":
        raise MarkdownSectionError(f"expected exactly one {title!r} heading in the document, found none")
    lines = text.splitlines(keepends=True)
    heading = next((at for at, line in zip(_line_starts(text), lines) if line.startswith("## ")), None)
    if missing == "append" or heading is None:
        return (text.rstrip() + "\n\n" if text.strip() else "") + section
    before = text[:heading].rstrip()
    return (before + "\n\n" if before else "") + section + "\n" + text[heading:]


def write_section(path: str | Path, title: str, body: str, missing: str = "append",
                  new_document: str = "# Results\n") -> Path:
    """Rewrite the section ``title`` of the Markdown file ``path`` (created as ``new_document`` when absent)."""
    path = Path(path)
    text = path.read_text() if path.is_file() else new_document
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, title, body, missing))
    return path

"""One Markdown-section writer for every docs/*.md report: replace, insert first or append, refuse ambiguity."""

from pathlib import Path

import pytest

from lsi.experiments.hardware_e2e import SECTION
from lsi.report.markdown import MarkdownSectionError, find_section, replace_section, section_text, write_section

ROOT = Path(__file__).resolve().parents[3]


def test_results_section_replaced_and_rest_kept():
    doc = "# T\n\nintro\n\n## Results on the simulated rig\n\nold body\n\n## Known limitations\n\n* x\n"
    out = replace_section(doc, SECTION, "new body", missing="error")
    assert out == "# T\n\nintro\n\n## Results on the simulated rig\n\nnew body\n\n## Known limitations\n\n* x\n"
    assert replace_section(out, SECTION, "new body", missing="error") == out
    last = replace_section("# T\n## Results on the simulated rig\nold\n", SECTION, "b", missing="error")
    assert last == "# T\n## Results on the simulated rig\n\nb\n"
    with pytest.raises(ValueError, match="heading"):
        replace_section("# nothing\n", SECTION, "b", missing="error")
    text = (ROOT / "docs" / "hardware.md").read_text()
    assert text.count(SECTION) == 1 and "## Known limitations" in text


def test_missing_section_is_appended_or_put_first():
    doc = "# Results\n\nintro\n\n## Mask learning\n\n| a |\n"
    appended = replace_section(doc, "## Table 1", "body")
    assert appended == doc + "\n## Table 1\n\nbody\n"
    first = replace_section(doc, "## Table 1", "body", missing="first")
    assert first == "# Results\n\nintro\n\n## Table 1\n\nbody\n\n## Mask learning\n\n| a |\n"
    assert replace_section("", "## Table 1", "body", missing="first") == "## Table 1\n\nbody\n"
    with pytest.raises(ValueError, match="missing must be"):
        replace_section(doc, "## Table 1", "body", missing="later")


def test_subsections_belong_to_their_section_and_duplicates_are_refused():
    doc = "# R\n\n## A\n\nx\n\n### Discussion\n\nkept?\n\n## B\n\ny\n"
    assert section_text(doc, "## A") == "## A\n\nx\n\n### Discussion\n\nkept?\n\n"
    assert section_text(doc, "## C") is None and find_section(doc, "## B") == (doc.index("## B"), len(doc))
    assert replace_section(doc, "## A", "new") == "# R\n\n## A\n\nnew\n\n## B\n\ny\n"
    with pytest.raises(MarkdownSectionError, match="2 times"):
        find_section(doc + "\n## A\n", "## A")


def test_write_section_creates_the_document(tmp_path):
    path = write_section(tmp_path / "docs" / "results.md", "## Mask learning", "| a |")
    assert path.read_text() == "# Results\n\n## Mask learning\n\n| a |\n"
    write_section(path, "## Mask learning", "| b |")
    assert path.read_text() == "# Results\n\n## Mask learning\n\n| b |\n"


def test_kept_subsection_is_the_hand_written_tail(tmp_path):
    from lsi.report.markdown import kept_subsection

    path = tmp_path / "results.md"
    assert kept_subsection(path, "## A") == ""  # no file yet
    path.write_text("# R\n\n## A\n\n| n |\n\n### Discussion\n\nwords\n\n## B\n\nother\n")
    assert kept_subsection(path, "## A") == "### Discussion\n\nwords"
    assert kept_subsection(path, "## B") == ""

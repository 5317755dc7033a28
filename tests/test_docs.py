"""The README and the docs/ pages hold together: links resolve, every page is reachable.

Every relative link and image in README.md and docs/*.md must name a file that exists,
and a `#anchor` must name a heading of that file (GitHub's slugs); every page in docs/
but ARCHITECTURE.md is linked from the README, and each page links back to it; the
README stays short enough to read.
"""

import glob
import os
import re

import pytest
from conftest import REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")
PAGES = sorted(glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
NOT_FROM_README = {"ARCHITECTURE.md"}  # Reached from the code's docs, not a README topic.
MAX_README_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)[\s\S]*?\1")  # May span lines, as in Markdown.
# [text](target) and ![alt](target), with an optional "title".
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: ...


def _prose_lines(path: str) -> list[str]:
    """The file's lines outside fenced code blocks (whose '#' lines are no headings)."""
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    prose, fenced = [], False
    for line in lines:
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            prose.append(line)
    return prose


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped,
    spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # A link's text stays.
    text = text.strip().lower()
    text = "".join(char for char in text if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    """The anchors of a Markdown file's headings (repeated ones get -1, -2 ... as on GitHub)."""
    found: dict[str, int] = {}
    result = set()
    for line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = found.get(base, 0)
        found[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: str) -> list[str]:
    """The targets of the file's links and images, outside code."""
    return LINK.findall(INLINE_CODE.sub("", "\n".join(_prose_lines(path))))


def broken_links(path: str) -> list[str]:
    """Each relative link of `path` whose file or heading does not exist, with why."""
    broken = []
    folder = os.path.dirname(path)
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(folder, file_part)) if file_part else path
        if not os.path.exists(linked):
            broken.append(f"{target}: no file {os.path.relpath(linked, folder)}")
        elif anchor and (not linked.endswith(".md") or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {os.path.relpath(linked, folder)}")
    return broken


def test_slugs_follow_github():
    assert slug("Memory and `--remat`") == "memory-and---remat"
    assert slug("The full Cityscapes release at 2:1") == "the-full-cityscapes-release-at-21"
    assert slug("`--sync_batch_norm`") == "--sync_batch_norm"
    assert slug("Deploy anywhere: LiteRT and ONNX") == "deploy-anywhere-litert-and-onnx"


@pytest.mark.parametrize(
    "path", [README, *PAGES], ids=lambda path: os.path.relpath(path, REPO_ROOT)
)
def test_relative_links_and_images_resolve(path):
    assert broken_links(path) == []


def test_a_broken_link_is_found(tmp_path):
    """The check above can fail: a missing file, a missing heading, a link inside code."""
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[fine](other.md#a-section) [file](missing.md) [heading](other.md#b)\n"
        "![image](gone.png) [here](#page) [not here](#nowhere) `[code](ignored.md)`\n"
        "```\n# not a heading\n[code](also-ignored.md)\n```\n[fence](#not-a-heading)\n"
    )
    assert broken_links(str(page)) == [
        "missing.md: no file missing.md",
        "other.md#b: no heading #b in other.md",
        "gone.png: no file gone.png",
        "#nowhere: no heading #nowhere in page.md",
        "#not-a-heading: no heading #not-a-heading in page.md",
    ]


def test_every_page_is_linked_from_the_readme():
    linked = {
        os.path.normpath(os.path.join(REPO_ROOT, target.partition("#")[0]))
        for target in links(README)
        if not EXTERNAL.match(target)
    }
    missing = [
        os.path.basename(page)
        for page in PAGES
        if os.path.basename(page) not in NOT_FROM_README and page not in linked
    ]
    assert missing == []


@pytest.mark.parametrize(
    "path",
    [page for page in PAGES if os.path.basename(page) not in NOT_FROM_README],
    ids=os.path.basename,
)
def test_every_page_links_back_to_the_readme(path):
    assert any(target.partition("#")[0] == "../README.md" for target in links(path))


def test_readme_is_short():
    with open(README, encoding="utf-8") as file:
        assert len(file.read().splitlines()) <= MAX_README_LINES

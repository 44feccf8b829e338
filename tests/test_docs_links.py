"""The operator docs point only at things that exist in the repository.

deploy/README.md once sent readers to "DESIGN.md's table", a file the repository does not
ship. Every relative link in the README files and docs/ must name a file that is here, and
no page may send the reader to DESIGN.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", *ROOT.glob("deploy/**/*.md"), *ROOT.glob("docs/**/*.md")],
    key=str,
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(page: Path) -> None:
    missing = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing


@pytest.mark.parametrize(
    "page",
    [*PAGES, ROOT / "deploy/grafana/rtrelay-dashboard.json"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_page_sends_the_reader_to_a_file_the_repository_does_not_ship(page: Path) -> None:
    assert "DESIGN.md" not in page.read_text()

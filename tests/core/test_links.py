"""URL and e-mail masking, against linkify-it's fixtures (MIT, vendored in references/)."""

import re
from pathlib import Path

import pytest

from serve_app.core.cleaning import EMAIL_MASK, URL_MASK, CleanOptions, clean

MASK = CleanOptions(
    urls="mask", emails="mask", strip_html=False, fix_encoding=False, normalize=None
)
URLS_ONLY = CleanOptions(urls="mask", strip_html=False, fix_encoding=False, normalize=None)
EMAILS_ONLY = CleanOptions(emails="mask", strip_html=False, fix_encoding=False, normalize=None)
KEEP = CleanOptions(strip_html=False, fix_encoding=False, normalize=None)
FIXTURES = Path(__file__).parent / "references" / "linkify-it"


def masked(text: str, link: str) -> str:
    mask = EMAIL_MASK if "://" not in link and "@" in link else URL_MASK
    return clean(text.replace(link, mask, 1), KEEP)


@pytest.mark.parametrize(
    ("text", "link"),
    [
        (
            "see https://en.wikipedia.org/wiki/Foo_(bar) now",
            "https://en.wikipedia.org/wiki/Foo_(bar)",
        ),
        (
            "(see https://en.wikipedia.org/wiki/Foo_(bar))",
            "https://en.wikipedia.org/wiki/Foo_(bar)",
        ),
        ("(https://x.com/a)", "https://x.com/a"),
        ("http://foo.com/blah_blah_I'm_king ok", "http://foo.com/blah_blah_I'm_king"),
        ("http://foo.com/a_[other] x", "http://foo.com/a_[other]"),
        ("http://foo.com/a_{x}?q=[1] x", "http://foo.com/a_{x}?q=[1]"),
        ("https://x.com/search?q='shoes' ok", "https://x.com/search?q='shoes'"),
        ("'https://x.com/a'", "https://x.com/a"),
        ("[https://x.com/a]", "https://x.com/a"),
        ("{https://x.com/a}", "https://x.com/a"),
        (
            "http://www.bürgerentscheid-krankenhäuser.de ok",
            "http://www.bürgerentscheid-krankenhäuser.de",
        ),
        ("http://bündnis-für-krankenhäuser.de/a.jpg", "http://bündnis-für-krankenhäuser.de/a.jpg"),
        ("https://café.fr/menu.", "https://café.fr/menu"),
        ("http://президент.рф/путь", "http://президент.рф/путь"),
        (
            "详情见https://item.taobao.com/item.htm?id=1很好",
            "https://item.taobao.com/item.htm?id=1",
        ),
        ("https://x.com/a👍", "https://x.com/a"),
        ("https://x.com/a，很好", "https://x.com/a"),
    ],
)
def test_url_edges(text: str, link: str) -> None:
    assert clean(text, MASK) == masked(text, link)


@pytest.mark.parametrize(
    "text",
    ["_http://example.com", "http://.example.com", "http://-example.com", "http://", "http://#"],
)
def test_not_urls(text: str) -> None:
    assert clean(text, MASK) == clean(text, KEEP)


# --- linkify-it --------------------------------------------------------------------------------
# Its fixtures also cover fuzzy links (bare domains, IPs, "//host"), which this cleaner leaves as
# text on purpose: only http(s)://, ftp://, www. and e-mail addresses are links here.
OUT_OF_SCOPE = re.compile(r"^(?!(?:https?|ftp)://|www\.)(?![^@\s]+@)", re.IGNORECASE)
# Cases kept as text on purpose, each with the reason.
DIFFERENT_ON_PURPOSE = {
    'test."foo".bar@gmail.co.uk': "no quoted local parts: the address from '.bar' on is masked",
    "mailto:foo@bar": "an address needs a dotted domain; mailto: alone does not make one",
}
NOT_LINKS_DIFFERENT_ON_PURPOSE = {
    "http://a.b--c.de/": "'--' in a host is allowed (IDNA 'xn--' labels have it)",
}


def read_fixture(path: Path) -> list[tuple[int, str, str]]:
    # linkify-it-py's reader: a line, then the expected link on the next line or, when that is
    # blank, the line itself; "%" starts a comment line.
    lines = [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = ["" if line.startswith("%") else line for line in lines]
    cases = []
    index = 0
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip():
            if following.strip():
                cases.append((index + 1, line, following))
                index += 1
            else:
                cases.append((index + 1, line, line))
        index += 1
    return cases


def without_comment(line: str) -> str:
    return re.sub(r"\s+%\s.*$|\s+//\s.*$", "", line)


LINKS = [
    pytest.param(line, link, id=f"line{number}")
    for number, line, link in read_fixture(FIXTURES / "links.txt")
    if not OUT_OF_SCOPE.match(link.removeprefix("mailto:").removeprefix("MAILTO:"))
    and link not in DIFFERENT_ON_PURPOSE
]


def test_linkify_fixtures_are_read() -> None:
    assert len(LINKS) >= 60


@pytest.mark.parametrize(("line", "link"), LINKS)
def test_linkify_it_links(line: str, link: str) -> None:
    line = without_comment(line)
    link = re.sub(r"^mailto:", "", link, flags=re.IGNORECASE)
    # the first link found is the fixture's: only its kind is masked
    only = URLS_ONLY if "://" in link or link.lower().startswith("www.") else EMAILS_ONLY
    assert clean(line, only) == masked(line, link)


NOT_LINKS = [
    pytest.param(line, id=f"line{number}")
    for number, line, _ in read_fixture(FIXTURES / "not_links.txt")
    if line not in NOT_LINKS_DIFFERENT_ON_PURPOSE
]


@pytest.mark.parametrize("line", NOT_LINKS)
def test_linkify_it_not_links(line: str) -> None:
    line = without_comment(line)
    assert clean(line, MASK) == clean(line, KEEP)

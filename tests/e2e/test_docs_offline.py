"""/docs and /redoc work with no internet: every script, style sheet and icon
their pages name is served by the service itself, needs no key, and is the
pinned release that api/static/vendor/README.md names."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e.support import Api, running_api

ROOT = Path(__file__).parents[2]
VENDOR = ROOT / "api" / "static" / "vendor"
SWAGGER_UI_VERSION = "5.36.0"
REDOC_VERSION = "2.5.4"
# Each kind of asset, its content types and the least a real one weighs.
KINDS = {
    ".js": ({"text/javascript", "application/javascript"}, 500_000),
    ".css": ({"text/css"}, 100_000),
    ".png": ({"image/png"}, 100),
}
# A URL that names a host: scheme-relative (//cdn...) or with any scheme.
ANOTHER_HOST = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api("memory:", tmp_path_factory.mktemp("docs")) as client:
        yield client


class _References(HTMLParser):
    """Every URL an element of the page names (src, href, ReDoc's spec-url)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v is not None]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


def _page(api: Api, path: str) -> str:
    answer = api.client.get(path)  # no Authorization header
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_name_no_other_host(api: Api, page: str) -> None:
    html = _page(api, page)
    urls = _references(html)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), (page, url)
    # Nor in the page's inline script (Swagger UI's spec url and settings).
    assert ANOTHER_HOST.findall(html) == []


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_a_docs_page_names_is_served_without_a_key(api: Api, page: str) -> None:
    assets = [url for url in _references(_page(api, page)) if url.startswith("/static/")]
    assert {Path(url).suffix for url in assets} == (
        {".js", ".css", ".png"} if page == "/docs" else {".js", ".png"}
    )
    for url in assets:
        answer = api.client.get(url)
        assert answer.status_code == 200, url
        types, bytes_min = KINDS[Path(url).suffix]
        assert answer.headers["content-type"].split(";")[0] in types, url
        assert len(answer.content) >= bytes_min, url
        assert "max-age=" in answer.headers["cache-control"], url
    if page == "/docs":
        (icon,) = [url for url in assets if url.endswith(".png")]
        assert api.client.get(icon).content.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_bundles_served_are_the_pinned_releases(api: Api) -> None:
    swagger = api.client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").text
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in swagger
    redoc = api.client.get("/static/vendor/redoc/redoc.standalone.js").text
    assert (
        f'Version: "{REDOC_VERSION}"'
        in (VENDOR / "redoc" / "redoc.standalone.js.LICENSE.txt").read_text()
    )
    assert f'"{REDOC_VERSION}"' in redoc
    readme = (VENDOR / "README.md").read_text()
    assert f"`swagger-ui-dist` | {SWAGGER_UI_VERSION} " in readme
    assert f"`redoc`           | {REDOC_VERSION} " in readme
    for package in ("swagger-ui", "redoc"):
        assert (VENDOR / package / "LICENSE").stat().st_size > 500, package


def test_the_installed_package_carries_every_vendored_file() -> None:
    """The package-data globs of pyproject.toml take every file under
    api/static, and the app finds them where the installed package is."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    api_dir = ROOT / "api"
    packaged = {path for pattern in package_data["api"] for path in api_dir.glob(pattern)}
    static = {path for path in (api_dir / "static").rglob("*") if path.is_file()}
    assert static and static <= packaged
    installed = resources.files("api") / "static" / "vendor"
    for name in ("swagger-ui/swagger-ui-bundle.js", "redoc/redoc.standalone.js", "README.md"):
        assert installed.joinpath(name).is_file(), name

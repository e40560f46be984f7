"""The explorer every node serves at ``/``: a few static files, read once, that use only the
JSON API of the node that served them.

Nothing is built and nothing comes from another host (a consortium's machines may have no
internet), so the files are shipped in the package as they are. Only the names in ``ASSETS``
are served: a path never reaches the file system, so there is nothing to traverse. The
content security policy keeps the page to this origin, and the page writes every value from
the API as text, never as markup.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
"""The explorer's files by name, with their content types (charset utf-8)."""
MAX_ASSET_BYTES = 512 * 1024
"""Largest explorer file: they are read into memory once, so a bound keeps that small."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""Sent with every explorer file: same-origin only, no inline script, no framing."""


class Assets:
    """The explorer's files, read on first use and kept (they never change while a node runs)."""

    def __init__(self, directory: Path = STATIC) -> None:
        self.directory = directory
        self._cache: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        if name not in ASSETS:
            return None
        if name not in self._cache:
            data = (self.directory / name).read_bytes()
            if len(data) > MAX_ASSET_BYTES:
                raise RuntimeError(f"explorer file {name} exceeds {MAX_ASSET_BYTES} bytes")
            self._cache[name] = data
        return self._cache[name]

    def response(self, name: str) -> web.Response:
        data = self.get(name)
        if data is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": f"no explorer file {name!r}"}},
                status=404,
            )
        return web.Response(
            body=data,
            content_type=ASSETS[name],
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )


def routes(assets: Assets | None = None) -> list[web.RouteDef]:
    """``/`` (the page) and ``/explorer/{file}`` (its script and style sheet)."""
    files = assets or Assets()

    async def index(request: web.Request) -> web.Response:
        return files.response("index.html")

    async def asset(request: web.Request) -> web.Response:
        return files.response(request.match_info["file"])

    return [web.get("/", index), web.get("/explorer/{file}", asset)]

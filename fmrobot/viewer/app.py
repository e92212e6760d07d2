"""The viewer's web app: the page, a JSON API over one folder, and that folder's own files, for loopback clients.

Starlette serves the files: it resolves each request path and refuses anything outside the folder (symbolic links
included), answers HTTP Range requests (the video element seeks with them) and sets MIME types.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fmrobot.errors import FmrobotError
from fmrobot.viewer.folders import FILES_ROUTE, Folder

STATIC = Path(__file__).with_name("static")


def build_app(folder: Folder, host: str = "127.0.0.1") -> Starlette:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def index(request: Request) -> Response:
        return JSONResponse(folder.index)

    async def episode(request: Request) -> Response:
        try:
            seed = int(request.query_params["seed"])
        except (KeyError, ValueError):
            return JSONResponse({"error": "expected ?seed=<integer>[&run=<cell id>]"}, status_code=400)
        try:
            return JSONResponse(folder.episode(request.query_params.get("run", ""), seed))
        except FmrobotError as error:
            return JSONResponse({"error": str(error)}, status_code=404)

    routes = [
        Route("/", page),
        Route("/api/folder", index),
        Route("/api/episode", episode),
        Mount("/static", StaticFiles(directory=STATIC)),
        Mount(FILES_ROUTE.rstrip("/"), StaticFiles(directory=folder.root)),
    ]
    # Only requests addressed to the loopback name are answered: a web page elsewhere cannot read the folder
    # through a DNS name rebound to 127.0.0.1.
    hosts = sorted({"127.0.0.1", "localhost", host})
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])

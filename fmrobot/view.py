"""`python -m fmrobot.view <run or suite folder> [--port N] [--no-open]`: browse a run or a benchmark suite.

Serves a local page on 127.0.0.1: the summary, a sortable and filterable table of episodes, and each episode's
video, trace timeline and perception images; for a suite, its success table with Wilson intervals and its plots.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

from fmrobot.errors import FmrobotError, shown


def loopback(host: str) -> str:
    """`host` if it is an IPv4 loopback address or localhost; the viewer serves a folder's files to whoever can
    connect, so it never listens beyond this machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.IPv4Address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise FmrobotError(f"refusing to serve on {shown(host)}: the viewer listens on this machine only; expected "
                       "127.0.0.1 (or another 127.x.x.x address, or localhost)")


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise FmrobotError(f"cannot listen on {host}:{port}: {error.strerror}; choose another --port "
                           "(0 picks a free one)") from None
    sock.listen(128)  # from here on, connections wait in the queue: the printed address works at once
    return sock


def _has_display() -> bool:
    # Without one, webbrowser would start a text-mode browser in this terminal.
    return sys.platform != "linux" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmrobot.view", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a run folder (with results.json) or a suite results folder "
                        "(python -m benchmarks.suite --out)")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address only (default 127.0.0.1)")
    parser.add_argument("--no-open", action="store_true", help="print the address without opening a browser")
    args = parser.parse_args(argv)
    try:
        from fmrobot.viewer.folders import open_folder

        host = loopback(args.host)
        folder = open_folder(args.folder)
        try:
            import uvicorn

            from fmrobot.viewer.app import build_app
        except ImportError as error:
            raise FmrobotError(f"the viewer needs starlette and uvicorn ({error.name} is missing): "
                               "pip install 'fmrobot[view]'") from None
        sock = listen(host, args.port)
    except FmrobotError as error:
        print(f"fmrobot: error: {error}", file=sys.stderr)
        return 2
    url = f"http://{host}:{sock.getsockname()[1]}/"
    what = "suite" if folder.kind == "suite" else "run"
    print(f"viewing the {what} in {folder.root} at {url} (Ctrl-C stops)", flush=True)
    if not args.no_open and _has_display():
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(build_app(folder, host), log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

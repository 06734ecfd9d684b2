"""Serve the book on 127.0.0.1 (``make book-serve``).

    .venv/bin/python -m tools.book.serve [--dir _build/html] [--port 0]

A static site opened from disk (``file://``) works too, but a browser keeps some
things from ``file://`` pages; a local HTTP server shows the site as it would be
hosted. The server is the standard library's, bound to 127.0.0.1 only (nothing
outside this machine can reach it), on a free port unless ``--port`` (``PORT=`` in
make) names one. It builds the site first when there is none.

From Python (the book's tests do this)::

    server = start(Path("_build/html"))      # serving in a thread of its own
    print(server.url)                         # http://127.0.0.1:<port>/
    server.stop()
"""
from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tools.book import build

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files from the site's folder, without a log line per request."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".css": "text/css", ".html": "text/html; charset=utf-8"}

    def log_message(self, format, *args):      # noqa: A002 (http.server's signature)
        pass


class BookServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` serving one folder; ``url`` is where it answers."""

    daemon_threads = True

    def __init__(self, directory: Path, port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        super().__init__((HOST, port), handler)
        self.directory = Path(directory)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def stop(self) -> None:
        """Stop answering, close the socket and end the serving thread."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def start(directory: Path, port: int = 0) -> BookServer:
    """Serve ``directory`` on 127.0.0.1 (a free port when ``port`` is 0) in a thread."""
    server = BookServer(directory, port)
    server._thread = threading.Thread(target=server.serve_forever, name="book-server",
                                      daemon=True)
    server._thread.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=build.DEFAULT_OUT,
                        help="the site's folder (default: _build/html)")
    parser.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    args = parser.parse_args(argv)
    if not (args.dir / "index.html").is_file():
        print(f"No site in {args.dir} yet: building it first.")
        if build.main(["--out", str(args.dir)]) != 0:
            return 1
    try:
        server = BookServer(args.dir, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"Serving the book at {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

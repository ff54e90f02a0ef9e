"""``modeltrack ui`` and ``modeltrack plot`` (registered through ``cli.EXTENSIONS``)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .. import config
from ..errors import ModelTrackError

#: default port of ``modeltrack ui``
DEFAULT_PORT = 8765


def add_commands(sub: Any, common: argparse.ArgumentParser, jsonp: argparse.ArgumentParser) -> None:
    """Add ``ui`` and ``plot`` to the ``modeltrack`` sub-commands."""
    help_ui = "serve the web UI (models, versions, compare, charts) on 127.0.0.1"
    p = sub.add_parser("ui", help=help_ui, description=help_ui, parents=[common])
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; anything else needs --token)"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument(
        "--token",
        default=None,
        help=(
            "secret required for changes; on a non-loopback --host, required for every API request "
            "(reads and downloads too; a browser opens /?token=SECRET once) (default: $MODELTRACK_UI_TOKEN)"
        ),
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help=(
            "also answer requests whose Host header is HOST (repeatable), e.g. the DNS name other machines "
            "use to reach this one; off loopback the server otherwise answers only its own address and "
            "loopback names and refuses other Host headers with 403 (DNS rebinding)"
        ),
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between refreshes of running versions (default 2)")
    p.add_argument("--open", action="store_true", help="open the address in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_ui)

    help_plot = "draw a metric of one or more versions overlaid, as a PNG (no browser needed)"
    p = sub.add_parser("plot", help=help_plot, description=help_plot, parents=[common])
    p.add_argument("refs", nargs="+", metavar="REF")
    p.add_argument(
        "--metric",
        action="append",
        required=True,
        metavar="NAME",
        help="metric to draw (repeat for one panel per metric)",
    )
    p.add_argument("-o", "--output", default="curves.png", help="PNG file to write (default curves.png)")
    p.add_argument(
        "--x", choices=["auto", "epoch", "step"], default="auto", help="x axis (default: epochs when per-epoch)"
    )
    p.add_argument("--title")
    p.set_defaults(func=cmd_plot)


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from ..repo import Repo
    from .server import make_server

    if not 0 <= args.port <= 65535:
        raise ModelTrackError(
            f"--port must be 0-65535, got {args.port}; use e.g. --port {DEFAULT_PORT} (0 picks a free one)"
        )
    if not math.isfinite(args.poll) or args.poll <= 0:
        raise ModelTrackError(f"--poll must be a number of seconds > 0, got {args.poll:g}; use e.g. --poll 2")
    token = args.token or config.ui_token()
    try:
        server = make_server(
            Repo(args.store),
            args.host,
            args.port,
            token=token,
            poll_interval=args.poll,
            verbose=args.verbose,
            allow_hosts=args.allow_host,
        )
    except OSError as exc:
        sys.stderr.write(
            f"modeltrack: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            f"pick another with --port (0 picks a free one)\n"
        )
        return 1
    url = server.url
    print(f"modeltrack ui: serving {server.app.repo.store.uri} at {url}", flush=True)
    if token and not server.loopback:
        print(f"modeltrack ui: every request needs the token; in a browser open {url}?token=TOKEN once", flush=True)
    elif token:
        print("modeltrack ui: changes need the token (the page asks for it once)", flush=True)
    print("press Ctrl-C to stop", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Write the overlay chart and print its path."""
    from ..repo import Repo
    from .plot import plot_curves

    out, warnings = plot_curves(Repo(args.store), args.refs, args.metric, args.output, x=args.x, title=args.title)
    for w in warnings:
        sys.stderr.write(f"modeltrack: warning: {w}\n")
    print(out)
    return 0

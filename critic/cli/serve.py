"""``critic serve``: a judge (or a reward model) as an HTTP service, for RL training loops.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

from critic.cli.common import EXIT_OK, say
from critic.cli.loading import load_judge
from critic.cli.options import (
    add_batch_flags,
    add_judge_kind_flags,
    add_load_flags,
    at_least_one,
    build_options,
    use_reward_model,
)
from critic.errors import InputError, MissingDependencyError
from critic.serve.settings import DEFAULT_HOST, DEFAULT_PORT, ServeSettings

# The limits: (flag, ServeSettings field, type, metavar, what it bounds); the default is the field's.
LIMITS = (
    ("--max-body-bytes", "max_body_bytes", at_least_one, "N", "bytes of a request body before 413"),
    ("--max-pairs", "max_pairs_per_request", at_least_one, "N",
     "pairs (or conversations, responses) per request before 413"),
    ("--max-text-chars", "max_text_chars", at_least_one, "N", "characters per text before 413"),
    ("--max-queue", "max_queue", at_least_one, "N", "requests waiting for the judge before 503"),
    ("--max-wait-ms", "max_wait_ms", float, "MS", "how long a request waits for others to share its call"),
    ("--request-timeout", "request_timeout_s", float, "S", "seconds before a request gets 504"),
    ("--max-header-bytes", "max_header_bytes", at_least_one, "N", "bytes of a request's header block before 431"),
    ("--header-timeout", "header_timeout_s", float, "S", "seconds for a request's headers to arrive before 408"),
    ("--body-timeout", "body_timeout_s", float, "S", "seconds for a request's body to arrive after its headers "
                                                      "before 408"),
    ("--max-connections", "max_connections", at_least_one, "N", "connections served at once; the next gets 503"),
    ("--shutdown-timeout", "shutdown_timeout_s", float, "S", "on SIGTERM or Ctrl-C, seconds to judge the accepted "
                                                              "requests; the rest get 503 with Retry-After"),
    ("--failed-reward", "failed_reward", float, "R", "/get_reward's reward for a query that could not be judged"),
)


def add_serve_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    defaults = ServeSettings()
    parser = commands.add_parser(
        "serve", parents=parents,
        help="serve a judge over HTTP: /v1/compare, /v1/score, /v1/rank, OpenRLHF's /get_reward",
        description="Load a judge once and serve it over HTTP (uvicorn). Concurrent requests are batched into "
                    "one model call. Endpoints: POST /v1/compare, /v1/score (reward models), /v1/rank, /get_reward "
                    "(OpenRLHF's --remote_rm_url); GET /health, /v1/info, /metrics. Binds 127.0.0.1 unless "
                    "--host says otherwise; with CRITIC_API_KEY (or --api-key) every endpoint but /health needs "
                    "'Authorization: Bearer KEY'. SIGTERM or Ctrl-C stops accepting, judges the accepted requests "
                    "that fit in --shutdown-timeout, answers the others 503 with Retry-After, and exits 0.",
    )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST}, this "
                                                             "machine only; 0.0.0.0 exposes it to the network)")
    server.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 picks "
                                                                       "a free one)")
    server.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: CRITIC_API_KEY if set). "
                                          "A key on the command line is visible to every user of the machine "
                                          "(ps, /proc): prefer CRITIC_API_KEY")
    server.add_argument("--quiet", action="store_true", help="no loading line")
    limits = parser.add_argument_group("request limits")
    for flag, field, kind, metavar, text in LIMITS:
        default = getattr(defaults, field)
        limits.add_argument(flag, dest=field, type=kind, default=default, metavar=metavar,
                            help=f"{text} (default: {default:g})" if isinstance(default, float) else
                            f"{text} (default: {default})")
    limits.add_argument("--max-batch-pairs", type=at_least_one, metavar="N",
                        help="items merged into one judge call (default: --batch-size; smaller than the number of "
                             "clients keeps the model busy while answers go out)")
    add_judge_kind_flags(parser, flag="--kind", into=server)
    add_load_flags(parser)
    add_batch_flags(parser)
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(error.name or "uvicorn", "serve", "critic serve") from None
    if args.kind == "reward":
        use_reward_model(args, flag="--kind")
    options = build_options(args)
    settings = ServeSettings(
        host=args.host, port=args.port, api_key=args.api_key,
        max_batch_pairs=args.max_batch_pairs or options.limits.max_batch_size,
        **{field: getattr(args, field) for _, field, *_ in LIMITS},
    ).with_env_key()
    sock = _bind(settings.host, settings.port)  # a taken port is said now, before the model loads
    try:
        judge = load_judge(args.judge_factory, args.model, options, args.kind, quiet=args.quiet)
        from critic.serve.app import create_app
        from critic.serve.server import server

        app = create_app(judge, settings)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        key = ", API key required" if settings.api_key else ""
        say(f"serving {judge.describe().summary()} at http://{shown}:{port}{key} (Ctrl-C or SIGTERM stops)")
        server(app, settings, log_level="info" if getattr(args, "verbose", False) else "warning").run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port "
                         "(0 picks a free one) or --host") from None
    sock.listen(2048)
    return sock

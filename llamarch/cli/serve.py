"""`llamarch serve`: a model behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from .ui import echo_err, engine_options, served_model_options


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@served_model_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface: then set --api-key).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    metavar="KEY",
    envvar="LLAMARCH_SERVE_API_KEY",
    help="Answer only requests with 'Authorization: Bearer KEY' (env LLAMARCH_SERVE_API_KEY keeps it "
    "out of the process list).",
)
@click.option(
    "--max-waiting",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    help="Requests that may wait for the model; more are answered 503 (retry later).",
)
def serve(
    model: str | None, backend: str | None, host: str, port: int, api_key: str | None, max_waiting: int, **engine: Any
) -> None:
    """Serve a model over the OpenAI API: /v1/models, /v1/chat/completions, /v1/completions.

    Tools that speak the OpenAI API (the openai Python client, editors, web UIs, another
    llamarch with -m openai:NAME@URL) use it with base URL http://HOST:PORT/v1.
    """
    from ..llm import LLM
    from ..serve import bind

    server = bind(host, port, api_key)  # a busy port fails before the model loads
    try:
        with LLM(model, backend=backend, **engine_options(**engine)) as llm:
            server.attach(llm.backend, llm.model_id, max_waiting)
            if not is_loopback(host) and not api_key:
                echo_err(
                    f"Warning: listening on {host} without --api-key: anyone who can reach this machine can use it."
                )
            auth = ", API key required" if api_key else ""
            echo_err(
                f"Serving {llm.model_id} ({llm.backend_name}, context {llm.n_ctx} tokens{auth}) "
                f"at {server.url} — Ctrl-C stops."
            )
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                echo_err("Stopped.")
    finally:
        server.server_close()

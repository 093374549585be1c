"""`acecoder-rl serve`: the HTTP reward service (OpenRLHF ``--reward.remote_url`` and ``/v1/score``)."""
from __future__ import annotations

import os
from pathlib import Path

import click

from acecoder_rl.cli.engine_options import engine_config, engine_options
from acecoder_rl.service.process import TOKEN_ENV, write_url_file


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; one that is not loopback (0.0.0.0 exposes the service to the network) "
                   "needs --token or --insecure.")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True, help="0 picks a free port.")
@click.option("--token", default=None, metavar="T",
              help=f"Require 'Authorization: Bearer T' (or ?token=T) on every endpoint but /health "
                   f"[default: ${TOKEN_ENV} if set].")
@click.option("--insecure", is_flag=True,
              help="Serve a --host that is not loopback without a token anyway (anyone who can reach it can "
                   "run programs here).")
@click.option("--max-pending", type=click.IntRange(min=1), default=20000, show_default=True,
              help="Programs admitted and not yet answered; requests beyond it get 503 + Retry-After.")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="Programs per request; more gets 413 [default: 4096, at most --max-pending].")
@click.option("--max-request-mb", type=click.FloatRange(min=0, min_open=True), default=32.0, show_default=True,
              help="Largest request body; larger gets 413.")
@click.option("--retry-after", type=click.IntRange(min=0), default=1, show_default=True,
              help="Seconds sent in Retry-After with 503.")
@click.option("--shutdown-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="On SIGTERM/SIGINT, how long in-flight requests may take to finish.")
@click.option("--reuse-port", is_flag=True, help="SO_REUSEPORT: a new server can take over the port while this one drains.")
@engine_options
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option("--ray", "use_ray", is_flag=True,
              help="Score on a Ray reward pool (every node of the cluster) instead of this machine's CPUs.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join with --ray [default: $RAY_ADDRESS, else the local cluster].")
@click.option("--url-file", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PATH",
              help="Write the service's URL to PATH once it listens (atomically: the file appears "
                   "whole), for a launcher that needs the port --port 0 picked.")
def serve(host: str, port: int, token: str | None, insecure: bool, max_pending: int, max_batch: int | None,
          max_request_mb: float, retry_after: int, shutdown_timeout: float, reuse_port: bool, log_level: str,
          access_log: bool, use_ray: bool, ray_address: str | None, url_file: Path | None,
          **engine: object) -> None:
    """Serve the sandboxed reward over HTTP until SIGTERM/SIGINT (then drain and exit 0).

    \b
    Endpoints:
      POST /get_reward  OpenRLHF: --reward.remote_url http://HOST:PORT/get_reward
                        {"query": [...], "prompts": [...], "labels": [test lists]}
                        -> {"rewards": [...], "scores": [...], "extra_logs": {...}}
      POST /v1/score    {"completions": [...], "test_cases": [[...]]} -> {"results": [...]}
      GET  /health      200 when serving; 503 while starting or draining
      GET  /metrics     Prometheus text format
    """
    from acecoder_rl.service.app import ServiceConfig
    from acecoder_rl.service.server import open_to_network_error
    from acecoder_rl.service.server import serve as run_server

    if max_batch is None:
        max_batch = min(4096, max_pending)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise click.UsageError("--token must not be empty")
    reward = engine_config(engine)
    try:
        service = ServiceConfig(host=host, port=port, token=token, max_pending=max_pending, max_batch=max_batch,
                                max_request_bytes=max(1, int(max_request_mb * 1024 * 1024)),
                                retry_after_s=retry_after, shutdown_timeout_s=shutdown_timeout,
                                log_level=log_level, access_log=access_log, reuse_port=reuse_port,
                                insecure=insecure)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if service.open_to_network and not insecure:
        raise open_to_network_error(host, f"give --token T (or set ${TOKEN_ENV}), or --insecure to serve it "
                                          "anyway")

    def announce(url: str) -> None:
        auth = "token required" if token else "no authentication"
        click.echo(f"acecoder-rl reward service listening on {url} ({reward.n_workers} workers, {auth}); "
                   f"OpenRLHF: --reward.remote_url {url}/get_reward", err=True)
        if url_file is not None:
            write_url_file(url_file, url)

    if ray_address is not None and not use_ray:
        raise click.UsageError("--ray-address needs --ray")
    if url_file is not None and not url_file.parent.is_dir():
        raise click.UsageError(f"--url-file {url_file}: no directory {url_file.parent} to write it in")
    factory = None
    if use_ray:
        import functools

        from acecoder_rl.reward.ray_pool import RayRewardPool

        factory = functools.partial(RayRewardPool, reward, address=ray_address)
    run_server(reward, service, on_listening=announce, engine_factory=factory)

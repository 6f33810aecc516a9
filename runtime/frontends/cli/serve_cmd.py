"""`edgefill serve`: a real Triton Inference Server on this machine (runtime.frontends.serve).

Builds the model repository in a private temp folder (or serves --repository as is), starts
tritonserver (the `serve` extra's, or one on PATH), prints where it listens once it is ready,
and on SIGTERM or Ctrl-C drains the requests in flight, stops it and removes what it made.
"""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    cli.add_command(serve_cmd)


@click.command("serve")
@click.option("--bundle", default=None, help="Bundle folder or .zip (default: the installed one).")
@click.option("--repository", default=None, help="Serve this model repository (from `edgefill export triton`).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address of HTTP and gRPC (0.0.0.0 exposes the server to the network).")
@click.option("--http-port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--grpc-port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--metrics-port", default=8002, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-batch", default=16, show_default=True, type=click.IntRange(1))
@click.option("--max-queue", default=64, show_default=True, type=click.IntRange(0),
              help="Waiting requests beyond which the server answers 503 at once (0: unbounded).")
@click.option("--instances", default=1, show_default=True, type=click.IntRange(1))
@click.option("--provider", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]))
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="onnxruntime threads per instance (0: physical cores / instances).")
@click.option("--exit-timeout", default=30, show_default=True, type=click.IntRange(1),
              help="Seconds a stop waits for requests in flight.")
@click.option("--log-file", default=None, help="Write tritonserver's log here (default: a temp file, removed).")
def serve_cmd(bundle, repository, host, http_port, grpc_port, metrics_port, max_batch, max_queue, instances,
              provider, threads, exit_timeout, log_file):
    """Serve inpainting with Triton Inference Server (HTTP/gRPC KServe v2, dynamic batching, metrics)."""
    import signal
    import tempfile
    import threading
    from pathlib import Path

    from ...errors import EdgefillError
    from ..serve.config import ServeConfig
    from ..serve.launcher import TritonServer
    from ..serve.repository import build_repository, is_repository

    if bundle and repository:
        raise EdgefillError("give --bundle or --repository, not both")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    made = None
    if repository:
        if not is_repository(Path(repository)):
            raise EdgefillError(f"--repository {repository} is not an edgefill model repository "
                                "(make one with `edgefill export triton`)")
        repo = Path(repository)
    else:
        cfg = ServeConfig(max_batch=max_batch, max_queue=max_queue, instances=instances,
                          kind="gpu" if provider in ("cuda", "tensorrt") else "cpu", provider=provider,
                          threads=threads)
        made = Path(tempfile.mkdtemp(prefix="edgefill-repo-"))
        repo = build_repository(bundle, made / "repository", cfg)
    server = TritonServer(repo, host, http_port, grpc_port, metrics_port, exit_timeout=exit_timeout,
                          log_file=log_file)
    try:
        click.echo(f"edgefill: starting tritonserver on {repo}", err=True)
        server.start()
        click.echo(f"edgefill: ready: HTTP {server.url}, gRPC {host}:{grpc_port}, metrics "
                   f"http://{host}:{metrics_port}/metrics, model 'edgefill'; Ctrl-C or SIGTERM stops", err=True)
        while not stop.wait(0.5):
            if server.process.poll() is not None:
                raise EdgefillError(f"tritonserver stopped on its own (code {server.process.returncode}): "
                                    f"{server.log_tail(3)}")
        click.echo("edgefill: stopping: draining requests in flight", err=True)
    finally:
        server.stop()
        if made is not None:
            import shutil

            shutil.rmtree(made, ignore_errors=True)
    click.echo("edgefill: stopped", err=True)

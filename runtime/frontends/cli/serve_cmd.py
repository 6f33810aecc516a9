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
@click.option("--max-queue-delay-ms", default=0, show_default=True, type=click.IntRange(0),
              help="Latency bound of admission: a request queued this long without being scheduled is rejected "
                   "(503) instead of delaying every later one (0: no bound).")
@click.option("--max-inflight", default=0, show_default=True, type=click.IntRange(0),
              help="Requests in flight beyond which the HTTP guard answers 503 at once, before Triton sees them "
                   "(0: no bound).")
@click.option("--instances", default=0, show_default=True, type=click.IntRange(0),
              help="Model instances (0: two on a CPU, one on a GPU; each its own process).")
@click.option("--provider", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]))
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="onnxruntime threads per instance (0: physical cores / instances).")
@click.option("--max-image-pixels", default=4096 * 4096, show_default=True, type=click.IntRange(1),
              help="The largest image accepted; the HTTP guard refuses bigger declared tensors before Triton "
                   "allocates them.")
@click.option("--exit-timeout", default=30, show_default=True, type=click.IntRange(1),
              help="Seconds a stop waits for requests in flight.")
@click.option("--log-file", default=None, help="Write tritonserver's log here (default: a temp file, removed).")
def serve_cmd(bundle, repository, host, http_port, grpc_port, metrics_port, max_batch, max_queue,
              max_queue_delay_ms, max_inflight, instances, provider, threads, max_image_pixels, exit_timeout, log_file):
    """Serve inpainting with Triton Inference Server (HTTP/gRPC KServe v2, dynamic batching, metrics).

    HTTP goes through edgefill's guard (sizes checked before Triton allocates, model control
    refused); a supervisor restarts tritonserver when it or its Python stub dies."""
    import signal
    import tempfile
    import threading
    from pathlib import Path

    from ...errors import EdgefillError
    from ..serve.config import ServeConfig
    from ..serve.guard import GuardLimits
    from ..serve.repository import build_repository, is_repository, read_serve_config
    from ..serve.supervisor import ServingStack

    if bundle and repository:
        raise EdgefillError("give --bundle or --repository, not both")
    if len({http_port, grpc_port, metrics_port}) < 3:
        raise EdgefillError("--http-port, --grpc-port and --metrics-port must differ")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    made = None
    if repository:
        if not is_repository(Path(repository)):
            raise EdgefillError(f"--repository {repository} is not an edgefill model repository "
                                "(make one with `edgefill export triton`)")
        repo = Path(repository)
        cfg = read_serve_config(repo)
    else:
        cfg = ServeConfig(max_batch=max_batch, max_queue=max_queue, instances=instances,
                          kind="gpu" if provider in ("cuda", "tensorrt") else "cpu", provider=provider,
                          threads=threads, max_image_pixels=max_image_pixels, max_queue_delay_ms=max_queue_delay_ms,
                          max_inflight=max_inflight)
        made = Path(tempfile.mkdtemp(prefix="edgefill-repo-"))
    log = lambda line: click.echo(f"edgefill: {line}", err=True)  # noqa: E731
    stack = None
    try:
        if made is not None:
            repo = build_repository(bundle, made / "repository", cfg)
        stack = ServingStack(repo, host, http_port, grpc_port, metrics_port,
                             limits=GuardLimits.for_pixels(cfg.max_image_pixels, cfg.max_inflight), exit_timeout=exit_timeout,
                             log_file=log_file, log=log)
        stack.start()
        log(f"ready: HTTP {stack.url}, gRPC {host}:{grpc_port}, metrics http://{host}:{metrics_port}/metrics, "
            "model 'edgefill'; Ctrl-C or SIGTERM stops")
        while not stop.wait(0.5):
            if stack.failure:
                raise EdgefillError(f"tritonserver cannot be kept running: {stack.failure}")
        log("stopping: draining requests in flight")
    finally:
        if stack is not None:
            stack.stop()
        if made is not None:
            import shutil

            shutil.rmtree(made, ignore_errors=True)
    restarts = stack.state.restarts if stack is not None else 0
    log(f"stopped ({restarts} restart{'s' if restarts != 1 else ''})")

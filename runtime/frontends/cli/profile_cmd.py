"""`edgefill profile`: per-stage latency, throughput, FLOP/s and backends side by side
(see runtime/frontends/profile/)."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("profile")
    @click.option("--bundle", default=None, help="Model bundle (folder or .zip); default: the installed one.")
    @click.option("--provider", "providers", multiple=True,
                  help="onnxruntime provider(s): cpu, cuda, tensorrt (repeat or comma-separate; default: every "
                       "provider that loads here). One that cannot load is reported and skipped.")
    @click.option("--batch-sizes", default="1,8,32", show_default=True, help="Comma-separated images per batch.")
    @click.option("--steps", default=None, type=click.IntRange(2),
                  help="Adam steps per search (default: the bundle's for the start, as `edgefill inpaint` runs).")
    @click.option("--restarts", default=None, type=click.IntRange(1),
                  help="Starts per image (default: the bundle's for the start).")
    @click.option("--init", default="auto", show_default=True, type=click.Choice(["auto", "random", "encoder"]),
                  help="Where the search starts: auto = the bundle's encoder when it has one, as `edgefill inpaint`.")
    @click.option("--iterations", default=10, show_default=True, type=click.IntRange(1),
                  help="Timed pipeline runs per backend and batch size.")
    @click.option("--warmup", default=2, show_default=True, type=click.IntRange(0), help="Untimed runs first.")
    @click.option("--threads", default=None, type=click.IntRange(1),
                  help="Intra-op threads of onnxruntime and torch (default: physical cores).")
    @click.option("--compare-torch", is_flag=True, help="Also time the torch eager fallback, alternating.")
    @click.option("--no-peak", is_flag=True, help="Skip measuring the machine's matmul peak.")
    @click.option("--json", "json_path", default=None, help="Write the report as JSON here.")
    @click.option("--csv", "csv_path", default=None, help="Write one row per backend, batch size and stage here.")
    @click.option("--plot", "plot_path", default=None, help="Write a picture of the distributions and throughput here (.png/.svg/.pdf; needs matplotlib).")
    @click.option("--ort-trace", "trace_path", default=None,
                  help="Write onnxruntime's per-operator profile (chrome trace JSON) of 20 search steps here.")
    @click.option("--samples", default=1, show_default=True, type=click.IntRange(1),
                  help="Also time the whole inpaint of one 64x64 problem with this many samples per hole "
                       "against 1 (ratio reported; 1: not measured).")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    def profile_cmd(bundle, providers, batch_sizes, steps, restarts, init, iterations, warmup, threads, compare_torch,
                    no_peak, json_path, csv_path, plot_path, trace_path, samples, no_progress):
        """Latency per stage (p50/p90/p95/p99), throughput, FLOP/s vs peak; onnxruntime vs torch eager."""
        import os

        # before torch (if compared) is imported: OpenMP threads must not spin while onnxruntime runs
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

        from ...atomic import write_json, write_text
        from ...core.bundle import open_bundle
        from ...errors import EdgefillError
        from ...imaging import plots
        from ..profile.config import ProfileConfig
        from ..profile.report import csv_text, table_text
        from ..profile.run import profile
        from ..profile.trace import ort_trace

        if plot_path:
            plots.check_plot_path(plot_path, "--plot")
            plots.pyplot()  # fail now, not after minutes of measuring, when matplotlib is missing
        try:
            sizes = tuple(int(s) for s in batch_sizes.split(",") if s.strip())
        except ValueError:
            raise EdgefillError(f"--batch-sizes must be comma-separated integers, got {batch_sizes!r}") from None
        wanted = tuple(dict.fromkeys(p.strip().lower() for spec in providers for p in spec.split(",") if p.strip()))
        cfg = ProfileConfig(batch_sizes=sizes, steps=steps, restarts=restarts, iterations=iterations,
                            warmup=warmup, providers=wanted or None, compare_torch=compare_torch, threads=threads,
                            measure_peak=not no_peak, samples=samples, init=init)
        b = open_bundle(bundle)
        result = profile(b, cfg, progress=not no_progress)
        if trace_path:
            cpu_first = [r for r in result.report["runs"] if r["backend"] == result.report["backend"]]
            from ...core.engine import Engine

            eng = Engine(b, provider=cpu_first[0]["provider"], threads=threads)
            from ...core.search_config import SearchConfig

            search_cfg = SearchConfig.from_dict(result.report["settings"]["search"])  # the one profiled
            # 20 steps of the step graph alone: enough calls for stable operator shares, whatever
            # the product's own step count
            result.report["ort_trace"] = ort_trace(eng, search_cfg, sizes[0], 20, trace_path)
        click.echo(table_text(result.report), nl=False)
        if json_path:
            write_json(json_path, result.report)
        if csv_path:
            write_text(csv_path, csv_text(result.report))
        if plot_path:
            plots.profile_figure(result.samples, result.report, plot_path)

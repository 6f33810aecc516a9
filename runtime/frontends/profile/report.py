"""A profile report as text: a CSV of every statistic and a plain-text summary table."""
from __future__ import annotations

from .config import STAT_KEYS


def csv_text(report: dict) -> str:
    """One row per (backend, batch size, stage) with every statistic and the run's throughput."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["backend", "provider", "threads", "batch_size", "rows", "stage", *STAT_KEYS,
                "throughput_images_per_s"])
    for r in report["runs"]:
        for stage, st in r["stages"].items():
            w.writerow([r["backend"], r["provider"], r["threads"], r["batch_size"], r["rows"], stage,
                        *["" if st[k] is None else (st[k] if k == "count" else f"{st[k]:.6g}") for k in STAT_KEYS],
                        f"{r['throughput_images_per_s']:.6g}"])
    return buf.getvalue()


def timed_pipeline(settings: dict) -> str:
    """One line saying which pipeline the numbers are of (the report's settings)."""
    refine = settings.get("refine")
    refiner = "no refiner" if refine is None else \
        f"refiner{' averaged with its mirror image' if refine.get('flip_average') else ''}"
    steps, restarts = settings["steps"], settings["restarts"]
    return (f"timed: {settings['start']} start, {steps} step{'s' if steps != 1 else ''}, {restarts} restart"
            f"{'s' if restarts != 1 else ''} per image, {settings['blend']} blend, {refiner}")


def table_text(report: dict) -> str:
    """A plain-text summary: what was timed, p50/p90/p99 per stage for every run, then throughput
    and speedup."""
    lines = [timed_pipeline(report["settings"])]
    for r in report["runs"]:
        lines.append(f"{r['backend']} (threads {r['threads']}), batch {r['batch_size']} "
                     f"({r['rows']} rows): {r['throughput_images_per_s']:.2f} images/s"
                     + (f", {r['achieved_gflops']:.1f} GFLOP/s in the search step" if r["achieved_gflops"] else "")
                     + (f" ({100 * r['fraction_of_peak']:.0f}% of peak)" if r["fraction_of_peak"] else ""))
        lines.append(f"  {'stage':<17}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'n':>6}")
        for stage, st in r["stages"].items():
            if st["count"]:
                lines.append(f"  {stage:<17}{st['p50_ms']:>10.3f}{st['p90_ms']:>10.3f}{st['p99_ms']:>10.3f}"
                             f"{st['mean_ms']:>10.3f}{st['count']:>6}")
    sam = report.get("samples")
    if sam:
        lines.append(f"{sam['backend']}, one 64x64 problem, whole inpaint: {sam['samples']} samples vs 1")
        lines.append(f"  {'samples':<17}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'n':>6}")
        for label, st in ((1, sam["single"]), (sam["samples"], sam["k_samples"])):
            if st["count"]:
                lines.append(f"  {label:<17}{st['p50_ms']:>10.3f}{st['p90_ms']:>10.3f}{st['p99_ms']:>10.3f}"
                             f"{st['mean_ms']:>10.3f}{st['count']:>6}")
        if sam["ratio_p50"]:
            lines.append(f"  {sam['samples']} samples / 1 (p50): {sam['ratio_p50']:.2f}x "
                         f"({sam['ratio_p50_per_sample']:.2f}x per sample)")
    if report["speedup_vs_torch_eager"]:
        for bs, d in report["speedup_vs_torch_eager_by_stage"].items():
            parts = ", ".join(f"{k} {v:.2f}x" for k, v in d.items() if v)
            lines.append(f"speedup vs torch eager at batch {bs} (p50): {parts}")
    fl = report["flops"]
    if fl["peak_gflops"]:
        lines.append(f"peak {fl['peak_gflops']:.1f} GFLOP/s ({fl['peak_method']})")
    if fl.get("nominal_peak_gflops"):
        lines.append(f"nominal peak {fl['nominal_peak_gflops']:.0f} GFLOP/s ({fl['nominal_peak_method']})")
    trace = report.get("ort_trace")
    if trace:
        ops = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in trace["top_ops"][:5])
        lines.append(f"onnxruntime trace ({trace['steps']} steps, batch {trace['batch_size']}): {ops} "
                     f"-> {trace['path']}")
    for s in report["skipped"]:
        lines.append(f"skipped {s['name']}: {s['reason']}")
    return "\n".join(lines) + "\n"

"""Plots with axes (line plots, box plots, the profile figure) drawn with matplotlib.

matplotlib is an optional dependency (the `plot` extra; the `train` and `dev` extras include it):
it is imported lazily, inside the functions, with the headless Agg backend, so the runtime and
`edgefill --help` never load it. A command that plots without it fails with one line naming
the extra. Every function writes a PNG atomically (runtime.atomic) or returns RGB uint8 (H,W,3).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_path
from ..errors import EdgefillError


def pyplot():
    """matplotlib.pyplot on the Agg backend, or one clear EdgefillError when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise EdgefillError("plotting needs matplotlib: pip install 'edgefill[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


PLOT_FORMATS = (".png", ".svg", ".pdf")


def check_plot_path(path, what: str = "a plot") -> None:
    """One clear error for a plot path whose suffix matplotlib would not write (`what`: the flag)."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise EdgefillError(f"{what} must end in one of {', '.join(PLOT_FORMATS)}: {path}")


def save_figure(fig, path) -> None:
    """Write a matplotlib figure to `path` atomically (format from the suffix), then close it."""
    plt = pyplot()
    check_plot_path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lower()[1:], dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def figure_rgb(fig) -> np.ndarray:
    """Render a figure to RGB uint8 (H,W,3) and close it."""
    plt = pyplot()
    try:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)


def line_axes(ax, series: dict[str, Sequence[float]], x: Sequence[float] | None = None, *, title: str = "",
              xlabel: str = "", ylabel: str = "", log_y: bool = False, log_x: bool = False,
              xticks: Sequence[float] | None = None, marker: str | None = None) -> None:
    """Draw named series (each the y values; x shared, default 0..n-1) on an Axes. xticks: put a
    tick at each of these values labelled with the value itself (batch sizes, step counts)."""
    for name, ys in series.items():
        ys = np.asarray(ys, np.float64)
        if not ys.size:
            continue
        xs = np.asarray(x, np.float64)[:len(ys)] if x is not None else np.arange(len(ys))
        ax.plot(xs, ys, label=name, marker=marker)
    if log_y:
        ax.set_yscale("log")
        plain_log_labels(ax.yaxis)
    if log_x:
        ax.set_xscale("log", base=2)
    if xticks is not None:
        ax.set_xticks(list(xticks))
        ax.set_xticklabels([f"{v:g}" for v in xticks])
        ax.minorticks_off()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)


def save_line_plot(path, series: dict[str, Sequence[float]], *, title: str = "", xlabel: str = "",
                   ylabel: str = "", log_y: bool = False, x: Sequence[float] | None = None,
                   size: tuple[int, int] = (640, 400)) -> None:
    """Named series as lines, one PNG (size in pixels at 100 dpi)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(size[0] / 100, size[1] / 100))
    line_axes(ax, series, x, title=title, xlabel=xlabel, ylabel=ylabel, log_y=log_y)
    save_figure(fig, path)


def box_axes(ax, groups: dict[str, Sequence[float]], *, title: str = "", xlabel: str = "",
             log_x: bool = True) -> None:
    """Horizontal box plot, one row per named group (top to bottom in dict order): box 25th-75th
    percentile with the median, whiskers at the 1st and 99th percentile, outliers as dots."""
    names = [k for k, v in groups.items() if len(v)]
    data = [np.asarray(groups[k], np.float64) for k in names]
    if data:
        import inspect

        horizontal = ({"orientation": "horizontal"} if "orientation" in inspect.signature(ax.boxplot).parameters
                      else {"vert": False})  # matplotlib >= 3.10 deprecates vert
        ax.boxplot(data[::-1], whis=(1, 99), widths=0.6, flierprops={"markersize": 3}, **horizontal)
        ax.set_yticks(range(1, len(names) + 1))
        ax.set_yticklabels(names[::-1], fontsize=8)
    if log_x:
        ax.set_xscale("log")
        plain_log_labels(ax.xaxis)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", which="both", alpha=0.3)


def plain_log_labels(axis) -> None:
    """Label a log axis with plain numbers (0.01, 2, 50, 100), not 10^k or 2x10^1: majors at the
    decades, minors at 2x and 5x."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    axis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))


def profile_figure(samples: dict, report: dict, path) -> None:
    """The `edgefill profile` picture: latency per stage (primary backend, first batch size), one
    search step per backend and batch size, throughput against batch size (log2 x, ticks at the
    measured batch sizes). samples[(backend, batch)].stages[name] = seconds."""
    plt = pyplot()
    primary, first = report["backend"], report["batch_size"]
    stage_groups = {k: np.asarray(v) * 1000.0 for k, v in samples[(primary, first)].stages.items() if v}
    step_groups = {f"{name} b{bs}": np.asarray(s.stages["search_step"]) * 1000.0
                   for (name, bs), s in samples.items() if s.stages["search_step"]}
    backends = list(dict.fromkeys(r["backend"] for r in report["runs"]))
    sizes = report["settings"]["batch_sizes"]
    thr = {b: [next(r["throughput_images_per_s"] for r in report["runs"] if r["backend"] == b and r["batch_size"] == bs)
               for bs in sizes] for b in backends}
    heights = [0.6 + 0.28 * len(stage_groups), 0.6 + 0.28 * len(step_groups), 3.0]
    fig, axes = plt.subplots(3, 1, figsize=(8, sum(heights) + 1.2), gridspec_kw={"height_ratios": heights})
    box_axes(axes[0], stage_groups, title=f"latency per stage, {primary}, batch {first}", xlabel="ms (log scale)")
    box_axes(axes[1], step_groups, title="one search step per backend and batch size", xlabel="ms (log scale)")
    line_axes(axes[2], thr, sizes, title="throughput (whole inpaint) vs batch size", xlabel="batch size",
              ylabel="images/s", log_x=len(sizes) > 1, xticks=sizes, marker="o")
    if len(thr) == 1:
        axes[2].legend(list(thr), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def steps_curve_figure(report: dict, path) -> None:
    """The quality-vs-steps picture of `edgefill evaluate --steps-curve`: hole PSNR and SSIM
    against search steps, one line per start with its 95% band, Telea as a dashed reference."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = report["settings"]["steps"]
    for ax, metric, label in ((axes[0], "hole_psnr", "hole PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        for name, c in report["curve"].items():
            pts = c["points"]
            xs = [p["steps"] for p in pts]
            ax.plot(xs, [p[metric] for p in pts], marker="o", label=f"{name} start, {pts[0]['restarts']} restart(s)")
            ax.fill_between(xs, [p[f"{metric}_ci"][0] for p in pts], [p[f"{metric}_ci"][1] for p in pts], alpha=0.2)
        ax.axhline(report["telea"][metric], color="gray", linestyle="--", label="OpenCV Telea")
        ax.set_xscale("symlog", linthresh=5)
        ax.set_xlim(min(steps) - 0.3, max(steps) * 1.1)
        ax.set_xticks(steps)
        ax.set_xticklabels([str(s) for s in steps])
        ax.minorticks_off()
        ax.set_xlabel("search steps")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    s = report["settings"]
    fig.suptitle(f"quality vs search steps ({s['mask']} mask, {s['images']} faces)")
    fig.tight_layout()
    save_figure(fig, path)

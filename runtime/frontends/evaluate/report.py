"""The report for people: markdown tables (results, paired, samples) and the grid pictures."""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ...errors import EdgefillError
from ...imaging import metrics
from .config import REFINED_BASELINES, SAMPLED_METHOD

if TYPE_CHECKING:
    from .run import Evaluation


def _cell(row: dict, name: str, fmt: str) -> str:
    mean, (lo, hi) = row[name], row[f"{name}_ci"]
    if mean is None:
        return "n/a"
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _number(value: float | None, reference: float | None) -> str:
    """'12.3 (45.6)': a value with its reference (the truth's seam, the realism floor) in brackets."""
    text = "n/a" if value is None else f"{value:.1f}"
    return text if reference is None else f"{text} ({reference:.1f})"


def _ssim7(row: dict) -> str:
    """A result row's SSIM7 mean, without its interval (the table's SSIM column has one)."""
    return "n/a" if row.get("ssim7") is None else f"{row['ssim7']:.4f}"


def markdown_table(report: dict) -> str:
    """The results as a GitHub markdown table: mean [95% CI] per metric; with K samples, a second
    table (samples_table)."""
    lines = ["| mask | method | n | PSNR dB [95% CI] | hole PSNR dB [95% CI] | SSIM [95% CI] | SSIM 7x7 | seam (truth) | "
             "hole SWD (floor) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        seam = _number(r.get("seam"), r.get("seam_truth"))
        realism = _number(r.get("hole_swd"), r.get("hole_swd_floor"))
        lines.append(f"| {r['mask']} | {r['method']} | {r['n']} | {_cell(r, 'psnr', '.2f')} | "
                     f"{_cell(r, 'hole_psnr', '.2f')} | {_cell(r, 'ssim', '.4f')} | {_ssim7(r)} | {seam} | {realism} |")
    table = "\n".join(lines) + "\n" + ("\nhole SWD: how far the texture, layout and colour a method puts in the hole "
                                      "are from real faces' in the same holes (lower = more like real faces; the "
                                      "floor: real faces of other people).\n")
    if report.get("paired"):
        table += "\n" + paired_table(report)
    if report.get("samples"):
        table += "\n" + samples_table(report)
    return table


def paired_table(report: dict) -> str:
    """The "paired" section as markdown: the product minus each other method, image by image."""
    lines = [f"{SAMPLED_METHOD} (the product) minus each method on the same images (paired; positive: the "
             "product is ahead):", "",
             "| mask | method | n | hole PSNR dB [95% CI] | SSIM [95% CI] | product ahead on |",
             "|---|---|---:|---:|---:|---:|"]
    for r in report["paired"]:
        share = "n/a" if r["product_better"] is None else f"{100 * r['product_better']:.0f}%"
        lines.append(f"| {r['mask']} | {r['method']} | {r['n']} | {_cell(r, 'hole_psnr_diff', '+.2f')} | "
                     f"{_cell(r, 'ssim_diff', '+.4f')} | {share} |")
    return "\n".join(lines) + "\n"


def samples_table(report: dict) -> str:
    """The "samples" section as markdown: quality (best-of-K, mean-of-K) and diversity (before and
    after the refiner) of lsgan+refiner's K samples per hole, mean [95% CI], then what they mean."""
    rows = report["samples"]
    k = rows[0]["samples"]
    lines = [f"K = {k} samples per hole of {SAMPLED_METHOD} (the product):", "",
             "| mask | K | n | best-of-K hole PSNR dB | best-of-K SSIM | mean-of-K hole PSNR dB | mean-of-K SSIM | "
             "pairwise hole PSNR dB, before refiner | after refiner | hole std, before refiner | after refiner | "
             "hole SWD, before refiner | after refiner |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b, m, d = r["best_of_k"], r["mean_of_k"], r["diversity"]
        lines.append(f"| {r['mask']} | {r['samples']} | {r['n']} | {_cell(b, 'hole_psnr', '.2f')} | "
                     f"{_cell(b, 'ssim', '.4f')} | {_cell(m, 'hole_psnr', '.2f')} | {_cell(m, 'ssim', '.4f')} | "
                     f"{_cell(d['before_refiner'], 'pairwise_hole_psnr', '.2f')} | "
                     f"{_cell(d['after_refiner'], 'pairwise_hole_psnr', '.2f')} | "
                     f"{_cell(d['before_refiner'], 'hole_std', '.2f')} | "
                     f"{_cell(d['after_refiner'], 'hole_std', '.2f')} | "
                     f"{_number((r.get('hole_swd') or {}).get('before_refiner'), None)} | "
                     f"{_number((r.get('hole_swd') or {}).get('after_refiner'), None)} |")
    lines += ["",
              "best-of-K: per image the sample nearest the truth, each metric picking its own (an oracle: "
              "inference has no truth); mean-of-K: the mean over the K samples.",
              f"Diversity: pairwise hole PSNR = the mean hole PSNR between two of an image's samples (lower = more "
              f"different; identical pairs count as {metrics.PSNR_CAP:g} dB, the cap); hole std = the per-pixel "
              f"standard deviation over the K samples, mean over the hole (0..255). Before refiner: the blended "
              f"search results; after: the final outputs. Hole SWD: the realism of each sample position's "
              f"fills (the main table's column), averaged over the K positions."]
    single = [m for m in REFINED_BASELINES if m in report.get("settings", {}).get("methods", ())]
    if single:
        lines.append(f"{' and '.join(single)} give one output per hole: K different fills need the latent search.")
    return "\n".join(lines) + "\n"


def grid_image(ev: Evaluation, scale: int = 2) -> np.ndarray:
    """RGB uint8 grid: one row per face (grid_rows per mask type, mask types in order); columns:
    masked input (hole grey), each method, ground truth."""
    from ...imaging.pictures import image_grid

    cols = None
    tiles = []
    for kind, rows in ev.grid_rows.items():
        if "input" not in rows:
            continue
        cols = ["input", *[m for m in rows if m not in ("input", "truth")], "truth"]
        for i in range(len(rows["input"])):
            tiles.extend(rows[c][i] for c in cols)
    if not tiles:
        raise EdgefillError("nothing to draw in the grid (no images evaluated)")
    return image_grid(np.stack(tiles), ncols=len(cols), scale=scale, col_titles=cols)


def _label_tile(lines: tuple[str, ...], size: int = 64) -> np.ndarray:
    """A white size x size RGB tile with a few short words on it."""
    tile = np.full((size, size, 3), 255, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(tile, text[:10], (2, 14 + 12 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def samples_grid_image(ev: Evaluation, scale: int = 2) -> np.ndarray:
    """RGB uint8 grid of the K samples: for each grid face (grid_rows per mask type), a row
    input | truth | sample 1..K before the refiner (the blended search results, best search loss
    first), then a row of the same K samples after the refiner."""
    from ...imaging.pictures import image_grid

    tiles, k = [], 0
    after = _label_tile(("after the", "refiner:"))
    blank = np.full_like(after, 255)
    for rows in ev.sample_rows.values():
        k = rows["searched"].shape[1]
        for i in range(len(rows["input"])):
            tiles += [rows["input"][i], rows["truth"][i], *rows["searched"][i]]
            tiles += [after, blank, *rows["final"][i]]
    if not tiles:
        raise EdgefillError("nothing to draw in the samples grid (evaluate with samples > 1)")
    cols = ["input", "truth", *[f"sample {j + 1}" for j in range(k)]]
    return image_grid(np.stack(tiles), ncols=k + 2, scale=scale, col_titles=cols)

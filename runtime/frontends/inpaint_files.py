"""The plain function behind `edgefill inpaint`: many files, batched through one Inpainter.

Order of work, so that bad input never leaves a half-done job behind: output paths are
planned and checked, every input image is read and its mask resolved, the bundle is opened,
and only then does the search start. Every file is written atomically (runtime.atomic).

Output naming: one input and an --out with an image extension -> that file; otherwise --out
is a folder and image `a/b/face.jpg` becomes `OUT/face.png` (PNG, so the pixels outside the
hole stay exactly those of the input). Two inputs with the same name are refused.
Side-by-side pictures: `--side-by-side` alone -> `<output stem>_side-by-side.png` beside each
output; `--side-by-side PATH` -> that file (one input, image extension) or PATH/<name>_side-by-side.png.
Seeds: image i (in command-line order) uses seed + i for its random starts and random mask.
Samples (`--samples K`, K > 1): K different fills per hole from ONE search batch per batch of
images (Inpainter.inpaint_samples, N*K problems), best search loss first: output `face.png`
becomes `face.1.png` .. `face.K.png` (a single-file --out `out.png`: `out.1.png` ..), plus a
contact sheet `face.samples.png` beside them (input with the hole grey | sample 1..K, the 64x64
crops enlarged). --side-by-side shows one result and is refused with K > 1. K = 1 is the plain run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgefillError
from ..imaging.images import IMAGE_EXTENSIONS, read_image, write_image
from ..imaging.preprocess import parse_box, prepare

SIDE_SUFFIX = "_side-by-side.png"
SIDE_SCALE = 3
SHEET_SUFFIX = ".samples.png"
log = logging.getLogger("edgefill")


@dataclass(frozen=True)
class InpaintJob:
    """One `edgefill inpaint` run; None settings take the bundle's search defaults.
    side_by_side: None (off), "" (beside each output) or a path."""

    inputs: tuple[str, ...]
    mask: str
    out: str
    bundle: str | None = None
    steps: int | None = None
    restarts: int | None = None
    provider: str | None = None
    backend: str = "onnx"
    blend: str | None = None
    refine: bool = True
    seed: int = 0
    box: str | None = None
    time_budget_ms: float | None = None
    lam: float | None = None
    lr: float | None = None
    prior: str | None = None
    patience: int | None = None
    side_by_side: str | None = None
    batch_size: int = 16
    threads: int | None = None
    progress: bool = True
    init: str | None = None  # where the search starts: auto (encoder if the bundle has one), random, encoder
    server: str | None = None  # a running `edgefill serve` (http URL): the work is computed there
    samples: int = 1  # fills per hole (1..inpainter.MAX_SAMPLES), best search loss first
    sample_spread: float | None = None  # spread of samples k >= 1 around the start (None: the bundle's)
    sample_steps: int | None = None  # Adam steps of samples k >= 1 (None: --steps if given, else the bundle's)
    flip_average: bool | None = None  # refiner over the face and its mirror (None: the bundle's setting)
    sample_scale: float | None = None  # distance of samples k >= 1 from sample 1 (None: the bundle's)

    def local_only(self) -> list[str]:
        """The flags set that only an in-process run honours (refused with --server)."""
        defaults = InpaintJob(inputs=(), mask="", out="")
        names = {"bundle": "--bundle", "provider": "--provider", "backend": "--backend", "blend": "--blend",
                 "refine": "--no-refine", "time_budget_ms": "--time-budget-ms", "lam": "--lam", "lr": "--lr",
                 "prior": "--prior", "patience": "--patience", "side_by_side": "--side-by-side",
                 "threads": "--threads", "sample_spread": "--sample-spread",
                 "sample_steps": "--sample-steps", "flip_average": "--flip-average/--no-flip-average",
                 "sample_scale": "--sample-scale"}
        return [flag for field, flag in names.items() if getattr(self, field) != getattr(defaults, field)]


def _is_image_path(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def sample_outputs(output: Path, samples: int) -> tuple[list[Path], Path]:
    """The K sample files (best loss first) and the contact sheet that replace `output` (module docstring)."""
    return ([output.with_name(f"{output.stem}.{k}{output.suffix}") for k in range(1, samples + 1)],
            output.with_name(output.stem + SHEET_SUFFIX))


def plan_outputs(inputs: tuple[str, ...], out: str, side_by_side: str | None,
                 samples: int = 1) -> list[tuple[Path, Path | None]]:
    """(output path, side-by-side path or None) per input, checked for clashes (module docstring);
    with samples > 1 the files written are sample_outputs(output, samples)."""
    if not inputs:
        raise EdgefillError("give at least one IMAGE")
    if samples > 1 and side_by_side is not None:
        raise EdgefillError(f"--side-by-side shows one result; with --samples {samples} the contact sheet "
                            f"<name>{SHEET_SUFFIX} shows them all")
    out_p = Path(out)
    single_file = len(inputs) == 1 and _is_image_path(out_p) and not out_p.is_dir()
    if not single_file:
        if len(inputs) > 1 and _is_image_path(out_p) and not out_p.is_dir():
            raise EdgefillError(f"with {len(inputs)} inputs --out must be a folder, not {out}")
        if out_p.suffix and not out_p.is_dir() and not _is_image_path(out_p):
            raise EdgefillError(f"--out {out}: an output image must end in one of {', '.join(IMAGE_EXTENSIONS)}")
        if out_p.exists() and not out_p.is_dir():
            raise EdgefillError(f"--out {out} is an existing file; with these inputs it must be a folder")
    stems = [Path(p).stem for p in inputs]
    if not single_file:
        dupes = sorted({s for s in stems if stems.count(s) > 1})
        if dupes:
            raise EdgefillError(f"several inputs are named {dupes[0]!r}; their outputs would overwrite each other")
    outputs = [out_p] if single_file else [out_p / f"{s}.png" for s in stems]
    sides: list[Path | None] = [None] * len(inputs)
    if side_by_side == "":
        sides = [o.with_name(o.stem + SIDE_SUFFIX) for o in outputs]
    elif side_by_side is not None:
        side_p = Path(side_by_side)
        if len(inputs) == 1 and _is_image_path(side_p) and not side_p.is_dir():
            sides = [side_p]
        elif _is_image_path(side_p) and not side_p.is_dir():
            raise EdgefillError(f"with {len(inputs)} inputs --side-by-side must be a folder, not {side_by_side}")
        else:
            sides = [side_p / f"{s}{SIDE_SUFFIX}" for s in stems]
    written = list(outputs)
    if samples > 1:
        written = []
        for o in outputs:
            files, sheet = sample_outputs(o, samples)
            written += [*files, sheet]
    every = [p.resolve() for p in written] + [p.resolve() for p in sides if p is not None]
    if len(set(every)) != len(every):
        raise EdgefillError("two outputs (an output, a sample, a contact sheet or a side-by-side picture) "
                            "would be the same file")
    for p in every:
        if p.is_dir():
            raise EdgefillError(f"output {p} is an existing folder")
    return list(zip(outputs, sides))


def side_by_side_picture(image64: np.ndarray, mask64: np.ndarray, searched: np.ndarray, final: np.ndarray,
                         refined: bool) -> np.ndarray:
    """input | mask | search | refined (the search result again, titled "no refiner", when none ran),
    64x64 tiles enlarged SIDE_SCALE times -> RGB uint8."""
    from ..imaging.pictures import image_grid

    tiles = np.stack([image64, np.repeat(mask64[:, :, None], 3, axis=2), searched, final])
    return image_grid(tiles, ncols=4, scale=SIDE_SCALE,
                      col_titles=["input", "mask", "search", "refined" if refined else "no refiner"])


def samples_sheet(image64: np.ndarray, mask64: np.ndarray, finals: np.ndarray, losses) -> np.ndarray:
    """input with the hole grey | sample 1..K (finals uint8 (K,64,64,3), best first), titled with
    their search loss, 64x64 tiles enlarged SIDE_SCALE times -> RGB uint8."""
    from ..imaging.masks import masked_input
    from ..imaging.pictures import image_grid

    shown = masked_input(image64, mask64)
    titles = ["input"] + [f"{k} ({loss:.4g})" if loss is not None else str(k) for k, loss in
                          enumerate(losses, start=1)]
    return image_grid(np.concatenate([shown[None], finals]), ncols=len(finals) + 1, scale=SIDE_SCALE,
                      col_titles=titles)


def run_inpaint(job: InpaintJob) -> dict:
    """Run one job (module docstring) -> the JSON summary (dict)."""
    from .inpainter import Inpainter

    start = time.perf_counter()
    if job.samples < 1 or job.samples > _max_samples():
        raise EdgefillError(f"--samples must be 1..{_max_samples()}, got {job.samples}")
    plan = plan_outputs(job.inputs, job.out, job.side_by_side, job.samples)
    box = parse_box(job.box)
    preps = []
    for i, path in enumerate(job.inputs):
        image = read_image(path)
        try:
            preps.append(prepare(image, job.mask, box, rng=np.random.default_rng(job.seed + i), source=path))
        except EdgefillError as exc:
            raise EdgefillError(f"{path}: {exc}") from None
    if job.server:
        return _run_remote(job, plan, preps, box, start)
    inp = Inpainter(job.bundle, provider=job.provider, backend=job.backend, threads=job.threads,
                    flip_average=job.flip_average, sample_scale=job.sample_scale)
    search_start = inp.pipeline.make_start(job.init)
    cfg = inp.config_for(job.steps, job.restarts, job.lam, job.lr, job.prior, job.blend, job.patience,
                         start=search_start.name, sample_spread=job.sample_spread, sample_steps=job.sample_steps)
    refine = job.refine and inp.bundle.has_graph("refiner")
    if job.refine and not refine:
        log.warning("edgefill: notice: bundle %s has no refiner; writing the blended search results", inp.bundle.root)

    todo = [i for i, p in enumerate(preps) if p.has_hole]
    batches = [todo[s:s + job.batch_size] for s in range(0, len(todo), job.batch_size)]
    bar = None
    if job.progress and batches:
        from tqdm import tqdm

        bar = tqdm(total=len(batches) * cfg.steps_for(job.samples), desc=f"inpaint {len(job.inputs)} image(s)",
                   unit="step", leave=False, dynamic_ncols=True)
    records: list[dict | None] = [None] * len(preps)

    def record(i: int, output: Path, side: Path | None, s: dict) -> dict:
        return {"input": job.inputs[i], "output": str(output), "side_by_side": str(side) if side else None,
                "steps_run": s["steps_run"], "loss": s["loss"], "seconds": round(s["search_seconds"], 4),
                "backend": s["backend"], "provider": s["provider"], "prior": s["prior"], "blend": s["blend"],
                "refined": s["refined"], "box": s["box"], "hole_fraction": round(s["hole_fraction"], 4)}

    def emit(i: int, result, searched: np.ndarray, final: np.ndarray) -> None:
        output, side = plan[i]
        write_image(output, result.image)
        if side is not None:
            write_image(side, side_by_side_picture(preps[i].image64, preps[i].mask64, searched, final,
                                                   result.refined is not None))
        records[i] = record(i, output, side, result.stats)

    def emit_samples(i: int, results: list, finals: np.ndarray) -> None:
        """K results of image i (best loss first) -> K files, the contact sheet and one record."""
        files, sheet = sample_outputs(plan[i][0], job.samples)
        for path, result in zip(files, results):
            write_image(path, result.image)
        losses = [r.stats["loss"] for r in results]
        write_image(sheet, samples_sheet(preps[i].image64, preps[i].mask64, finals, losses))
        records[i] = {**record(i, files[0], None, results[0].stats), "contact_sheet": str(sheet),
                      "samples": [{"output": str(p), "loss": r.stats["loss"],
                                   "start_index": r.stats.get("start_index")} for p, r in zip(files, results)]}

    try:
        for i, prep in enumerate(preps):
            if not prep.has_hole:
                result = inp.finish(prep, None, 0)
                if job.samples == 1:
                    emit(i, result, prep.image64, prep.image64)
                else:
                    emit_samples(i, [result] * job.samples, np.repeat(prep.image64[None], job.samples, axis=0))
        for idx in batches:
            images, masks = np.stack([preps[i].image64 for i in idx]), np.stack([preps[i].mask64 for i in idx])
            settings = dict(steps=cfg.steps, restarts=cfg.restarts, lam=cfg.lam, lr=cfg.lr, prior=cfg.prior,
                            blend=cfg.blend, refine=refine, seeds=[job.seed + i for i in idx],
                            time_budget_ms=job.time_budget_ms, patience=cfg.patience, start=search_start,
                            progress=bar.update if bar is not None else False)
            if job.samples == 1:
                batch = inp.inpaint_batch(images, masks, **settings)
                for j, i in enumerate(idx):
                    emit(i, inp.finish(preps[i], batch, j), batch.searched[j], batch.final[j])
            else:  # the N*K problems of this batch as one search (Pipeline.run_samples)
                sset = inp.inpaint_samples(images, masks, job.samples, sample_spread=cfg.sample_spread,
                                           sample_steps=cfg.steps_of_samples, **settings)
                batch = sset.batch
                for j, i in enumerate(idx):
                    emit_samples(i, [inp.finish_sample(preps[i], sset, j, k) for k in range(job.samples)],
                                 sset.final[j])
            if bar is not None:
                bar.update(cfg.steps - batch.search.steps_run)
    finally:
        if bar is not None:
            bar.close()
    return {"outputs": records, "bundle": str(inp.bundle.root), "backend": inp.backend, "provider": inp.provider,
            "settings": {**cfg.to_dict(), "refine": refine, "flip_average": refine and inp.pipeline.refine_config.flip_average,
                         "sample_scale": inp.pipeline.refine_config.sample_scale,
                         "seed": job.seed, "time_budget_ms": job.time_budget_ms,
                         "batch_size": job.batch_size, "box": list(box) if box else None, "mask": job.mask,
                         "init": search_start.name, "samples": job.samples},
            "seconds": round(time.perf_counter() - start, 4)}


def _max_samples() -> int:
    from .inpainter import MAX_SAMPLES

    return MAX_SAMPLES


def _run_remote(job: InpaintJob, plan, preps, box, start: float) -> dict:
    """`--server URL`: the same checks and outputs, each image computed by the server
    (runtime.frontends.serve.client); mask kinds travel as kinds (drawn there from the same seed),
    mask images as the full-size mask."""
    import inspect

    from ..imaging.masks import MASK_KINDS
    from ..imaging.images import resize
    from .serve.client import ServeClient

    refused = job.local_only()
    if refused:
        raise EdgefillError(f"{refused[0]} is not available with --server (the server uses its bundle's settings)")
    # a client from before the server's SAMPLES input (issue 22) cannot ask for them
    if job.samples > 1 and "samples" not in inspect.signature(ServeClient.inpaint).parameters:
        raise EdgefillError("--samples is not available with --server yet (run in-process without --server)")
    client = ServeClient(job.server)
    records = []

    def loss_of(stats: dict):
        return None if not np.isfinite(stats["loss"]) else stats["loss"]

    for i, prep in enumerate(preps):
        output, _ = plan[i]
        mask = job.mask if job.mask in MASK_KINDS else prep.mask
        settings = dict(steps=job.steps, restarts=job.restarts, seed=job.seed + i, box=box, init=job.init)
        if job.samples == 1:
            image, stats = client.inpaint(prep.original, mask, **settings)
            write_image(output, image)
            extra = {}
        else:  # the server's K results, best loss first: the same files and contact sheet as in-process
            results = client.inpaint(prep.original, mask, samples=job.samples, **settings)
            files, sheet = sample_outputs(output, job.samples)
            for path, (image, _) in zip(files, results):
                write_image(path, image)
            x, y, w, h = prep.box
            crops = np.stack([resize(np.ascontiguousarray(im[y:y + h, x:x + w]), (64, 64)) for im, _ in results])
            write_image(sheet, samples_sheet(prep.image64, prep.mask64, crops, [loss_of(st) for _, st in results]))
            stats, output = results[0][1], files[0]
            extra = {"contact_sheet": str(sheet),
                     "samples": [{"output": str(p), "loss": loss_of(st), "start_index": st.get("start_index")}
                                 for p, (_, st) in zip(files, results)]}
        records.append({"input": job.inputs[i], "output": str(output), "side_by_side": None,
                        "steps_run": stats["steps_run"], "loss": loss_of(stats),
                        "seconds": round(stats["seconds"], 4), "backend": "server", "provider": job.server,
                        "prior": None, "blend": None, "refined": None, "box": list(prep.box),
                        "hole_fraction": round(float((prep.mask >= 128).mean()), 4), **extra})
    client.close()
    return {"outputs": records, "bundle": None, "backend": "server", "provider": job.server,
            "settings": {"steps": job.steps, "restarts": job.restarts, "seed": job.seed, "init": job.init,
                         "box": list(box) if box else None, "mask": job.mask, "server": job.server,
                         "samples": job.samples},
            "seconds": round(time.perf_counter() - start, 4)}

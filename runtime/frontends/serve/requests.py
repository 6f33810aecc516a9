"""Serving requests, Triton-free: check each request on its own, search the good ones together.

parse_request(tensors, cfg, pipeline) -> Problem, or RequestError (a one-line, 400-class message
  that names the input at fault and never a server path or a traceback)
answer_batch(problems, pipeline) -> [Answer]: the problems with a hole are grouped by their search
  settings (steps, restarts, start, samples) and each group is ONE Pipeline.run (no SAMPLES) or
  ONE Pipeline.run_samples (SAMPLES = K: the group's N*K problems in one search batch) over its
  64x64 problems; image i of a group starts from its own seed (and sample k from (seed, k)), so a
  request's result does not depend on what else was in its batch. Each answer is the request's
  own images (K of them, best loss first; one without SAMPLES), losses and steps run.
A request's tensors carry Triton's batch dimension of 1 (IMAGE (1,H,W,3)); plain (H,W,3) is
accepted too. What it gets back equals Inpainter.inpaint(image, mask, steps=, restarts=,
seed=, box=, init=, samples=) in-process.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...core.pipeline import Pipeline
from ...core.starts import INITS
from ...errors import EdgefillError
from ...imaging.masks import MASK_KINDS
from ...imaging.preprocess import Prepared, paste_back, prepare
from .config import ServeConfig

_PATH = re.compile(r"(?<![\w.])/[^\s'\":,;]+")


class RequestError(EdgefillError):
    """A bad request: its one-line message goes back to that client with a 400-class status."""


def one_line(message: str, limit: int = 300) -> str:
    """The first line of a message, server paths replaced by <path>, at most `limit` characters."""
    text = next((ln.strip() for ln in str(message).splitlines() if ln.strip()), "error")
    text = _PATH.sub("<path>", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass
class Problem:
    """One checked request: prep (the 64x64 problem and how to paste it back), seed, and its
    search settings (None: the bundle's defaults for its start); init: auto | random | encoder;
    samples: K completions asked for (None: SAMPLES absent, one answered as without it)."""

    prep: Prepared
    seed: int
    steps: int | None
    restarts: int | None
    init: str
    samples: int | None = None


@dataclass
class Answer:
    """images: RGB uint8 (K,H,W,3), the request's image with only its hole filled, K completions
    best first (K = 1 without SAMPLES); losses: float32 (K,) their search losses, ascending (nan
    when the mask had no hole); steps_run: search steps taken (0: no hole); samples: as asked
    (None: SAMPLES absent). image, loss: the best completion's."""

    images: np.ndarray
    losses: np.ndarray
    steps_run: int
    samples: int | None = None

    @property
    def image(self) -> np.ndarray:
        return self.images[0]

    @property
    def loss(self) -> float:
        return float(self.losses[0])


def _unbatch(name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    """Drop Triton's batch dimension of 1: (1, *dims) -> dims; (dims) stays."""
    a = np.asarray(value)
    if a.ndim == ndim + 1:
        if a.shape[0] != 1:
            raise RequestError(f"{name}: one image per request (got a batch of {a.shape[0]})")
        a = a[0]
    if a.ndim != ndim:
        raise RequestError(f"{name} must have {ndim} dimensions, got shape {list(np.asarray(value).shape)}")
    return a


def _scalar(name: str, value, kind: type, lo=None, hi=None):
    a = np.asarray(value).reshape(-1)
    if a.size != 1:
        raise RequestError(f"{name} must hold one value, got {a.size}")
    v = a[0]
    if kind is str:
        v = v.decode("utf-8", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v)
        return v.strip()
    if not np.issubdtype(a.dtype, np.integer):
        raise RequestError(f"{name} must be an integer, got {a.dtype}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise RequestError(f"{name} must be in {lo}..{hi}, got {v}")
    return v


def parse_request(tensors: dict, cfg: ServeConfig, pipeline: Pipeline) -> Problem:
    """tensors: input name -> numpy array (absent optional inputs missing or None). Raises RequestError."""
    image = tensors.get("IMAGE")
    if image is None:
        raise RequestError("IMAGE is required: uint8 [H, W, 3] RGB")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise RequestError(f"IMAGE must be uint8, got {image.dtype}")
    image = _unbatch("IMAGE", image, 3)
    h, w, c = image.shape
    if c != 3:
        raise RequestError(f"IMAGE must be [H, W, 3] RGB, got {list(image.shape)}")
    if h < 1 or w < 1:
        raise RequestError(f"IMAGE is empty ({h}x{w})")
    if h * w > cfg.max_image_pixels:
        raise RequestError(f"IMAGE is {w}x{h} = {h * w} pixels, more than this server's limit of "
                           f"{cfg.max_image_pixels}")
    mask, kind = tensors.get("MASK"), tensors.get("MASK_KIND")
    if (mask is None) == (kind is None):
        raise RequestError("give exactly one of MASK (uint8 [H, W], 255 = fill) and MASK_KIND")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.uint8:
            raise RequestError(f"MASK must be uint8, got {mask.dtype}")
        mask = _unbatch("MASK", mask, 2)
        if mask.shape != (h, w):
            raise RequestError(f"MASK is {mask.shape[1]}x{mask.shape[0]}, IMAGE is {w}x{h}: they must match")
        spec = mask
    else:
        spec = _scalar("MASK_KIND", kind, str)
        if spec not in MASK_KINDS:
            raise RequestError(f"MASK_KIND {spec[:40]!r} is not one of {', '.join(MASK_KINDS)}")
    steps = tensors.get("STEPS")
    steps = None if steps is None else _scalar("STEPS", steps, int, 1, cfg.max_steps)
    restarts = tensors.get("RESTARTS")
    restarts = None if restarts is None else _scalar("RESTARTS", restarts, int, 1, cfg.max_restarts)
    seed = tensors.get("SEED")
    seed = 0 if seed is None else _scalar("SEED", seed, int, 0, 2 ** 63 - 1)
    init = tensors.get("INIT")
    init = "auto" if init is None else _scalar("INIT", init, str).lower()
    if init not in INITS:
        raise RequestError(f"INIT {init[:40]!r} is not one of {', '.join(INITS)}")
    try:
        pipeline.make_start(init)
    except EdgefillError as exc:
        raise RequestError(one_line(f"INIT: {exc}")) from None
    samples = tensors.get("SAMPLES")
    samples = None if samples is None else _scalar("SAMPLES", samples, int, 1, cfg.max_samples)
    box = tensors.get("BOX")
    if box is not None:
        box = np.asarray(box)
        if not np.issubdtype(box.dtype, np.integer) or box.size != 4:
            raise RequestError("BOX must be 4 integers x, y, w, h")
        box = tuple(int(v) for v in box.reshape(-1))
    try:
        prep = prepare(image, spec, box, rng=np.random.default_rng(seed))
    except EdgefillError as exc:
        raise RequestError(one_line(exc)) from None
    return Problem(prep=prep, seed=seed, steps=steps, restarts=restarts, init=init, samples=samples)


def answer_batch(problems: list[Problem], pipeline: Pipeline) -> list[Answer]:
    """Every problem's answer, in order (module docstring). Errors here are the server's (5xx)."""
    answers: list[Answer | None] = [None] * len(problems)
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(problems):
        if not p.prep.has_hole:
            k = p.samples or 1
            answers[i] = Answer(np.repeat(p.prep.original[None], k, axis=0), np.full(k, np.nan, np.float32), 0,
                                p.samples)
        else:
            groups.setdefault((p.steps, p.restarts, p.init, p.samples), []).append(i)
    for (steps, restarts, init, samples), idx in groups.items():
        start = pipeline.make_start(init)
        cfg = pipeline.config(steps=steps, restarts=restarts, start=start.name)
        images = np.stack([problems[i].prep.image64 for i in idx])
        masks = np.stack([problems[i].prep.mask64 for i in idx])
        seeds = [problems[i].seed for i in idx]
        if samples is None:
            batch = pipeline.run(images, masks, cfg, start=start, seeds=seeds)
            final, loss = batch.final[:, None], np.asarray(batch.search.loss)[:, None]
            steps_run = batch.search.steps_run
        else:
            sset = pipeline.run_samples(images, masks, cfg, samples=samples, start=start, seeds=seeds)
            final, loss, steps_run = sset.final, sset.loss, sset.batch.search.steps_run
        for j, i in enumerate(idx):
            filled = np.stack([paste_back(problems[i].prep, f) for f in final[j]])
            answers[i] = Answer(filled, np.asarray(loss[j], np.float32), int(steps_run), samples)
    return answers  # type: ignore[return-value]

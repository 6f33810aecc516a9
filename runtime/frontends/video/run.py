"""The plain function behind `edgefill video`: reader, inference and writer threads joined by
bounded queues, and the JSON report.

    reader thread   Source.read() (file: every frame, in order; live: the newest frame), then
                    VideoInpainter.locate (the face region: detection, flow, smoothing)
    main thread     VideoInpainter.process (mask, pipeline, temporal state, paste back)
    writer thread   VideoSink.write (+ --side-by-side composition, + --evaluate metrics)
The queues hold QUEUE_SIZE frames: a slow writer or reader applies back-pressure, never drops a
frame of a file. A live source (--realtime) hands inference at most LIVE_QUEUE_SIZE = 1 frame, the
newest: a located frame still waiting when a newer one is ready is dropped and counted (with 8
queued frames a frame waited up to 8 inference times: latency, not throughput), and without
--frame-budget-ms its search gets REALTIME_BUDGET_SHARE of the frame interval (a second step only
when it fits: a busy machine costs a step before it costs a frame). Everything is
checked (source, mask, output, codec) before the first frame is processed. Ctrl-C only sets a
flag (a SIGINT handler while run_video runs on the main thread): the search checks it after every
step, the loops between frames, every queue wait has a timeout, so
the run stops within one search step and the encoding of the frames already done, however loaded
the machine; the writer closes what it has as OUT.partial.EXT (playable) and says so. A source
that breaks mid-stream (a truncated file, a frame of another size) ends the run the same way:
the frames done are kept as OUT.partial.EXT and one error line says what happened.

Report: frames in (decoded), processed, out, dropped (live: in = processed + dropped; split into
dropped_at_source, never read, and dropped_waiting, read and located but replaced by a newer one
before inference took it), without a
face, track restarts, scene cuts, faces that fell back to OpenCV Telea in their crop
(faces_fallback: turned too far, or too far outside the frame; api.VideoInpainter.pose), frames whose full-frame hole reached past the face crop (only
the part inside is filled), fps (frames out / wall time from the first decode to the last
encode; a live output is re-timed at it: fps_stamped), latency per frame p50/p95/p99 of every stage
(decode, detect = face region, inpaint = mask + pipeline + paste back, split into align (frame ->
64x64 problem), start (z0), search (steps, final image, blend), fill (--fill telea: OpenCV Telea
in the crop, in place of start and search), refine and paste (back into the frame), encode, and total = the frame's decode start to its encode end, queueing included: for a
live source the end-to-end latency, read to written), the settings; with --evaluate (the mask is synthetic, so the source frame
is the truth): per-frame hole PSNR (full frame, hole pixels) and SSIM (the face crop; the mean over the
faces' crops with --max-faces) of the
output and of OpenCV Telea on the same frames and masks, and the masked flicker ratio (flicker.py)
of both.
"""
from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ...core.pipeline import Pipeline
from ...errors import EdgefillError
from .api import VideoInpainter
from .masks import MaskSource
from .report import Evaluator, FrameTally
from .settings import VideoSettings
from .sources import SourceError, open_source
from .writer import VideoSink

QUEUE_SIZE = 8
LIVE_QUEUE_SIZE = 1  # a live source: at most one located frame waits for inference, the newest
# A live source without --frame-budget-ms: each frame's search stops after the step that ends past this
# share of the frame interval (13.3 ms at 29.97 fps), so a second step runs only when it fits with the
# refiner and paste-back (idle 2-core CPU: align + 1 step ~8 ms, 2 steps always ran; another job on the
# machine: one step ~11-13 ms, and the frame took 1 step instead of being dropped).
REALTIME_BUDGET_SHARE = 0.4
_END = object()


class VideoInterrupted(EdgefillError):
    """Ctrl-C during a run; the message says what was kept."""


class _Cancelled(Exception):
    """Raised by the search's progress callback once Ctrl-C was pressed: abandons that frame."""


@dataclass
class _Failed:
    """A reader failure, queued after the frames read before it (so they are still written)."""

    error: BaseException


@contextlib.contextmanager
def _sigint_sets(flag: threading.Event):
    """While inside: SIGINT sets `flag` instead of raising at an arbitrary point (a second one
    raises KeyboardInterrupt at once). Only the main thread can install handlers; elsewhere (an
    embedding application's thread) SIGINT keeps its usual behaviour."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class VideoJob:
    """One `edgefill video` run: where frames come from and go, and how each is inpainted
    (settings: video.settings.VideoSettings, the flags of the same names)."""

    input: str
    out: str
    mask: str = "center"
    settings: VideoSettings = field(default_factory=VideoSettings)
    realtime: bool = False
    keep_audio: bool = False
    codec: str | None = None
    side_by_side: bool = False
    evaluate: bool = False
    provider: str | None = None
    bundle: str | None = None
    threads: int | None = None
    max_frames: int = 0
    progress: bool = True


def run_video(job: VideoJob) -> dict:
    """Run one job (module docstring) -> the report (dict)."""
    interrupted = threading.Event()
    with _sigint_sets(interrupted):
        return _run(job, interrupted)


def _run(job: VideoJob, interrupted: threading.Event) -> dict:
    t_begin = time.perf_counter()
    source = open_source(job.input, realtime=job.realtime)
    sink = None
    masks = None
    try:
        if job.keep_audio:
            from .writer import ffmpeg_exe

            if ffmpeg_exe() is None:
                raise EdgefillError("--keep-audio needs the video extra: pip install 'edgefill[video]'")
            if source.kind not in ("file",):
                raise EdgefillError("--keep-audio needs a video file as INPUT")
        masks = MaskSource(job.mask, source.width, source.height, source.frame_count)
        pipeline = Pipeline(job.bundle, provider=job.provider, threads=job.threads)
        settings = job.settings
        if settings.frame_budget_ms is None and source.live:
            settings = settings.replace(frame_budget_ms=REALTIME_BUDGET_SHARE * 1000.0 / source.fps)
        vi = VideoInpainter(source.width, source.height, masks, settings, frame_count=source.frame_count,
                            pipeline=pipeline)
        width = source.width * (2 if job.side_by_side else 1)
        sink = VideoSink(job.out, source.fps, (width, source.height), job.codec)
        if interrupted.is_set():
            raise KeyboardInterrupt
        try:
            report = _loop(job, source, vi, sink, interrupted)
        except SourceError as exc:
            done = sink.frames
            kept = sink.abort()
            sink = None
            raise EdgefillError(f"{exc}; kept {kept} ({done} frames)" if kept else f"{exc}; no frame was written") \
                from None
        if source.live and report["frames_out"] > 1:
            report["fps_stamped"] = sink.restamp(report["fps"])
        audio = sink.finish(audio_from=job.input if job.keep_audio else None)
        sink = None
        report.update(audio=audio["audio"], seconds=time.perf_counter() - t_begin)
        return report
    except KeyboardInterrupt:
        kept = sink.abort() if sink is not None else None
        sink = None
        raise VideoInterrupted(f"kept {kept}" if kept else "no output written") from None
    finally:
        if sink is not None:
            sink.discard()
        if masks is not None:
            masks.close()
        source.close()


def _put(q: queue.Queue, item, alive) -> bool:
    """Put with back-pressure, giving up (False) once `alive()` is false (the consumer is gone)."""
    while True:
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            if not alive():
                return False


def _replace_stale(q: queue.Queue, item) -> bool:
    """Live sources: put `item` (always, at once); a frame still waiting in the full queue is taken
    out first (the newest frame goes to inference). True when one was dropped. Only the reader
    puts into q."""
    try:
        q.put_nowait(item)
        return False
    except queue.Full:
        pass
    try:
        stale = q.get_nowait()
    except queue.Empty:
        stale = None
    if stale is not None and (stale is _END or isinstance(stale, _Failed)):  # never (the reader puts those last)
        q.put_nowait(stale)
        return False
    q.put_nowait(item)
    return stale is not None


def _loop(job: VideoJob, source, vi: VideoInpainter, sink: VideoSink, interrupted: threading.Event) -> dict:
    q_in: queue.Queue = queue.Queue(LIVE_QUEUE_SIZE if source.live else QUEUE_SIZE)
    q_out: queue.Queue = queue.Queue(QUEUE_SIZE)
    stop = threading.Event()
    errors: list[BaseException] = []  # the writer's
    tally = FrameTally()
    times, counts = tally.times, tally.counts
    evaluator = Evaluator() if job.evaluate else None
    running = lambda: not stop.is_set() and not interrupted.is_set()  # noqa: E731

    def reader():
        """Decode, then find the face region (the tracker needs only the frames, in order, so it
        runs here, beside the inference thread: OpenCV releases the GIL). A failure is queued
        after the frames read before it."""
        end = _END
        try:
            while running():
                t_read = time.perf_counter()
                frame = source.read()
                if frame is None or (job.max_frames and counts["in"] >= job.max_frames):
                    break
                counts["in"] += 1
                t1 = time.perf_counter()
                # from the frame's own decode (a live source decoded it on its thread, maybe before this read)
                t0 = getattr(frame, "read_at", 0.0) or t_read
                times["decode"].append(getattr(frame, "decode_s", 0.0) or t1 - t_read)
                region = vi.locate(frame.image, frame.index)
                times["detect"].append(time.perf_counter() - t1)
                item = (frame, region, t0)
                if source.live:
                    counts["stale"] += int(_replace_stale(q_in, item))
                elif not _put(q_in, item, running):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, in order
            end = _Failed(exc)
        finally:
            _put(q_in, end, running)

    def writer():
        try:
            while True:
                item = q_out.get()
                if item is _END:
                    return
                frame, out, info, t0 = item
                t1 = time.perf_counter()
                sink.write(np.concatenate([frame.image, out], axis=1) if job.side_by_side else out)
                counts["out"] += 1
                now = time.perf_counter()
                times["encode"].append(now - t1)
                times["total"].append(now - t0)
                if evaluator is not None and not interrupted.is_set():
                    evaluator.add(frame.image, out, info)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            stop.set()

    def check_interrupt(_steps: int) -> None:
        if interrupted.is_set():
            raise _Cancelled

    bar = None
    if job.progress and not source.live:
        from tqdm import tqdm

        total = source.frame_count if not job.max_frames else min(job.max_frames, source.frame_count or job.max_frames)
        bar = tqdm(total=total, desc="video", unit="frame", leave=False, dynamic_ncols=True)
    read_thread = threading.Thread(target=reader, name="edgefill-video-read", daemon=True)
    write_thread = threading.Thread(target=writer, name="edgefill-video-write", daemon=True)
    t_start = time.perf_counter()
    read_thread.start()
    write_thread.start()
    failure = None
    try:
        while not errors and not interrupted.is_set():
            try:
                item = q_in.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, _Failed):
                failure = item.error
                break
            frame, region, t0 = item
            try:
                out, info = vi.process(frame.image, frame.index, region=region, progress=check_interrupt)
            except _Cancelled:
                break
            tally.add(info)
            if not _put(q_out, (frame, out, info, t0), write_thread.is_alive):
                break
            if bar is not None:
                bar.update(1)
    finally:
        stop.set()
        _put(q_out, _END, write_thread.is_alive)
        write_thread.join(timeout=60)  # encodes at most the QUEUE_SIZE frames already done
        read_thread.join(timeout=2)  # a daemon: a source stuck in a read is left behind
        if bar is not None:
            bar.close()
    if errors:
        raise errors[0]
    if interrupted.is_set():
        raise KeyboardInterrupt
    if failure is not None:
        raise failure
    wall = time.perf_counter() - t_start
    report = tally.report(job, source, vi, sink, wall)
    if evaluator is not None:
        report["evaluation"] = evaluator.report()
    return report

"""Writing the output video: never a corrupt or half-written OUT.

Frames (RGB uint8 (H,W,3)) go to a hidden temporary file beside OUT through cv2.VideoWriter
(codecs: mp4v for .mp4/.mov, MJPG for .avi, FFV1 for .mkv by default; --codec takes any FourCC
that this OpenCV writes, checked by opening a writer). With the `video` extra (imageio-ffmpeg)
`--keep-audio` copies the source's audio stream into the result (ffmpeg -c copy; a source without
audio is reported, not an error), and --codec h264 encodes H.264 with its ffmpeg.
finish() renames the file onto OUT. abort() (Ctrl-C) closes the writer, which leaves a playable
file, and renames it to OUT's name + ".partial" + its extension; nothing is left at OUT. restamp(fps)
re-times a live run's frames at the fps it achieved. ffmpeg runs in its own session, so a Ctrl-C
in the terminal reaches edgefill only, which then closes ffmpeg's input and lets it finish the file.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ...errors import EdgefillError

DEFAULT_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}


def ffmpeg_exe() -> str | None:
    """imageio-ffmpeg's ffmpeg (the `video` extra), or None."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (RuntimeError, OSError):
        return None


def has_audio(path: str) -> bool:
    """Whether a media file has an audio stream (ffmpeg's stream listing)."""
    exe = ffmpeg_exe()
    if exe is None or not Path(path).is_file():
        return False
    proc = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    return " Audio:" in proc.stderr


def partial_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.partial{out.suffix}")


class VideoSink:
    """out: the target file; fps, size (width, height); codec: a FourCC, 'h264', or None (by suffix)."""

    def __init__(self, out: str | os.PathLike, fps: float, size: tuple[int, int], codec: str | None = None):
        self.out = Path(out)
        suffix = self.out.suffix.lower()
        if suffix not in DEFAULT_CODECS:
            raise EdgefillError(f"--out must end in one of {', '.join(DEFAULT_CODECS)}: {out}")
        if self.out.is_dir():
            raise EdgefillError(f"--out {out} is a folder")
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not parent.is_dir():
            raise EdgefillError(f"--out {out}: the folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise EdgefillError(f"--out {out}: the folder {parent} is not writable")
        self.fps, self.size = float(fps), size
        self.codec = codec or DEFAULT_CODECS[suffix]
        self.h264 = self.codec.lower() in ("h264", "avc1", "x264")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.out.stem}.", suffix=self.out.suffix, dir=parent)
        except OSError as exc:  # a read-only file system, a full disk, permissions root does not bypass
            raise EdgefillError(f"--out {out}: cannot write in the folder {parent}: {exc.strerror or exc}") from None
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames = 0
        self._ffmpeg = None
        self._writer = None
        if self.h264:
            exe = ffmpeg_exe()
            if exe is None:
                self.tmp.unlink()
                raise EdgefillError("--codec h264 needs the video extra: pip install 'edgefill[video]'")
            w, h = size
            self._ffmpeg = subprocess.Popen(
                [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                 "-r", f"{self.fps:.6f}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast",
                 str(self.tmp)], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)  # Ctrl-C in a terminal reaches edgefill, which closes ffmpeg cleanly
        else:
            if len(self.codec) != 4:
                self.tmp.unlink()
                raise EdgefillError(f"--codec {self.codec!r} is not a FourCC (4 characters) or h264")
            from .sources import quiet_opencv

            with quiet_opencv():
                self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.codec), self.fps, size)
            if not self._writer.isOpened():
                self._writer.release()
                self.tmp.unlink(missing_ok=True)
                raise EdgefillError(f"--codec {self.codec!r} cannot write {self.out.suffix} files with this OpenCV")

    def write(self, frame: np.ndarray) -> None:
        if self._ffmpeg is not None:
            try:
                self._ffmpeg.stdin.write(np.ascontiguousarray(frame).tobytes())
            except (BrokenPipeError, OSError):
                raise EdgefillError(f"ffmpeg stopped while writing {self.out}: {self._close()}") from None
        else:
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _close(self) -> str | None:
        """Close the writer; for ffmpeg, None when it finished cleanly, else its last error line."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        problem = None
        if self._ffmpeg is not None:
            proc, self._ffmpeg = self._ffmpeg, None
            try:
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                err = proc.stderr.read().decode(errors="replace")
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                err = "ffmpeg did not finish"
            if proc.returncode != 0:
                problem = (err.strip().splitlines() or [f"ffmpeg exited with {proc.returncode}"])[-1]
        return problem

    def finish(self, audio_from: str | None = None) -> dict:
        """Close, copy audio from `audio_from` when asked and present, rename onto OUT.
        Returns {"audio": "copied" | "none in the source" | None}."""
        problem = self._close()
        if problem is not None:
            self.discard()
            raise EdgefillError(f"writing {self.out} failed: {problem}")
        audio = None
        if audio_from is not None:
            exe = ffmpeg_exe()
            if exe is None:
                self.discard()
                raise EdgefillError("--keep-audio needs the video extra: pip install 'edgefill[video]'")
            if has_audio(audio_from):
                muxed = self.tmp.with_name(self.tmp.stem + ".mux" + self.tmp.suffix)
                proc = subprocess.run([exe, "-y", "-loglevel", "error", "-i", str(self.tmp), "-i", str(audio_from),
                                       "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-shortest", str(muxed)],
                                      capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    muxed.unlink(missing_ok=True)
                    self.discard()
                    last = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
                    raise EdgefillError(f"copying the audio failed: {last}")
                os.replace(muxed, self.tmp)
                audio = "copied"
            else:
                audio = "none in the source"
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.out)
        return {"audio": audio}

    def restamp(self, fps: float) -> float:
        """A live run: re-time the written frames at the fps achieved (same frames, new rate).
        cv2 codecs are re-encoded frame by frame with the same FourCC; H.264 with ffmpeg."""
        fps = round(max(float(fps), 0.1), 3)
        self._close()
        retimed = self.tmp.with_name(self.tmp.stem + ".fps" + self.tmp.suffix)
        try:
            if self.h264:
                proc = subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-r", f"{fps:.6f}", "-i", str(self.tmp),
                                       "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(retimed)],
                                      capture_output=True, text=True, timeout=3600, start_new_session=True)
                if proc.returncode != 0:
                    raise EdgefillError("re-timing the output failed: " +
                                        (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1])
            else:
                cap = cv2.VideoCapture(str(self.tmp))
                out = cv2.VideoWriter(str(retimed), cv2.VideoWriter_fourcc(*self.codec), fps, self.size)
                while True:
                    ok, img = cap.read()
                    if not ok:
                        break
                    out.write(img)
                cap.release()
                out.release()
            os.replace(retimed, self.tmp)
        finally:
            retimed.unlink(missing_ok=True)
        self.fps = fps
        return fps

    def abort(self) -> Path | None:
        """Ctrl-C: keep what was written as OUT.partial.EXT (playable), or nothing if no frame."""
        self._close()
        if self.frames == 0:
            self.discard()
            return None
        target = partial_path(self.out)
        os.replace(self.tmp, target)
        return target

    def discard(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)

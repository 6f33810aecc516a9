"""`edgefill video`: a stream of frames through the one pipeline, with temporal state (DESIGN 8).

    sources.py   readers: file, camera index, stream URL, image sequence; live = newest frame first
    faces.py     the face region per frame: a fixed box, or Haar detection (downscaled, every N
                 frames), followed by optical flow in between, smoothed, ended at scene cuts, and
                 shaped like the model's CelebA crops
    masks.py     the hole per frame: a kind relative to the face crop, a full-frame PNG, a mask video
    temporal.py  the previous frame's z as the next start, reset on a jump; optional smoothing
    writer.py    temp file + rename, codecs, audio copied with imageio-ffmpeg, a partial file on Ctrl-C
    flicker.py   the masked flow-warping error of DESIGN section 5 and its ratio to the source's
    run.py       reader (+ face region) -> inference -> writer threads with bounded queues, the report
    api.py       inpaint_video / inpaint_frames (generators of processed frames) and VideoInpainter
                 (frame in, frame out), for people embedding it in their own loop

Frames are RGB uint8 (H,W,3) at every boundary (OpenCV's BGR is converted once, in sources.py and
writer.py); masks uint8 (H,W), 255 = fill.
"""

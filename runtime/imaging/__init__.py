"""Image handling: any image/mask in, the 64x64 problem out and back (preprocess, masks, colour,
blending, paste-back), metrics, datasets, pictures and plots. numpy + OpenCV (+ matplotlib lazily).
Imports nothing from the core or the front ends.
"""

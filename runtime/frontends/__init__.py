"""The front ends: each owns its inputs, outputs and loop and calls runtime.core.pipeline.

    inpainter      the Python API (Inpainter): one image of any size, or N 64x64 problems
    inpaint_files  `edgefill inpaint`: many files, batched
    evaluate       metrics of every method on every mask kind
    profile/       per-stage latency, throughput, FLOP/s
    cli/           the click commands, one module each
"""

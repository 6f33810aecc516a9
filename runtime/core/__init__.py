"""The pipeline's core: bundle -> engine -> start z -> search backend -> (blend) -> refiner.

Imports only numpy, onnxruntime and the imaging helpers; never a front end (tests/test_layout.py).
`pipeline.Pipeline` is the object every front end calls.
"""

"""edgefill runtime: numpy + onnxruntime + OpenCV, never torch or onnx."""
__version__ = "0.1.0"

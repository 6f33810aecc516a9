"""edgefill export: ONNX graphs, the search-step gradient graph, validation, bundles."""

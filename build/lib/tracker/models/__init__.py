"""Model code (the only place that runs networks): the person detector, the ReID encoder, model lookup
and download, ONNX Runtime sessions. Needs the ``[models]`` extra (onnxruntime, OpenCV)."""

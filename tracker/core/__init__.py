"""The tracking core: Kalman motion in seconds, gated association, appearance memory, track lifecycle.

numpy + scipy + lap only: no OpenCV, ONNX Runtime, torch, threads or I/O. ``CameraTracker`` is the
per-camera tracker; ``Detections`` / ``TrackOutput`` are the arrays that go in and come out.
"""

"""Real-time multi-camera person tracker.

The core tracking layer (``kalman``, ``association``, ``appearance``, ``boxes``,
``types``, ``tracker``) depends only on numpy, scipy and lap. Model code lives in
``reid`` (onnxruntime) and never enters the tracker: trackers take embeddings
together with the detections.
"""

__version__ = "0.1.0"

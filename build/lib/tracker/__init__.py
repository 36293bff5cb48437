"""Real-time multi-camera person tracker (``mctrack``).

Library use (see the README's "Use as a library")::

    from tracker import CameraTracker, Detections
    tracker = CameraTracker()
    out = tracker.update(Detections(tlbr, scores, timestamp))        # out.track_ids, out.tlbr, out.det_index

    from tracker import Tracker                                        # with your own detector loop
    tracks = Tracker(fps=30).update(boxes_xyxy, scores, frame=image)  # numpy, supervision or Ultralytics input

Layers (import names): ``tracker.core`` (numpy + scipy + lap only), ``tracker.models`` (ONNX Runtime,
OpenCV), ``tracker.io``, ``tracker.multicam``, ``tracker.scoring``, ``tracker.commands``; ``streams``
holds the video inputs. Names below load on first use, so ``import tracker`` needs only the core's
dependencies; ``ReIDEncoder`` needs the ``[models]`` extra.
"""

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "CameraTracker": "tracker.core.tracker",
    "Detections": "tracker.core.types",
    "TrackOutput": "tracker.core.types",
    "IdAllocator": "tracker.core.ids",
    "TrackerConfig": "tracker.core.config",
    "KalmanConfig": "tracker.core.config",
    "MulticamConfig": "tracker.multicam.config",
    "LinkConfig": "tracker.multicam.config",
    "HomographyConfig": "tracker.multicam.config",
    "IdentityRegistry": "tracker.multicam.registry",
    "ReIDEncoder": "tracker.models.reid",
    "Tracker": "tracker.api",
    "MultiCameraTracker": "tracker.api",
    "Tracks": "tracker.api",
    "UserError": "tracker.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)

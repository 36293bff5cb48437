"""Per-track appearance memory and cosine distances, vectorised over tracks.

Embeddings are unit-norm at the boundary, so cosine distance is ``1 - a @ b.T``.
Two memories are provided: an exponential moving average (one vector per track) and a
fixed-size gallery (the last K vectors; distance = the smallest over the gallery).
"""

from __future__ import annotations

import numpy as np


def normalize(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows of (N, D) float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, D) and (N, D) unit-norm float32 -> (M, N) float32 distances ``1 - a @ b.T`` in [0, 2]."""
    return 1.0 - a @ b.T


class EmaMemory:
    """One smoothed unit-norm vector per track: ``f <- normalize(alpha * f + (1 - alpha) * e)``.

    ``alpha`` in [0, 1]: higher keeps the old appearance longer (robust to a few bad crops),
    lower adapts faster to changes in pose and light.
    """

    def __init__(self, dim: int, alpha: float):
        self.alpha = float(alpha)
        self.dim = dim
        self.features = np.zeros((0, dim), np.float32)
        self.valid = np.zeros(0, bool)

    def __len__(self) -> int:
        return len(self.valid)

    def append(self, emb: np.ndarray | None, n: int) -> None:
        """Add ``n`` tracks, initialised from (n, D) ``emb`` or empty when None."""
        feats = np.zeros((n, self.dim), np.float32) if emb is None else np.asarray(emb, np.float32)
        self.features = np.concatenate([self.features, feats])
        self.valid = np.concatenate([self.valid, np.full(n, emb is not None)])

    def keep(self, mask: np.ndarray) -> None:
        self.features = self.features[mask]
        self.valid = self.valid[mask]

    def update(self, rows: np.ndarray, emb: np.ndarray) -> None:
        """Blend (K, D) unit-norm ``emb`` into tracks ``rows`` (K,)."""
        if len(rows) == 0:
            return
        old = self.features[rows]
        first = ~self.valid[rows]
        blended = self.alpha * old + (1.0 - self.alpha) * emb
        blended[first] = emb[first]
        self.features[rows] = normalize(blended)
        self.valid[rows] = True

    def distance(self, rows: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """(len(rows), N) cosine distances of tracks ``rows`` to (N, D) detections."""
        return cosine_distance(self.features[rows], emb)

    def summary(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) one unit-norm appearance vector per track."""
        return self.features[rows]


class GalleryMemory:
    """The last ``size`` embeddings of each track (ring buffer); distance = the smallest one."""

    def __init__(self, dim: int, size: int):
        self.size = int(size)
        self.dim = dim
        self.gallery = np.zeros((0, self.size, dim), np.float32)
        self.count = np.zeros(0, np.int64)  # total embeddings ever added per track

    def __len__(self) -> int:
        return len(self.count)

    @property
    def valid(self) -> np.ndarray:
        return self.count > 0

    def append(self, emb: np.ndarray | None, n: int) -> None:
        g = np.zeros((n, self.size, self.dim), np.float32)
        if emb is not None:
            g[:, 0] = emb
        self.gallery = np.concatenate([self.gallery, g])
        self.count = np.concatenate([self.count, np.full(n, 0 if emb is None else 1, np.int64)])

    def keep(self, mask: np.ndarray) -> None:
        self.gallery = self.gallery[mask]
        self.count = self.count[mask]

    def update(self, rows: np.ndarray, emb: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self.gallery[rows, self.count[rows] % self.size] = emb
        self.count[rows] += 1

    def distance(self, rows: np.ndarray, emb: np.ndarray) -> np.ndarray:
        g = self.gallery[rows]  # (T, K, D)
        sims = g.reshape(-1, self.dim) @ emb.T  # (T*K, N)
        sims = sims.reshape(len(rows), self.size, -1)
        filled = np.arange(self.size)[None, :] < np.minimum(self.count[rows], self.size)[:, None]
        sims = np.where(filled[:, :, None], sims, -np.inf)
        return 1.0 - sims.max(axis=1) if len(rows) else np.zeros((0, len(emb)), np.float32)

    def summary(self, rows: np.ndarray) -> np.ndarray:
        g = self.gallery[rows]
        filled = np.arange(self.size)[None, :] < np.minimum(self.count[rows], self.size)[:, None]
        return normalize((g * filled[:, :, None]).sum(axis=1))

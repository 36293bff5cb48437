"""Site adaptation of ReID features: per-camera centring learned online from the tracker's own tracks.

A ReID network trained elsewhere puts all the people of one site close together: they share the
site's light, background, camera colour and (on PETS09) dark jackets and jeans, so every embedding
carries a large common component and cosine similarities between different people are high. Each
camera adds its own bias (colour, scale, blur) on top, which moves the same person's embeddings
apart between cameras. Subtracting each camera's mean appearance of the people it sees removes
both, so what is left is what tells people apart.

The statistics are free labels from tracking, no ground truth: each finished track (one person) adds
its unit-norm mean embedding to its camera's running mean. The transform is

    T_c(x) = normalise(x - shrink_c * mean_c),   shrink_c = n_c / (n_c + prior_tracks)

so it is exactly the identity before any evidence (``n_c = 0``) and moves to full centring as
tracks accumulate.

Centring changes the scale of cosine distances (the common component is gone, so every distance
grows), and the registry's thresholds are in raw OSNet cosine distance. To keep their meaning,
the registry compares adapted vectors with a calibrated distance

    d(x, y) = r_a r_b (1 - cos(T_a(x), T_b(y))),  r_c^2 = E|m - s mean_c|^2 = 1 - (2 s - s^2) |mean_c|^2

(``m`` a unit track mean of camera c, ``s = shrink_c``): for two close vectors it equals the raw
cosine distance to first order, so near pairs keep their raw scale while the ranking among
candidates is the centred one. ``embed`` returns vectors whose dot product is ``1 - d`` (two extra
columns), so a gallery is still compared with one matrix product. A camera with no evidence of
its own borrows the site mean over all cameras (same shrinkage on the site count).
``horizon_tracks`` bounds the memory of the running means (older tracks are down-weighted
exponentially), so the centre follows slow changes of light.

Tried on the PETS09-MC tracks and not kept: whitening by the within-track scatter, a linear
discriminant from co-occurring tracks (negatives) and removing the site's top principal
components; with the few dozen tracks a site gives in minutes none beat centring alone in
track-level rank-1 (an exploratory script, not in the repository).

Memory: two (D,) float64 vectors and two counts per camera. Time: O(D) per finished track, O(N D)
per transform. Pure numpy; no I/O.
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` ((N, D) or (D,)) scaled to unit L2 norm (zero rows stay zero)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class SiteAdaptation:
    """Running per-camera centres of the site's track appearance, and the transform they define.

    Args:
        prior_tracks: pseudo-count of "no centring" evidence: after ``prior_tracks`` tracks in a camera
            the centre is applied at half strength. Higher: slower, steadier adaptation (a few odd
            tracks move it less); lower: adapts after fewer people.
        horizon_tracks: effective number of most recent tracks a centre averages over (exponential
            forgetting). Higher: steadier; lower: follows changes of light faster.
    """

    def __init__(self, prior_tracks: float = 5.0, horizon_tracks: float = 500.0):
        self.prior = float(prior_tracks)
        self.horizon = float(horizon_tracks)
        self._sum: dict[str, np.ndarray] = {}  # camera -> (D,) float64 weighted sum of track means
        self._n: dict[str, float] = {}  # camera -> weighted count
        self.version = 0  # bumped whenever the transform changes (callers cache transformed vectors)
        self._centres: dict[str, np.ndarray] = {}
        self._radius: dict[str, float] = {}
        self._pending = False
        self._since = 0.0  # tracks observed since the last refresh

    @property
    def dim(self) -> int | None:
        for s in self._sum.values():
            return len(s)
        return None

    def tracks_seen(self) -> dict[str, float]:
        """Camera -> weighted number of tracks its centre holds."""
        return dict(self._n)

    def observe(self, camera: str, track_mean: np.ndarray) -> None:
        """Add one finished track of ``camera``: ``track_mean`` (D,) unit-norm mean of its embeddings."""
        v = np.asarray(track_mean, np.float64).reshape(-1)
        if self.dim is not None and len(v) != self.dim:
            raise ValueError(f"embedding size changed from {self.dim} to {len(v)}")
        if not np.all(np.isfinite(v)):
            return
        s = self._sum.get(camera)
        n = self._n.get(camera, 0.0)
        if s is None:
            s = np.zeros(len(v))
        if n + 1.0 > self.horizon:  # exponential forgetting: the sum stays a mean over ~horizon tracks
            keep = (self.horizon - 1.0) / n
            s, n = s * keep, n * keep
        self._sum[camera] = s + v
        self._n[camera] = n + 1.0
        self._pending = True
        self._since += 1.0

    def refresh(self, min_fraction: float = 0.0) -> bool:
        """Make the tracks observed since the last refresh count in the transform; True when it changed.

        Between refreshes the transform stays fixed, so vectors transformed earlier stay comparable
        (the registry refreshes at most once a second and re-transforms its cached gallery then).
        With ``min_fraction``, nothing changes until the new tracks are at least that fraction of all the
        tracks the centres hold (at least one): a centre that moved by a hair is not worth re-transforming
        every gallery summary for.
        """
        if not self._pending or self._since < max(1.0, min_fraction * sum(self._n.values())):
            return False
        self._pending = False
        self._since = 0.0
        self._centres = self._compute()
        self.version += 1
        return True

    def centre(self, camera: str) -> np.ndarray | None:
        """(D,) float32 shrunk centre subtracted from ``camera``'s features (as of the last ``refresh``), or
        None (identity so far)."""
        return self._centres.get(camera, self._centres.get(""))

    def _compute(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        self._radius: dict[str, float] = {}
        if not self._sum:
            return out
        sums = dict(self._sum)
        ns = dict(self._n)
        # cameras without evidence of their own (and unknown ones) use the site's centre
        sums[""], ns[""] = sum(self._sum.values()), sum(self._n.values())
        for cam, total in sums.items():
            n = ns[cam]
            if n <= 0:
                continue
            mean = total / n
            shrink = n / (n + self.prior)
            out[cam] = (shrink * mean).astype(np.float32)
            r2 = 1.0 - (2.0 * shrink - shrink * shrink) * float(mean @ mean)
            self._radius[cam] = float(np.sqrt(max(r2, 1e-4)))
        return out

    def radius(self, camera: str) -> float:
        """Calibration factor ``r_c`` of ``camera`` (1 before any evidence); see the module docstring."""
        if camera in self._radius:
            return self._radius[camera]
        return self._radius.get("", 1.0)

    def embed(self, cameras: list[str], x: np.ndarray, query: bool) -> np.ndarray:
        """(N, D + 2) float32 rows for the calibrated distance: ``1 - embed(g, query=False) @ embed(q,
        query=True).T`` is ``r_g r_q (1 - cos(T(g), T(q)))``, the raw cosine distance before any evidence.

        Args:
            cameras: N camera ids (the camera each row was seen in; "" unknown).
            x: (N, D) unit-norm embeddings or track means.
            query: which side of the product the rows are on (one side carries ``-r``).
        """
        x = np.asarray(x, np.float32)
        out = np.empty((len(x), x.shape[1] + 2), np.float32)
        codes, uniq = self._codes(cameras)
        t = x - self._centre_matrix(uniq, x.shape[1])[codes] if self._centres else x
        r = np.asarray([self.radius(c) for c in uniq], np.float32)[codes][:, None]
        out[:, :-2] = _unit(t) * r
        out[:, -2:-1] = -r if query else r
        out[:, -1] = 1.0
        return out

    @staticmethod
    def _codes(cameras: list[str]) -> tuple[np.ndarray, list[str]]:
        """Each row's index into the list of distinct cameras, and that list."""
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(c, len(index)) for c in cameras), np.int64, len(cameras))
        return codes, list(index)

    def _centre_matrix(self, cameras: list[str], dim: int) -> np.ndarray:
        zero = np.zeros(dim, np.float32)
        return np.stack([c if (c := self.centre(cam)) is not None else zero for cam in cameras])

    def transform(self, camera: str, x: np.ndarray) -> np.ndarray:
        """Adapted unit-norm features of ``camera``.

        Args:
            camera: camera id (an unknown one, or "", uses the site's centre).
            x: (N, D) or (D,) float32 unit-norm embeddings (or unit-norm track means).
        Returns:
            same shape, float32, unit-norm; ``x`` itself (normalised) before any evidence.
        """
        c = self.centre(camera)
        x = np.asarray(x, np.float32)
        if c is None:
            return x
        return _unit(x - c).astype(np.float32)

    def transform_rows(self, cameras: list[str], x: np.ndarray) -> np.ndarray:
        """Like ``transform`` for (N, D) rows of different cameras (``cameras`` has N entries)."""
        x = np.asarray(x, np.float32)
        if not len(x) or not self._centres:
            return x.copy()
        codes, uniq = self._codes(cameras)
        return _unit(x - self._centre_matrix(uniq, x.shape[1])[codes]).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def export_state(self) -> dict:
        """``{"cameras": {cam: {"n": float, "sum": [D floats]}}}`` (plain data, JSON-able)."""
        return {"cameras": {c: {"n": float(self._n[c]), "sum": [float(v) for v in self._sum[c]]}
                            for c in sorted(self._sum)}}

    def import_state(self, state: dict) -> None:
        """Restore what ``export_state`` returned (replaces the current statistics)."""
        sums, ns = {}, {}
        for cam, rec in (state or {}).get("cameras", {}).items():
            s = np.asarray(rec["sum"], np.float64).reshape(-1)
            n = float(rec["n"])
            if not np.all(np.isfinite(s)) or not np.isfinite(n) or n < 0:
                raise ValueError(f"bad adaptation statistics for camera {cam!r}")
            sums[str(cam)], ns[str(cam)] = s, n
        if len({len(s) for s in sums.values()}) > 1:
            raise ValueError("adaptation statistics of different embedding sizes")
        self._sum, self._n = sums, ns
        self._pending, self._since = True, 1.0
        self.refresh()

"""Constant-velocity Kalman filter over boxes, vectorised over tracks, stepped in seconds.

State per track (8,): centre x, centre y, width, height (pixels) and their velocities
(pixels per second). Measurements (4,): centre x, centre y, width, height (``xywh``).
All functions are pure: they take and return arrays, so prediction of all tracks is
one call. Noise standard deviations scale with the box size (width for x/w, height for
y/h) so that one setting works at every distance from the camera.
"""

from __future__ import annotations

import numpy as np

from tracker.core.config import KalmanConfig

# 95 % quantile of chi-square with 4 degrees of freedom: Mahalanobis gate for (x, y, w, h).
CHI2_95_4DOF = 9.4877


def _size_scale(mean_or_z: np.ndarray) -> np.ndarray:
    """(T, >=4) -> (T, 4) per-dimension scale [w, h, w, h]."""
    wh = np.abs(mean_or_z[:, 2:4])
    return np.concatenate([wh, wh], axis=1)


def initiate(z_xywh: np.ndarray, cfg: KalmanConfig) -> tuple[np.ndarray, np.ndarray]:
    """Start tracks from measurements.

    Args:
        z_xywh: (N, 4) float, centre x, centre y, width, height in pixels.
    Returns:
        mean (N, 8) float64 with zero velocity; cov (N, 8, 8) float64 diagonal.
    """
    z = np.asarray(z_xywh, dtype=np.float64).reshape(-1, 4)
    n = len(z)
    mean = np.zeros((n, 8))
    mean[:, :4] = z
    scale = _size_scale(z)
    std = np.concatenate([2.0 * cfg.std_measurement * scale, cfg.init_velocity * scale], axis=1)
    cov = np.zeros((n, 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: float, cfg: KalmanConfig) -> tuple[np.ndarray, np.ndarray]:
    """Advance all tracks by ``dt`` seconds.

    Velocity is integrated over at most ``cfg.max_dt`` seconds (so long-lost tracks stop
    drifting) while uncertainty keeps growing with the full ``dt``.

    Args:
        mean: (T, 8) states; cov: (T, 8, 8) covariances; dt: seconds, >= 0.
    Returns:
        new (mean, cov), same shapes, float64.
    """
    if len(mean) == 0 or dt <= 0:
        return mean, cov
    step = min(dt, cfg.max_dt)
    new_mean = mean.copy()
    new_mean[:, :4] += step * mean[:, 4:]
    # F P F^T with F = [[I, step*I], [0, I]], written blockwise to avoid (T,8,8) matmuls.
    p11, p12, p21, p22 = cov[:, :4, :4], cov[:, :4, 4:], cov[:, 4:, :4], cov[:, 4:, 4:]
    new_cov = np.empty_like(cov)
    new_cov[:, :4, :4] = p11 + step * (p12 + p21) + step * step * p22
    new_cov[:, :4, 4:] = p12 + step * p22
    new_cov[:, 4:, :4] = p21 + step * p22
    new_cov[:, 4:, 4:] = p22
    scale = _size_scale(mean)
    q = np.concatenate([(cfg.std_position * scale) ** 2, (cfg.std_velocity * scale) ** 2], axis=1) * dt
    idx = np.arange(8)
    new_cov[:, idx, idx] += q
    return new_mean, new_cov


def _measurement_var(mean: np.ndarray, cfg: KalmanConfig, scores: np.ndarray | None) -> np.ndarray:
    var = (cfg.std_measurement * _size_scale(mean)) ** 2
    if scores is not None and cfg.score_scaled_noise:
        var = var * np.clip(1.0 - np.asarray(scores, np.float64), 0.05, 1.0)[:, None]
    return var


def project(mean: np.ndarray, cov: np.ndarray, cfg: KalmanConfig,
            scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Measurement-space prediction: (T, 4) mean and (T, 4, 4) innovation covariance S."""
    s = cov[:, :4, :4].copy()
    idx = np.arange(4)
    s[:, idx, idx] += _measurement_var(mean, cfg, scores)
    return mean[:, :4], s


def update(mean: np.ndarray, cov: np.ndarray, z_xywh: np.ndarray, cfg: KalmanConfig,
           scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Correct K tracks with one measurement each.

    Args:
        mean: (K, 8); cov: (K, 8, 8); z_xywh: (K, 4) measurements in pixels;
        scores: (K,) detection confidences in [0, 1] (used when ``cfg.score_scaled_noise``).
    Returns:
        corrected (mean, cov).
    """
    if len(mean) == 0:
        return mean, cov
    z_pred, s = project(mean, cov, cfg, scores)
    pht = cov[:, :, :4]  # P H^T, (K, 8, 4)
    # Kalman gain K = P H^T S^-1; S is symmetric so K^T = solve(S, (P H^T)^T).
    gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)
    innov = np.asarray(z_xywh, np.float64) - z_pred
    new_mean = mean + np.einsum("kij,kj->ki", gain, innov)
    new_cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return new_mean, new_cov


def mahalanobis_sq(mean: np.ndarray, cov: np.ndarray, z_xywh: np.ndarray, cfg: KalmanConfig) -> np.ndarray:
    """Squared Mahalanobis distance of every measurement to every track's prediction.

    Args:
        mean: (T, 8); cov: (T, 8, 8); z_xywh: (N, 4) pixels.
    Returns:
        (T, N) float64; compare with ``CHI2_95_4DOF`` for a 95 % gate.
    """
    t, n = len(mean), len(z_xywh)
    if t == 0 or n == 0:
        return np.zeros((t, n))
    z_pred, s = project(mean, cov, cfg)
    a = np.linalg.inv(s)  # (T, 4, 4), symmetric
    z = np.asarray(z_xywh, np.float64)
    # (z - m)^T A (z - m) = z^T A z - 2 z^T A m + m^T A m, as three matrix products instead of a
    # (T, N, 4) batch of tiny ones: O(T * N * 16) in BLAS.
    zz = (z[:, :, None] * z[:, None, :]).reshape(len(z), 16)
    am = np.einsum("tij,tj->ti", a, z_pred)
    d2 = a.reshape(t, 16) @ zz.T - 2.0 * (am @ z.T) + np.einsum("ti,ti->t", am, z_pred)[:, None]
    return np.maximum(d2, 0.0)

"""Kalman filter against hand-computed steps, and vectorisation/time-step properties."""

import numpy as np
import pytest

from tracker.core import kalman
from tracker.core.config import KalmanConfig

CFG = KalmanConfig(std_position=0.1, std_velocity=0.2, std_measurement=0.1, init_velocity=1.0,
                   score_scaled_noise=False, max_dt=2.0)


def test_initiate_hand_computed():
    mean, cov = kalman.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]), CFG)
    assert mean[0].tolist() == [100, 50, 20, 40, 0, 0, 0, 0]
    # std = 2 * 0.1 * [w, h, w, h] for positions, 1.0 * [w, h, w, h] for velocities
    expected = np.array([4, 8, 4, 8, 20, 40, 20, 40], float) ** 2
    assert np.allclose(np.diag(cov[0]), expected)


def test_predict_hand_computed():
    mean = np.array([[100.0, 50.0, 20.0, 40.0, 10.0, -5.0, 0.0, 1.0]])
    cov = np.eye(8)[None] * 4.0
    m, p = kalman.predict(mean, cov, 0.5, CFG)
    assert m[0].tolist() == pytest.approx([105, 47.5, 20, 40.5, 10, -5, 0, 1])
    # P' = F P F^T + Q ; F P F^T for P = 4 I: pos var 4 + 0.25 * 4 = 5, cross 0.5 * 4 = 2, vel 4
    scale = np.array([20, 40, 20, 40.0])
    q_pos = (0.1 * scale) ** 2 * 0.5
    q_vel = (0.2 * scale) ** 2 * 0.5
    assert np.allclose(np.diag(p[0])[:4], 5 + q_pos)
    assert np.allclose(np.diag(p[0])[4:], 4 + q_vel)
    assert np.allclose(p[0, 0, 4], 2.0) and np.allclose(p[0, 4, 0], 2.0)


def test_update_hand_computed_scalar_case():
    # Diagonal P, measurement of position only: gain per dim = P / (P + R).
    mean = np.array([[0.0, 0.0, 10.0, 10.0, 0, 0, 0, 0]])
    cov = np.eye(8)[None] * 3.0
    z = np.array([[2.0, -2.0, 10.0, 10.0]])
    r = (0.1 * 10.0) ** 2  # std_measurement * size
    m, p = kalman.update(mean, cov, z, CFG)
    g = 3.0 / (3.0 + r)
    assert m[0, :4] == pytest.approx([2 * g, -2 * g, 10, 10])
    assert np.diag(p[0])[:4] == pytest.approx([3 * (1 - g)] * 4)
    assert np.diag(p[0])[4:] == pytest.approx([3.0] * 4)  # uncorrelated velocities untouched


def test_predict_is_vectorised_over_tracks():
    rng = np.random.default_rng(1)
    z = rng.uniform(20, 200, (6, 4))
    mean, cov = kalman.initiate(z, CFG)
    mean[:, 4:] = rng.normal(0, 5, (6, 4))
    m_all, p_all = kalman.predict(mean, cov, 0.3, CFG)
    for i in range(6):
        m1, p1 = kalman.predict(mean[i:i + 1], cov[i:i + 1], 0.3, CFG)
        assert np.allclose(m1, m_all[i:i + 1]) and np.allclose(p1, p_all[i:i + 1])


def test_time_step_not_frame_count():
    """Two steps of 0.1 s give the same mean as one of 0.2 s (constant velocity)."""
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 10, 20]]), CFG)
    mean[0, 4:6] = [30.0, -10.0]
    m2, _ = kalman.predict(*kalman.predict(mean, cov, 0.1, CFG), 0.1, CFG)
    m1, _ = kalman.predict(mean, cov, 0.2, CFG)
    assert np.allclose(m1, m2)
    assert m1[0, 0] == pytest.approx(6.0) and m1[0, 1] == pytest.approx(-2.0)


def test_velocity_integration_capped_by_max_dt():
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 10, 20]]), CFG)
    mean[0, 4] = 10.0
    m, p = kalman.predict(mean, cov, 60.0, CFG)
    assert m[0, 0] == pytest.approx(20.0)  # 2 s of motion at most
    assert p[0, 0, 0] > cov[0, 0, 0] * 10  # but uncertainty keeps growing


def test_mahalanobis_gate():
    mean, cov = kalman.initiate(np.array([[100.0, 100.0, 20, 40]]), CFG)
    z = np.array([[100.0, 100.0, 20, 40], [101.0, 102.0, 20, 40], [300.0, 100.0, 20, 40]])
    d2 = kalman.mahalanobis_sq(mean, cov, z, CFG)
    assert d2.shape == (1, 3)
    assert d2[0, 0] == pytest.approx(0.0)
    assert d2[0, 1] < kalman.CHI2_95_4DOF < d2[0, 2]


def test_converges_on_constant_velocity():
    cfg = CFG
    mean, cov = kalman.initiate(np.array([[0.0, 0.0, 10, 20]]), cfg)
    dt = 0.1
    for k in range(1, 60):
        mean, cov = kalman.predict(mean, cov, dt, cfg)
        mean, cov = kalman.update(mean, cov, np.array([[5.0 * k * dt, 0.0, 10, 20]]), cfg)
    assert mean[0, 4] == pytest.approx(5.0, abs=0.3)

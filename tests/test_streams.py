"""Stream sources: files, image folders, paced files, webcams, the queue, URL masking, the live clock."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from streams import (
    END,
    Frame,
    FrameDirSource,
    SourceReader,
    SourceState,
    VideoFileSource,
    mask_text,
    mask_url,
    open_frames,
    open_source,
)
from streams.capture import LiveClock, ffmpeg_options
from streams.reader import _FrameQueue, _is_blank
from streams.errors import SourceError

W, H = 64, 48


def level(i: int) -> int:
    """Grey level of test frame i (1-based): tells frames 1..40 apart after JPEG compression."""
    return 20 + 5 * (i % 41)


def frame_no(image: np.ndarray) -> int:
    return round((float(image.mean()) - 20) / 5)


def make_video(path: Path, n: int, fps: float = 20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(1, n + 1):
        writer.write(np.full((H, W, 3), level(i), np.uint8))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path) -> Path:
    return make_video(tmp_path / "clip.avi", 40, fps=20.0)


def drain(reader: SourceReader, timeout: float = 10.0) -> list[Frame]:
    frames, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = reader.get(0.5)
        if item is END:
            return frames
        if item is not None:
            frames.append(item)
    raise AssertionError("no END within the timeout")


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# ------------------------------------------------------------------ files


def test_file_delivers_every_frame_in_order_then_end(video):
    with open_source("c1", str(video), queue_size=2) as reader:
        assert not reader.live
        assert reader.frame_size == (W, H)
        assert reader.nominal_fps == pytest.approx(20.0)
        assert reader.frame_count == 40
        frames = drain(reader)
        assert reader.get(0.1) is END  # END stays
        health = reader.health()
    assert [f.index for f in frames] == list(range(1, 41))
    assert [frame_no(f.image) for f in frames] == list(range(1, 41))
    assert [f.timestamp for f in frames] == pytest.approx([(i - 1) / 20.0 for i in range(1, 41)])
    assert all(f.camera_id == "c1" and f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.capture_time is not None and f.capture_time <= time.monotonic() for f in frames)
    assert health.state == SourceState.FINISHED == "finished"
    assert (health.frames_in, health.frames_dropped, health.frames_skipped) == (40, 0, 0)
    assert health.last_error is None and health.reconnects == 0


def test_file_fps_argument_sets_timestamps(video):
    reader = open_source("c1", str(video), fps=5.0)
    frames = drain(reader)
    reader.close()
    assert reader.nominal_fps == 5.0
    assert frames[1].timestamp == pytest.approx(0.2) and frames[-1].timestamp == pytest.approx(39 * 0.2)


def test_slow_consumer_blocks_reader_without_drops(video):
    reader = open_source("c1", str(video), queue_size=3)
    time.sleep(0.5)  # the reader fills the queue and waits
    h = reader.health()
    assert h.frames_in <= 3 + 1  # queued, plus the one waiting for room
    assert len(reader._queue) <= 3
    frames = []
    while (item := reader.get(2.0)) is not END:
        assert item is not None
        frames.append(item)
        time.sleep(0.005)
    reader.close()
    assert [f.index for f in frames] == list(range(1, 41))
    assert reader.health().frames_dropped == 0


def test_close_mid_stream_returns_quickly(tmp_path):
    reader = open_source("c1", str(make_video(tmp_path / "long.avi", 200)), queue_size=2)
    assert reader.get(2.0).index == 1
    t = time.monotonic()
    reader.close()
    assert time.monotonic() - t < 1.0
    assert not reader._thread.is_alive()
    assert reader.get(0.1) is END
    reader.close()  # idempotent
    assert reader.health().state == SourceState.FINISHED


def test_iteration_and_context_manager(video):
    with SourceReader("c9", str(video)) as reader:
        assert [f.index for f in reader] == list(range(1, 41))


@pytest.mark.parametrize("name, content, message", [
    ("missing.avi", None, "video file not found"),
    ("garbage.avi", b"this is not a video" * 100, "cannot open video file"),
    ("empty.mp4", b"", "cannot open video file"),
])
def test_bad_files_raise_one_clear_user_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as err:
        open_source("c1", str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_empty_folder_raises_user_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source("c1", str(tmp_path))


@pytest.mark.parametrize("kw, message", [
    ({"queue_size": 0}, "queue_size"),
    ({"transport": "quic"}, "transport must be one of tcp, udp, auto"),
    ({"fps": 0}, "fps must be > 0"),
    ({"read_timeout": 0}, "read_timeout"),
    ({"max_reconnects": -1}, "max_reconnects"),
])
def test_bad_arguments_raise_user_error(video, kw, message):
    with pytest.raises(SourceError, match=message):
        SourceReader("c1", str(video), **kw)


def test_unsupported_url_scheme_is_a_user_error_without_credentials():
    with pytest.raises(SourceError, match="scheme must be one of") as err:
        SourceReader("c1", "rtps://admin:hunter2@10.0.0.5/stream")
    assert "hunter2" not in str(err.value) and "admin" not in str(err.value)


# ------------------------------------------------------------------ image folders


def make_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((H, W, 3), level(i), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_image_folder_in_name_order_with_fps(tmp_path):
    folder = make_folder(tmp_path / "img1", 12)
    reader = open_source("c2", str(folder), fps=10.0)
    assert reader.frame_count == 12
    frames = drain(reader)
    reader.close()
    assert [f.index for f in frames] == list(range(1, 13))
    assert [frame_no(f.image) for f in frames] == list(range(1, 13))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10.0 for i in range(12)])
    assert reader.health().state == "finished"


def test_mot_sequence_folder_defaults_to_30_fps(tmp_path):
    make_folder(tmp_path / "SEQ" / "img1", 3)
    reader = open_source("c2", str(tmp_path / "SEQ"))
    frames = drain(reader)
    reader.close()
    assert reader.nominal_fps == 30.0 and frames[2].timestamp == pytest.approx(2 / 30)


def test_undecodable_image_mid_folder_fails_the_source_with_a_message(tmp_path):
    folder = make_folder(tmp_path / "img1", 4)
    (folder / "000003.png").write_bytes(b"broken")
    reader = open_source("c2", str(folder))
    frames = drain(reader)
    reader.close()
    h = reader.health()
    assert [f.index for f in frames] == [1, 2]
    assert h.state == "failed" and "cannot decode image" in h.last_error


# ------------------------------------------------------------------ paced files (simulated live camera)


def test_paced_file_runs_in_real_time_with_file_timestamps(tmp_path):
    reader = open_source("c3", str(make_video(tmp_path / "p.avi", 10, fps=20.0)), pace=True, queue_size=16)
    t = time.monotonic()
    frames = drain(reader)
    elapsed = time.monotonic() - t
    reader.close()
    assert reader.live
    assert [f.index for f in frames] == list(range(1, 11))
    assert [f.timestamp for f in frames] == pytest.approx([i / 20.0 for i in range(10)])
    assert elapsed >= 0.9 * 9 / 20.0


def test_paced_file_newest_wins_and_drops_are_counted(tmp_path):
    n, q = 30, 2
    reader = open_source("c3", str(make_video(tmp_path / "p.avi", n, fps=60.0)), pace=True, queue_size=q)
    assert wait_for(lambda: reader.health().state == "finished", 5.0)  # the consumer never came
    frames = drain(reader)
    reader.close()
    h = reader.health()
    assert [f.index for f in frames] == [n - 1, n]  # the newest ones survive
    assert [frame_no(f.image) for f in frames] == [n - 1, n]
    assert h.frames_in == n and h.frames_dropped == n - q


def test_paced_file_get_latest_drops_older_frames(tmp_path):
    reader = open_source("c3", str(make_video(tmp_path / "p.avi", 20, fps=50.0)), pace=True, queue_size=8)
    time.sleep(0.2)
    latest = reader.get_latest(1.0)
    queued_before = reader.health().frames_in
    reader.close()
    assert latest.index >= 5  # about 0.2 s * 50 fps, older ones were dropped
    assert reader.health().frames_dropped >= latest.index - 1 - (queued_before - latest.index)


def test_paced_file_close_returns_quickly(tmp_path):
    reader = open_source("c3", str(make_video(tmp_path / "p.avi", 50, fps=2.0)), pace=True)
    assert reader.get(2.0).index == 1
    t = time.monotonic()
    reader.close()
    assert time.monotonic() - t < 0.5 and not reader._thread.is_alive()


# ------------------------------------------------------------------ webcams


def test_missing_webcam_reports_through_health_and_retries():
    reader = open_source("web", "97", reconnect_max_backoff=0.2)  # no /dev/video97 here
    assert reader.live
    assert wait_for(lambda: reader.health().connect_failures >= 2, 5.0)
    h = reader.health()
    assert h.state == "reconnecting" and h.reconnects >= 1 and h.frames_in == 0
    assert "cannot open camera 97" in h.last_error
    assert reader.get(0.05) is None  # nothing yet, not a crash
    t = time.monotonic()
    reader.close()
    assert time.monotonic() - t < 1.0


def test_missing_webcam_gives_up_after_max_reconnects():
    reader = open_source("web", "97", max_reconnects=1, reconnect_max_backoff=0.1)
    assert reader.get(5.0) is END
    h = reader.health()
    reader.close()
    assert h.state == "failed" and h.connect_failures == 2 and h.reconnects == 1


# ------------------------------------------------------------------ the existing synchronous sources


def test_existing_file_sources_still_work(video, tmp_path):
    with VideoFileSource(video, "v") as src:
        assert len(src) == 40 and [f.index for f in src][-1] == 40
    folder = make_folder(tmp_path / "img1", 3)
    with FrameDirSource(folder, "d", fps=3.0) as src:
        assert [f.timestamp for f in src] == pytest.approx([0, 1 / 3, 2 / 3])
    assert isinstance(open_frames(video=str(video)), VideoFileSource)


# ------------------------------------------------------------------ masking


@pytest.mark.parametrize("url, masked", [
    ("rtsp://user:pass@host/stream", "rtsp://***@host/stream"),
    ("rtsp://admin:s3cr3t@192.168.1.10:554/Streaming/Channels/101", "rtsp://***@192.168.1.10:554/Streaming/Channels/101"),
    ("rtsp://onlyuser@host:8554/x", "rtsp://***@host:8554/x"),
    ("rtsp://user:p%40ss@host/x", "rtsp://***@host/x"),
    ("rtsp://user:p@ss@host/x", "rtsp://***@host/x"),
    ("rtsp://user:pa/ss@host/x", "rtsp://***@host/x"),
    ("rtsp://user:pa?ss#1@host/x", "rtsp://***@host/x"),
    ("RTSP://User:Pw@Host/x", "RTSP://***@Host/x"),
    ("rtsp://host/stream", "rtsp://host/stream"),
    ("http://cam.local/video.mjpg?user=admin&pwd=123&res=hd", "http://cam.local/video.mjpg?user=***&pwd=***&res=hd"),
    ("https://u:p@cam/api?token=abc#frag", "https://***@cam/api?token=***#frag"),
    ("http://cam/cgi?Password=x&channel=1", "http://cam/cgi?Password=***&channel=1"),
    ("/data/videos/cam1.mp4", "/data/videos/cam1.mp4"),
    ("0", "0"),
    ("", ""),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_text_hides_urls_and_bare_secrets():
    url = "rtsp://admin:hunter2@10.0.0.5/live"
    text = "error opening rtsp://admin:hunter2@10.0.0.5/live: 401 for user admin password 'hunter2'"
    out = mask_text(text, url)
    assert "hunter2" not in out and "admin" not in out
    assert "rtsp://***@10.0.0.5/live" in out


def test_source_and_health_are_masked():
    reader = SourceReader("c1", "rtsp://admin:hunter2@127.0.0.1:9/live")
    assert reader.source == "rtsp://***@127.0.0.1:9/live"
    assert "hunter2" not in repr(reader.health())


# ------------------------------------------------------------------ queue, blank frames, live clock, options


def _f(i: int) -> Frame:
    return Frame("c", i, float(i), np.zeros((1, 1, 3), np.uint8))


def test_frame_queue_newest_wins_counts_drops_and_ends():
    import threading

    q, stop = _FrameQueue(2, newest_wins=True), threading.Event()
    for i in range(1, 6):
        assert q.put(_f(i), stop)
    assert q.dropped == 3 and len(q) == 2
    q.finish()
    assert [q.get(0).index, q.get(0).index] == [4, 5]
    assert q.get(0) is END and q.get(None) is END


def test_frame_queue_blocking_put_stops_on_close():
    import threading

    q, stop = _FrameQueue(1, newest_wins=False), threading.Event()
    assert q.put(_f(1), stop)
    assert q.get(0.01).index == 1 and q.get(0.01) is None
    q.put(_f(2), stop)
    t = threading.Thread(target=lambda: q.put(_f(3), stop))
    t.start()
    time.sleep(0.1)
    assert t.is_alive()  # blocked: the queue is full
    q.close()
    t.join(1.0)
    assert not t.is_alive() and q.get(0) is END


@pytest.mark.parametrize("image, blank", [
    (np.zeros((48, 64, 3), np.uint8), True),
    (np.full((48, 64, 3), 128, np.uint8), True),
    (np.tile(np.array([0, 135, 0], np.uint8), (48, 64, 1)), True),  # decoder green
    (np.random.default_rng(0).integers(0, 20, (48, 64, 3), dtype=np.uint8), False),  # a dark but real scene
])
def test_blank_frames(image, blank):
    assert _is_blank(image) is blank


def test_live_clock_keeps_pts_spacing_and_ignores_jitter():
    clock = LiveClock(origin=100.0)
    # pts every 0.1 s; arrivals jitter by up to 40 ms
    arrivals = [101.00, 101.14, 101.21, 101.30, 101.44, 101.50]
    ts = [clock(0.1 * i, a) for i, a in enumerate(arrivals)]
    assert np.diff(ts) == pytest.approx([0.1] * 5)
    assert ts[0] == pytest.approx(1.0)


def test_live_clock_repeated_pts_and_missing_pts():
    clock = LiveClock(origin=0.0)
    assert clock(5.0, 1.0) == pytest.approx(1.0)
    assert clock(5.1, 1.1) == pytest.approx(1.1)
    assert clock(5.1, 1.2) is None  # the same picture again
    clock.new_session()
    # OpenCV reports 0 when the stream has no pts: arrival times
    assert [clock(0.0, a) for a in (3.0, 3.5, 4.25)] == pytest.approx([3.0, 3.5, 4.25])


def test_live_clock_made_up_pts_fall_back_to_arrival():
    clock = LiveClock(origin=0.0)
    # the demuxer counts 25 fps, the camera sends 10 fps
    ts = [clock(0.04 * i, 0.1 * i) for i in range(80)]
    assert np.all(np.diff(ts) > 0)
    assert not clock.using_pts
    assert ts[-1] == pytest.approx(7.9)


def test_live_clock_is_monotonic_across_sessions_and_pts_resets():
    clock = LiveClock(origin=0.0)
    a = [clock(10.0 + 0.1 * i, 1.0 + 0.1 * i) for i in range(5)]
    clock.new_session()  # reconnected: the stream's pts start over
    b = [clock(0.1 * i, 4.0 + 0.1 * i) for i in range(5)]
    assert np.all(np.diff(a + b) > 0) and b[0] == pytest.approx(4.0)


def test_ffmpeg_options_gate_serialises_only_conflicting_opens(monkeypatch):
    import threading

    from streams.capture import FFMPEG_OPTIONS_ENV, _FfmpegOptionsGate

    monkeypatch.setenv(FFMPEG_OPTIONS_ENV, "probesize;32768|rtsp_transport;udp")
    gate, seen = _FfmpegOptionsGate(), []
    with gate.options({"rtsp_transport": "tcp"}):
        assert os.environ[FFMPEG_OPTIONS_ENV] == "probesize;32768|rtsp_transport;tcp"  # the user's options kept
        with gate.options({"rtsp_transport": "tcp"}):  # same options: no waiting
            pass

        def other():
            with gate.options({"rtsp_transport": "udp"}):
                seen.append(os.environ[FFMPEG_OPTIONS_ENV])

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.1)
        assert not seen  # waits for the tcp open to finish
    t.join(2.0)
    assert seen == ["probesize;32768|rtsp_transport;udp"]
    assert os.environ[FFMPEG_OPTIONS_ENV] == "probesize;32768|rtsp_transport;udp"  # restored


def test_ffmpeg_transport_options():
    probe = {"analyzeduration": "500000"}  # short stream probing: reconnects deliver frames ~1 s sooner
    assert ffmpeg_options("rtsp", "tcp") == {"rtsp_transport": "tcp", **probe}
    assert ffmpeg_options("rtsp", "udp") == {"rtsp_transport": "udp", **probe}
    assert ffmpeg_options("rtsp", "auto") == {"rtsp_flags": "prefer_tcp", **probe}
    assert ffmpeg_options("http", "tcp") == {}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_logs_of_a_failing_source_carry_no_credentials(caplog):
    caplog.set_level(logging.DEBUG, logger="streams")
    url = f"rtsp://admin:hunter2@127.0.0.1:{closed_port()}/live"
    reader = open_source("c1", url, max_reconnects=0, open_timeout=2)
    assert reader.get(5.0) is END
    reader.close()
    assert caplog.records and "hunter2" not in caplog.text and "admin" not in caplog.text
    assert "hunter2" not in reader.health().last_error

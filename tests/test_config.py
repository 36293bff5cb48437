import dataclasses

import pytest

from tracker.commands.config import describe
from tracker.config import TrackConfig
from tracker.core.config import KalmanConfig, TrackerConfig, from_dict, validate
from tracker.errors import UserError
from tracker.io.config_file import load_yaml

BAD = [
    ({"tracker": {"bogus": 1}}, "unknown config key(s) 'bogus' in section 'tracker'"),
    ({"trackr": {}}, "unknown config key(s) 'trackr' in the top level"),
    ({"tracker": {"n_init": 0}}, "'tracker.n_init': 0 is out of range"),
    ({"tracker": {"n_init": 2.5}}, "'tracker.n_init': expected an integer"),
    ({"tracker": {"high_score": 1.5}}, "'tracker.high_score': 1.5 is out of range (allowed: 0.0 to 1.0)"),
    ({"tracker": {"high_score": "high"}}, "'tracker.high_score': expected a number"),
    ({"tracker": {"memory": "lstm"}}, "'tracker.memory': 'lstm' is not allowed (allowed: ema, gallery)"),
    ({"tracker": {"kalman": {"std_velocity": -1}}}, "'tracker.kalman.std_velocity': -1.0 is out of range"),
    ({"tracker": {"kalman": {"score_scaled_noise": "yes"}}}, "expected true or false"),
    ({"tracker": {"kalman": {"q": 1}}}, "in section 'tracker.kalman'"),
    ({"tracker": {"low_score": 0.6, "high_score": 0.5}}, "low_score' (0.6) must not exceed high_score"),
    ({"tracker": [1, 2]}, "expected a mapping"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_bad_values_are_rejected_with_the_key(data, message):
    with pytest.raises(UserError) as exc:
        from_dict(TrackConfig, data)
    assert message in str(exc.value)


def test_valid_and_frozen():
    cfg = from_dict(TrackConfig, {"tracker": {"n_init": 2, "kalman": {"std_position": 0.1}}})
    assert cfg.tracker.n_init == 2 and cfg.tracker.kalman.std_position == 0.1
    assert cfg.tracker.max_age == TrackerConfig().max_age  # defaults only in the dataclass
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tracker.n_init = 3  # type: ignore[misc]


def test_config_built_in_code_is_validated():
    with pytest.raises(UserError):
        validate(TrackerConfig(max_age=-1.0), "tracker")


def test_every_option_is_documented():
    for cls in (TrackerConfig, KalmanConfig):
        for f in dataclasses.fields(cls):
            assert len(f.metadata.get("doc", "")) > 20, f"{cls.__name__}.{f.name} lacks a doc"
    lines = describe(TrackerConfig, "tracker.")
    assert any("tracker.kalman.std_velocity" in line for line in lines)
    from tracker.config import CameraConfig, DetectorConfig, OutputConfig, PipelineConfig, ReIDConfig

    for cls in (CameraConfig, DetectorConfig, ReIDConfig, OutputConfig, PipelineConfig):
        for f in dataclasses.fields(cls):
            assert len(f.metadata.get("doc", "")) > 20, f"{cls.__name__}.{f.name} lacks a doc"


def test_yaml_files(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("tracker:\n  max_age: 3.5\n")
    assert load_yaml(good).tracker.max_age == 3.5
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  max_age: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(UserError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("tracker:\n  maxage: 3\n")
    with pytest.raises(UserError, match=r"unknown.yaml: unknown config key\(s\) 'maxage'"):
        load_yaml(unknown)


def test_shipped_configs_load(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("MCTRACK_DATA_DIR", "/data")  # the configs refer to data through it

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert configs
    from tracker.config import RunConfig, check_run_config

    for path in configs:
        if "cameras:" in path.read_text():
            check_run_config(load_yaml(path, RunConfig))
        else:
            load_yaml(path)


def test_readme_documents_every_option():
    from pathlib import Path

    from tracker.config import RunConfig

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for line in describe(RunConfig):
        key = line.split("`")[1]
        assert f"`{key}`" in readme, f"{key} missing from README's option table"


RUN_BAD = [
    ({"cameras": []}, "at least one camera"),
    ({"cameras": [{"id": "a", "source": "x"}, {"id": "a", "source": "y"}]}, "camera id 'a' is used twice"),
    ({"cameras": [{"source": "x"}]}, "'cameras[0].id' is required"),
    ({"cameras": [{"id": "a", "source": "x", "fsp": 3}]}, "unknown config key(s) 'fsp' in section 'cameras[0]'"),
    ({"cameras": [{"id": "a b", "source": "x"}]}, "may contain only letters"),
    ({"cameras": [{"id": "a", "source": "x"}], "detector": {"providers": ["gpu"]}}, "'gpu' is not allowed"),
    ({"cameras": [{"id": "a", "source": "x"}], "outputs": {}}, "unknown config key(s) 'outputs'"),
]


@pytest.mark.parametrize("data,message", RUN_BAD)
def test_run_config_errors(data, message):
    from tracker.config import RunConfig, check_run_config

    with pytest.raises(UserError) as exc:
        check_run_config(from_dict(RunConfig, data))
    assert message in str(exc.value)


def test_overrides_and_env(tmp_path, monkeypatch):
    from tracker.config import RunConfig

    monkeypatch.setenv("MY_DATA", "/data")
    path = tmp_path / "run.yaml"
    path.write_text("cameras:\n  - {id: c1, source: \"${MY_DATA}/a.mp4\"}\n  - {id: c2, source: 0}\n")
    cfg = load_yaml(path, RunConfig, ["cameras[0].fps=12.5", "output.dir=runs/x", "tracker.kalman.max_dt=3"])
    assert cfg.cameras[0].source == "/data/a.mp4" and cfg.cameras[0].fps == 12.5
    assert cfg.cameras[1].source == "0"  # webcam index given as a number
    assert cfg.output.dir == "runs/x" and cfg.tracker.kalman.max_dt == 3.0
    with pytest.raises(UserError, match="no item 5"):
        load_yaml(path, RunConfig, ["cameras[5].fps=1"])
    with pytest.raises(UserError, match="unknown config key"):
        load_yaml(path, RunConfig, ["output.bogus=1"])

import random
import warnings

import numpy as np
import pytest
import torch

from helpers import config


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)])
def test_fast_mode_reads_the_variable(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_FAST", value)
    assert config.fast_mode() is expected
    assert config.pick(fast="small", full="big") == ("small" if expected else "big")


def test_an_unclear_flag_is_an_error_that_names_it(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST='maybe'"):
        config.fast_mode()


def test_paths_default_under_the_course_and_follow_the_variables(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_ROOT", raising=False)
    monkeypatch.delenv("COURSE_CHECKPOINT_ROOT", raising=False)
    assert config.data_root() == config.course_root() / "data"
    assert config.checkpoint_root() == config.course_root() / "data" / "checkpoints"
    assert (config.samples_root() / "SHA256SUMS").is_file()
    monkeypatch.setenv("COURSE_DATA_ROOT", str(tmp_path / "d"))
    assert config.data_root() == tmp_path / "d"
    assert config.checkpoint_root() == tmp_path / "d" / "checkpoints"
    monkeypatch.setenv("COURSE_CHECKPOINT_ROOT", str(tmp_path / "c"))
    assert config.checkpoint_root() == tmp_path / "c"


def test_course_root_is_found_from_the_working_folder(monkeypatch, tmp_path):
    (tmp_path / "data" / "samples").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "helpers" / "config.py"))
    monkeypatch.chdir(tmp_path / "notebooks")
    assert config.course_root() == tmp_path
    monkeypatch.chdir("/")
    with pytest.raises(FileNotFoundError, match="COURSE_ROOT"):
        config.course_root()


def test_seed_everything_repeats_every_generator():
    def draw():
        gen = config.seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=gen)

    first, second = draw(), draw()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])
    config.seed_everything(124)
    assert random.random() != first[0]


def test_choose_device_prefers_cuda_then_mps_then_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.choose_device() == torch.device("cpu")
    assert "CPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.choose_device() == torch.device("mps")
    assert "MPS" in capsys.readouterr().out


def test_report_prints_versions_mode_and_data_root(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FAST", "1")
    info = config.report()
    out = capsys.readouterr().out
    assert info["mode"] == "fast" and "Mode: fast" in out
    assert torch.__version__ in out and info["data_root"] in out


def test_strict_warnings_fail_course_code_only():
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        config.strict_warnings()
        with pytest.raises(DeprecationWarning):
            warnings.warn_explicit("old API", DeprecationWarning, "lesson.py", 1, module="__main__")
        with pytest.raises(FutureWarning):
            warnings.warn_explicit("old API", FutureWarning, "data.py", 1, module="helpers.data")
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn_explicit("their API", DeprecationWarning, "x.py", 1, module="some_library")
        assert len(caught) == 1  # recorded, not raised


def test_why_not_writable_names_the_path_and_the_reason(tmp_path, monkeypatch):
    assert config.why_not_writable(tmp_path / "not" / "there" / "yet") is None
    assert list(tmp_path.iterdir()) == [], "the check leaves nothing behind"
    (tmp_path / "a-file").write_bytes(b"")
    assert config.why_not_writable(tmp_path / "a-file" / "sub") == f"{tmp_path / 'a-file'} is a file, not a folder (it is on the way to {tmp_path / 'a-file' / 'sub'})"
    monkeypatch.setattr(config.os, "access", lambda path, mode: False)  # what a read-only folder answers (root ignores chmod)
    assert config.why_not_writable(tmp_path) == f"{tmp_path} is read-only for this user"

"""Resume trusts nothing it has not re-read (issue 14, points 1-4), on the simulated rig.

1. unreadable records are quarantined and re-captured; ``verify()`` reports empty/truncated files;
2. a resume with any reading-relevant setting changed is refused, naming each field and both values;
3. a torn last line of events.jsonl no longer swallows the next event;
4. SIGTERM gets the Ctrl-C shutdown (DMD stopped and closed, ``session_stopped``) and exit code 143.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

import lsi.cli.capture as cli
from hardware.capture import CaptureSession
from hardware.rig import load_display_profile, rig_to_dict
from hardware.store import CaptureStore, ManifestMismatchError, read_events
from tests.fixtures.capture_rig import GRID, make_data, small_rig, write_rig

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path)



def run_cli(tmp_path: Path, data: dict, *extra: str, rig=None, count: int = 4) -> int:
    rig_path = write_rig(tmp_path, rig or small_rig())
    return cli.main(["--masks", str(data["masks_path"]), "--images", str(data["images"]), "--rig", str(rig_path),
                     "--display", "sim", "--out", str(tmp_path / "out"), "--simulate", "--resolution", str(GRID),
                     "--count", str(count), "--no-progress", *extra])


def test_unreadable_records_are_quarantined_and_recaptured(tmp_path, data):
    assert run_cli(tmp_path, data) == 0
    out = tmp_path / "out"
    store = CaptureStore.open(out)
    good_show = store.read(0).timestamps["show"]
    rec1, rec2 = store.record_path(1), store.record_path(2)
    rec1.write_bytes(rec1.read_bytes()[: rec1.stat().st_size // 2])  # truncated by a crash / full disk
    rec2.write_bytes(b"")  # emptied
    problems = CaptureStore.open(out).verify()  # used to raise EOFError on the empty file
    assert len(problems) == 2 and "0 bytes" in problems[1] and "unreadable" in problems[0]
    assert run_cli(tmp_path, data, "--resume") == 0  # used to count both as done
    store = CaptureStore.open(out)
    assert store.verify() == [] and store.scene_ids() == [0, 1, 2, 3]
    assert store.read(0).timestamps["show"] == good_show  # readable records are kept as they were
    assert store.read(1).timestamps["show"] > good_show and store.read(2).timestamps["show"] > good_show
    quarantined = sorted(p.name for p in (out / "quarantine").iterdir())
    assert len(quarantined) == 2 and quarantined[0].startswith("scene-0000001-")
    events, torn = read_events(out / "events.jsonl")
    moved = [e for e in events if e["event"] == "record_quarantined"]
    assert [e["scene_id"] for e in moved] == [1, 2] and all(e["moved_to"].startswith("quarantine/") for e in moved)
    assert store.manifest.stats["quarantined"] == 2 and torn == 0


@pytest.mark.parametrize("change,fields", [
    (["--gain-db", "50"], ["detector_gain_db: stored 40, now 50", "rig.detector.gain_db: stored 40, now 50"]),
    (["--calib-every", "2"], ["calibration.every: stored 1, now 2", "rig.calibration.every"]),
    ("display", ["display_profile.gamma: stored 2.2, now 1.8"]),
    ("timing", ["rig.dmd.exposure_us: stored 347, now 100", "timing.exposure_us"]),
    ("sampling", ["rig.detector.sampling.point: stored 'end', now 'integrate'"]),
])
def test_resume_with_other_settings_is_refused_naming_each_field(tmp_path, data, capsys, change, fields):
    """A resume with another gain, display profile, calibration schedule or rig timing used to be accepted
    silently, the manifest keeping the first capture's values."""
    assert run_cli(tmp_path, data, count=2) == 0
    capsys.readouterr()
    rig, extra, display = small_rig(), [], "sim"
    if change == "display":
        display = str(tmp_path / "sim18.yaml")
        Path(display).write_text(yaml.safe_dump({**rig_to_dict(load_display_profile("sim")), "gamma": 1.8,
                                                 "name": "sim"}))
    elif change == "timing":
        rig.dmd.exposure_us = 100
    elif change == "sampling":
        rig.detector.sampling.point = "integrate"
        rig.detector.nidaqmx.oversample, rig.detector.nidaqmx.settle_samples = 4, 2
    else:
        extra = change
    rig_path = write_rig(tmp_path, rig)
    assert cli.main(["--masks", str(data["masks_path"]), "--images", str(data["images"]), "--rig", str(rig_path),
                     "--display", display, "--out", str(tmp_path / "out"), "--simulate", "--resolution", str(GRID),
                     "--count", "2", "--no-progress", "--resume", *extra]) == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err
    for f in fields:
        assert f in err, err
    assert CaptureStore.open(tmp_path / "out").manifest.detector_gain_db == 40


def test_simulated_flag_and_same_settings(tmp_path, data):
    assert run_cli(tmp_path, data, count=2) == 0
    store = CaptureStore.open(tmp_path / "out")
    real = dataclasses.replace(store.manifest, simulated=False, units="V")
    with pytest.raises(ManifestMismatchError, match=r"simulated: stored True, now False.*units: stored 'normalised'"):
        CaptureStore.open_for_writing(tmp_path / "out", real, resume=True)
    # provenance, operational settings, thresholds and link speed are not part of the identity
    rig = copy.deepcopy(store.manifest.rig)
    rig["calibration"]["alignment"]["max_late_frames"] = 2
    rig["detector"]["serial"]["baudrate"] = 921600
    rig["detector"]["sampling"]["warn_residual"] = 1e-3
    same = dataclasses.replace(store.manifest, devices={"dmd": {"backend": "other"}}, software_version="9.9",
                               calibration={**store.manifest.calibration, "on_error": "retry", "max_retries": 7},
                               rig=rig)
    CaptureStore.open_for_writing(tmp_path / "out", same, resume=True).close()
    rig["calibration"]["alignment"]["markers"] = False  # the markers change the sequence: identity
    with pytest.raises(ManifestMismatchError, match="rig.calibration.alignment.markers: stored True, now False"):
        CaptureStore.open_for_writing(tmp_path / "out", dataclasses.replace(store.manifest, rig=rig), resume=True)


def test_torn_event_line_does_not_swallow_the_next_event(tmp_path, data):
    assert run_cli(tmp_path, data, count=1) == 0
    path = tmp_path / "out" / "events.jsonl"
    n_before = len(read_events(path)[0])
    with open(path, "ab") as fh:
        fh.write(b'{"t": 1.0, "event": "session_st')  # crash in the middle of a write
    with CaptureStore.open_for_writing(tmp_path / "out", CaptureStore.open(tmp_path / "out").manifest,
                                       resume=True) as store:
        store.log_event("after_crash", value=1)
    events, torn = read_events(path)
    assert torn == 1 and len(events) == n_before + 2  # resume + after_crash
    assert events[-1]["event"] == "after_crash" and events[-1]["value"] == 1
    lines = path.read_bytes().split(b"\n")
    assert lines[-4].endswith(b"session_st") and json.loads(lines[-3])["event"] == "resume"


def test_sigterm_shuts_down_like_ctrl_c(tmp_path, data, monkeypatch, capsys):
    """SIGTERM (systemd, kill, a job scheduler) used to kill the capture without the clean shutdown."""
    calls = []
    real_capture_one = CaptureSession._capture_one

    def capture_one(self, scene, index, last, summary):
        if index == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread: raises there
        return real_capture_one(self, scene, index, last, summary)

    import hardware.sim as sim

    real_stop, real_close = sim.SimDMD.stop, sim.SimDMD.close
    monkeypatch.setattr(CaptureSession, "_capture_one", capture_one)
    monkeypatch.setattr(sim.SimDMD, "stop", lambda self: (calls.append("stop"), real_stop(self))[1])
    monkeypatch.setattr(sim.SimDMD, "close", lambda self: (calls.append("close"), real_close(self))[1])
    before = signal.getsignal(signal.SIGTERM)
    assert run_cli(tmp_path, data, count=6) == 143
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    assert "terminated by SIGTERM" in capsys.readouterr().err
    assert calls[:2] == ["stop", "close"]  # the session stopped the DMD, the CLI closed it (video mode on a real rig)
    events, _ = read_events(tmp_path / "out" / "events.jsonl")
    assert events[-1]["event"] == "session_stopped" and events[-1]["error"] == "Terminated: SIGTERM"
    assert CaptureStore.open(tmp_path / "out").scene_ids() == [0, 1]
    monkeypatch.setattr(CaptureSession, "_capture_one", real_capture_one)
    assert run_cli(tmp_path, data, "--resume", count=6) == 0
    assert CaptureStore.open(tmp_path / "out").scene_ids() == list(range(6))
    assert np.isfinite(CaptureStore.open(tmp_path / "out").read(5).readings).all()

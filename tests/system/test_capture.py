"""Capture loop, store and CLI on the simulated and mock rigs: fault injection, SIGKILL + resume, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hardware.calibration import NaNReadingError, SaturationError
from hardware.capture import CaptureAborted, CaptureSession, ImageFolderScenes
from hardware.mock import FaultInjector, InjectedFault, MockDetector, MockDMD, MockSceneDisplay
from hardware.protocols import DetectorTimeoutError, HardwareError
from hardware.rig import AlignmentConfig, load_display_profile, load_rig, rig_to_dict
from hardware.sim import build_sim_rig
from hardware.store import (
    CaptureRecord,
    CaptureStore,
    DuplicateRecordError,
    MaskMismatchError,
    StoreError,
    StoreLockedError,
)
from lsi.cli.capture import main
from lsi.physics.mask_files import save_masks
from tests.fixtures.capture_rig import GRID, D, ideal, make_data, manifest_for, small_rig, write_rig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path)


def sim_session(rig, data, store, wrap=None):
    sim = build_sim_rig(rig, load_display_profile("sim"), load_display_profile("dmd_hdmi"))
    dmd, det, disp = sim.dmd, sim.detector, sim.scene_display
    if wrap is not None:
        dmd, det, disp = wrap(dmd, det, disp)
    return CaptureSession(rig, data["masks"], data["order"], dmd, det, disp, store, sleep=lambda s: None)


def check_complete(out: Path, n_scenes: int) -> CaptureStore:
    store = CaptureStore.open(out)
    assert store.scene_ids() == list(range(n_scenes))
    assert store.verify() == []
    names = sorted(p.name for p in (out / "records").iterdir())
    assert names == [f"scene-{i:07d}.npz" for i in range(n_scenes)]  # no duplicates, no leftovers
    for rec in store.records():
        assert np.isfinite(rec.readings).all() and rec.readings.shape == (D,)
    return store


def test_session_readings_match_the_encoder(tmp_path, data):
    rig = small_rig()
    scenes = ImageFolderScenes(data["images"], resolution=GRID)
    with CaptureStore.open_for_writing(tmp_path / "out", manifest_for(data["masks"], data["order"], rig, scenes),
                                       resume=False) as store:
        summary = sim_session(rig, data, store).run(scenes, progress=False)
    assert summary.written == list(range(8)) and summary.skipped == 0
    store = check_complete(tmp_path / "out", 8)
    rec = store.read(3)
    assert rec.source == {"path": "face03.png"} and [r.role for r in rec.references] == ["before", "after"]
    ref = rec.references[0]
    assert ref.white == pytest.approx(1.01, abs=5e-3)
    assert ref.dark == pytest.approx(0.01 + rig.sim.leak, abs=2e-4)  # offset + off-mirror leak
    img = scenes[3].load()
    y = (rec.readings - ref.dark) / (ref.white - ref.dark)  # mask-index order despite the display order
    np.testing.assert_allclose(y, ideal(data["masks"], img), atol=0.01)
    assert rec.timestamps["acquire_start"] <= rec.timestamps["acquire_end"]
    assert [e["event"] for e in map(json.loads, (tmp_path / "out" / "events.jsonl").read_text().splitlines())] == \
        ["session_start", "session_end"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_faults_then_resume(tmp_path, data, seed):
    rig = small_rig(every=3, position="both")
    scenes = ImageFolderScenes(data["images"], resolution=GRID)
    man = manifest_for(data["masks"], data["order"], rig, scenes)
    out = tmp_path / "out"

    attempts = 0

    kinds = [lambda m: InjectedFault(f"USB error in {m}"), lambda m: KeyboardInterrupt(),
             lambda m: DetectorTimeoutError(f"DAQ timeout in {m}")]

    def faulty(dmd, det, disp):  # a new, seed-determined fault pattern on every attempt
        s = 1000 * seed + 10 * attempts
        pick = np.random.default_rng(s)
        exc = lambda m: kinds[int(pick.integers(3))](m)  # noqa: E731
        return (FaultInjector(dmd, ("present", "start"), 0.08, s, exc),
                FaultInjector(det, ("arm", "read"), 0.08, s + 1, exc),
                FaultInjector(disp, ("show",), 0.08, s + 2, exc))

    while True:
        attempts += 1
        assert attempts < 60, "capture never completed"
        with CaptureStore.open_for_writing(out, man, resume=attempts > 1) as store:
            if attempts % 4 == 0:  # also a crash inside the atomic write, after the temp file exists
                real = store._atomic_write

                def crash(path, blob, exclusive=False, _real=real):
                    tmp = path.parent / f".tmp-{path.name}-crash"
                    tmp.write_bytes(blob[: len(blob) // 2])
                    raise InjectedFault("crash while writing")

                store._atomic_write = crash
            try:
                sim_session(rig, data, store, faulty).run(scenes, progress=False)
                if attempts % 4 != 0:
                    break
            except (HardwareError, KeyboardInterrupt, CaptureAborted):  # USB error, Ctrl-C, DAQ timeout
                continue
    assert attempts > 1  # faults did happen
    check_complete(out, len(scenes))
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert "session_stopped" in events and events[-1] == "session_end"
    stops = [json.loads(line).get("error", "") for line in (out / "events.jsonl").read_text().splitlines()]
    assert any("KeyboardInterrupt" in e for e in stops) or any("CaptureAborted" in e for e in stops)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path, data):
    rig = small_rig(every=1, position="before")
    rig_path = write_rig(tmp_path, rig)
    slow = tmp_path / "slow.yaml"  # the killed run waits 0.15 s per display change, so it is killed mid-run
    slow.write_text(yaml.safe_dump({**rig_to_dict(load_display_profile("sim")), "settle_s": 0.15, "name": "slow"}))
    out = tmp_path / "out"
    args = ["--masks", str(data["masks_path"]), "--images", str(data["images"]), "--rig", str(rig_path),
            "--display", str(slow), "--out", str(out), "--simulate", "--resolution", str(GRID), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "lsi.cli.capture", *args, "--sim-realtime"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(out.glob("records/scene-*.npz"))) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    done = CaptureStore.open(out).scene_ids()
    assert 2 <= len(done) < 8
    (out / "records" / ".tmp-scene-0000007.npz-123-deadbeef").write_bytes(b"PK\x03\x04 half")  # torn write
    assert main(args) == 1  # without --resume the existing capture is refused
    assert main(args + ["--resume"]) == 0
    store = check_complete(out, 8)
    for sid in done:  # records from before the kill are untouched
        assert store.read(sid).timestamps["show"] < store.read(max(done) + 1).timestamps["show"]


def test_refusals_by_the_cli(tmp_path, data, capsys):
    rig = small_rig()
    rig_path = write_rig(tmp_path, rig)
    base = ["--images", str(data["images"]), "--rig", str(rig_path), "--display", "sim", "--simulate",
            "--resolution", str(GRID), "--no-progress"]
    # masks of the wrong size for the rig's ROI
    save_masks(tmp_path / "big.npy", np.zeros((4, 64, 64), np.uint8), ratio=1024, bits=1)
    assert main(["--masks", str(tmp_path / "big.npy"), "--out", str(tmp_path / "o1"), *base]) == 1
    assert "32x32" in capsys.readouterr().err
    # multi-bit masks
    save_masks(tmp_path / "gray.npy", np.full((4, GRID, GRID), 3, np.uint8), ratio=256, bits=2)
    assert main(["--masks", str(tmp_path / "gray.npy"), "--out", str(tmp_path / "o2"), *base]) == 1
    assert "1-bit" in capsys.readouterr().err
    # wrong count for a rig that pins it
    rig.dmd.expected_masks = 16
    pinned = write_rig(tmp_path / "", rig)
    args = ["--masks", str(data["masks_path"]), "--out", str(tmp_path / "o3"), *base]
    args[args.index(str(rig_path))] = str(pinned)
    assert main(args) == 1 and "expects 16" in capsys.readouterr().err
    # a capture with other masks in the output directory
    rig.dmd.expected_masks = None
    write_rig(tmp_path, rig)
    out = tmp_path / "o4"
    assert main(["--masks", str(data["masks_path"]), "--out", str(out), "--count", "2", *base]) == 0
    save_masks(tmp_path / "other.npy", 1 - data["masks"], ratio=GRID * GRID // D, bits=1)
    assert main(["--masks", str(tmp_path / "other.npy"), "--out", str(out), "--count", "2", "--resume", *base]) == 1
    assert "different masks" in capsys.readouterr().err
    # a different scene set cannot be resumed into the same directory
    assert main(["--masks", str(data["masks_path"]), "--out", str(out), "--count", "3", "--resume", *base]) == 1
    assert "scene set" in capsys.readouterr().err
    # a foreign non-empty directory
    (tmp_path / "o5").mkdir()
    (tmp_path / "o5" / "notes.txt").write_text("x")
    assert main(["--masks", str(data["masks_path"]), "--out", str(tmp_path / "o5"), *base]) == 1
    assert "not empty" in capsys.readouterr().err


def mock_session(tmp_path, data, values, markers=False, **calibration):
    """Mock rig; without alignment markers by default, so ``values(n)`` sees ``n`` = the patterns."""
    rig = small_rig(alignment=AlignmentConfig(markers=markers), **calibration)
    scenes = ImageFolderScenes(data["images"], count=3, resolution=GRID)
    store = CaptureStore.open_for_writing(tmp_path / "m", manifest_for(data["masks"], data["order"], rig, scenes,
                                          complementary=rig.calibration.complementary), resume=True)
    det = MockDetector(values, full_scale=1.0)
    sess = CaptureSession(rig, data["masks"], data["order"], MockDMD(rig.dmd.geometry()), det, MockSceneDisplay(),
                          store, sleep=lambda s: None)
    return sess, scenes, store, det


def test_nan_and_saturation_are_refused(tmp_path, data):
    calls = {"n": 0}

    def nan_on_second_scene(n):
        calls["n"] += 1
        y = np.full(n, 0.3)
        if n == D and calls["n"] > 1:
            y[5] = np.nan
        return y

    sess, scenes, store, _ = mock_session(tmp_path, data, nan_on_second_scene, every=0)
    with pytest.raises(CaptureAborted, match="scene 1.*measurement failed.*NaN") as err:
        sess.run(scenes, progress=False)
    assert isinstance(err.value.__cause__, NaNReadingError)
    assert store.scene_ids() == [0]  # the bad scene was not written
    store.close()

    sat = lambda n: np.where(np.arange(n) < 3, 1.0, 0.2)  # noqa: E731  3 of d at full scale
    sess, scenes, store, _ = mock_session(tmp_path / "s", data, sat, every=0, max_saturated_fraction=0.1)
    with pytest.raises(CaptureAborted) as err:
        sess.run(scenes, progress=False)
    assert isinstance(err.value.__cause__, SaturationError) and "15.0% of readings are saturated" in str(err.value)
    store.close()
    sess, scenes, store, _ = mock_session(tmp_path / "s2", data, sat, every=0, max_saturated_fraction=0.2)
    sess.run(scenes, progress=False)
    assert store.read(0).saturated_fraction == pytest.approx(0.15)
    store.close()


def test_retry_recovers_from_transient_errors(tmp_path, data):
    calls = {"n": 0}

    def flaky(n):
        calls["n"] += 1
        return np.full(n, np.nan) if calls["n"] in (2, 4) else np.full(n, 0.3)

    sess, scenes, store, det = mock_session(tmp_path, data, flaky, every=0, on_error="retry", max_retries=1)
    summary = sess.run(scenes, progress=False)
    assert summary.retries == 2 and store.scene_ids() == [0, 1, 2]
    assert [store.read(i).attempts for i in range(3)] == [1, 2, 2]


def test_complementary_sequence_and_latency(tmp_path, data):
    seq = lambda n: np.arange(n, dtype=float) / 1000  # noqa: E731  value = position in the sequence
    sess, scenes, store, det = mock_session(tmp_path, data, seq, every=0, complementary=True)
    sess.rig.dmd.latency_frames = 0
    sess.run(scenes, progress=False)
    arms = [c[1][0] for c in det.calls if c[0] == "arm"]
    assert arms == [2 * D] * 3
    rec = store.read(0)
    pos = np.empty(D, int)
    pos[data["order"]] = np.arange(D)  # display position of each mask
    np.testing.assert_allclose(rec.readings, 2 * pos / 1000)
    np.testing.assert_allclose(rec.readings_inv, (2 * pos + 1) / 1000)
    store.close()


def test_store_is_append_only_and_locked(tmp_path, data):
    rig = small_rig()
    scenes = ImageFolderScenes(data["images"], resolution=GRID)
    man = manifest_for(data["masks"], data["order"], rig, scenes)
    with CaptureStore.open_for_writing(tmp_path / "s", man, resume=False) as store:
        rec = CaptureRecord(0, "k", {"path": "x"}, np.zeros(D))
        store.write(rec)
        with pytest.raises(DuplicateRecordError):
            store.write(rec)
        with pytest.raises(StoreLockedError):
            CaptureStore.open_for_writing(tmp_path / "s", man, resume=True)
        with pytest.raises(StoreError, match="match the manifest"):
            store.write(CaptureRecord(1, "k", {}, np.zeros(D + 1)))
    with pytest.raises(MaskMismatchError):
        CaptureStore.open_for_writing(tmp_path / "s", manifest_for(data["masks"], data["order"], rig, scenes, "b" * 64),
                                      resume=True)
    (tmp_path / "s" / "records" / "scene-0000001.npz").write_bytes(b"not a zip")
    assert "unreadable" in CaptureStore.open(tmp_path / "s").verify()[0]


def test_plan_prints_rates(tmp_path, data, capsys):
    rig_path = write_rig(tmp_path, small_rig())
    assert main(["--masks", str(data["masks_path"]), "--rig", str(rig_path), "--display", "sim", "--images",
                 str(data["images"]), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "2,880.0 patterns/s" in out and "total for 8 scenes" in out and "24 in 1 frame(s)" in out
    assert "end of exposure" in out and "(ok)" in out
    assert load_rig(rig_path).dmd.roi.mask_shape == (GRID, GRID)


@pytest.mark.parametrize("latency", [0, 2])
def test_check_sync_finds_the_latency(tmp_path, capsys, latency):
    rig = small_rig()
    rig.dmd.latency_frames = latency  # the simulator delays frames by this much
    rig_path = write_rig(tmp_path, rig)
    assert main(["--check-sync", "--rig", str(rig_path), "--display", "sim", "--simulate"]) == 0
    assert f"set dmd.latency_frames: {latency}" in capsys.readouterr().out


def test_interrupt_exit_code(tmp_path, data, monkeypatch, capsys):
    rig_path = write_rig(tmp_path, small_rig())

    def interrupted(self, scenes, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(CaptureSession, "run", interrupted)
    assert main(["--masks", str(data["masks_path"]), "--images", str(data["images"]), "--rig", str(rig_path),
                 "--display", "sim", "--out", str(tmp_path / "o"), "--simulate", "--resolution", str(GRID)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert main(["--images", str(data["images"]), "--rig", str(rig_path), "--simulate"]) == 1
    assert "--masks is required" in capsys.readouterr().err


def test_plan_counts_overheads_and_refuses_in_the_cli(tmp_path, data, capsys):
    rig = small_rig()
    rig.detector.gain_db = 70  # tau 159 us: 12% of the previous pattern at the sample
    rig_path = write_rig(tmp_path, rig)
    args = ["--masks", str(data["masks_path"]), "--rig", str(rig_path), "--display", "sim", "--images",
            str(data["images"])]
    assert main(args + ["--plan"]) == 1
    captured = capsys.readouterr()
    assert "REFUSED" in captured.out and "lower the gain" in captured.err
    assert main(args + ["--simulate", "--out", str(tmp_path / "o"), "--resolution", str(GRID)]) == 1  # no capture
    assert not (tmp_path / "o").exists()
    rig.detector.gain_db = 40
    write_rig(tmp_path, rig)
    assert main(args + ["--plan"]) == 0
    out = capsys.readouterr().out
    assert "without overheads" in out and "with overheads" in out and "LUT upload: 64 USB commands" in out
    assert "DAQ set-up 5 ms" in out and "plan                ok" in out


def test_cli_exits_cleanly_without_the_ni_driver(tmp_path, monkeypatch, capsys):
    """DaqNotFoundError used to escape lsi-capture as a traceback; it now exits 4 with the fix."""
    nidaqmx = pytest.importorskip("nidaqmx")
    from nidaqmx.errors import DaqNotFoundError

    import lsi.cli.capture as cli
    from hardware.daq_nidaqmx import NIDAQDetector

    rng = np.random.default_rng(0)
    save_masks(tmp_path / "m.npy", (rng.random((20, GRID, GRID)) > 0.5).astype(np.uint8), ratio=51, bits=1)
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((GRID, GRID, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    rig = small_rig()
    rig.detector.backend = "nidaqmx"

    def no_driver(*a, **k):
        raise DaqNotFoundError("Could not find an installation of NI-DAQmx.")

    monkeypatch.setattr(nidaqmx, "Task", no_driver)
    monkeypatch.setattr(cli, "_open_backends", lambda rig, sp, dp, simulate: {
        "dmd": MockDMD(rig.dmd.geometry()), "detector": NIDAQDetector.from_rig(rig),
        "scene_display": MockSceneDisplay()})
    rc = main(["--masks", str(tmp_path / "m.npy"), "--images", str(tmp_path / "imgs"), "--rig",
               str(write_rig(tmp_path, rig)), "--display", "sim", "--out", str(tmp_path / "o"), "--resolution",
               str(GRID), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 4 and "hardware error" in err and "installdriver" in err and "Traceback" not in err

"""Frame alignment (issue 14, point 9) and clipped references (point 10) on the simulated rig.

Frame slips are injected into the simulated DMD (:meth:`hardware.sim.SimDMD.inject_slip`): ``late`` starts
the acquisition on an idle frame (every reading one frame late), ``repeat`` shows a frame twice, ``count``
only makes the presenter report a late frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.alignment import (
    MARKER_PATTERNS,
    build_sequence,
    check_markers,
    sequence_layout,
)
from hardware.calibration import SaturationError
from hardware.capture import CaptureAborted, CaptureSession, ImageFolderScenes
from hardware.rig import AlignmentConfig, SimNoiseConfig, load_display_profile
from hardware.sim import build_sim_rig
from hardware.store import CaptureStore, read_events
from lsi.physics.mask_files import save_masks
from tests.fixtures.capture_rig import GRID, ideal, manifest_for, small_rig

D2 = 40  # two frames with markers: 2 + 40 + padding + 2 = 48 planes


@pytest.fixture
def world(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    masks = (rng.random((D2, GRID, GRID)) > 0.5).astype(np.uint8)
    order = [int(i) for i in rng.permutation(D2)]
    save_masks(tmp_path / "masks.npy", masks, ratio=GRID * GRID // D2, bits=1, order=order)
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        img = (rng.random((4, 4, 3)) * 255).astype(np.uint8)  # smooth scenes: readings vary between masks
        Image.fromarray(img).resize((GRID, GRID), Image.BILINEAR).save(tmp_path / "imgs" / f"s{i}.png")
    return {"masks": masks, "order": order, "images": tmp_path / "imgs"}


def session(tmp_path, world, rig, scenes):
    man = manifest_for(world["masks"], world["order"], rig, scenes)
    man.masks.count = D2
    store = CaptureStore.open_for_writing(tmp_path / "out", man, resume=True)
    sim = build_sim_rig(rig, load_display_profile("sim"), load_display_profile("dmd_hdmi"))
    sess = CaptureSession(rig, world["masks"], world["order"], sim.dmd, sim.detector, sim.scene_display, store,
                          sleep=lambda s: None)
    return sess, sim, store


def test_sequence_layout():
    lay = sequence_layout(D2, True)
    assert lay == {"patterns_acquired": 48, "first_pattern": 2, "head_marker": [0, 1], "tail_marker": [46, 47]}
    seq = build_sequence(np.zeros((D2, 2, 2), np.uint8) + 1, True)
    assert seq.planes[[0, 46]].all() and not seq.planes[[1, 47]].any() and not seq.planes[42:46].any()
    assert seq.markers == MARKER_PATTERNS and seq.describe() == lay
    assert sequence_layout(20, True)["patterns_acquired"] == 24 and sequence_layout(21, True)["patterns_acquired"] == 48


@pytest.mark.parametrize("kind", ["late", "repeat"])
def test_frame_slip_is_detected_and_the_scene_recaptured(tmp_path, world, kind):
    """A whole-frame shift used to be stored silently (late_frames was counted and ignored); now the markers
    catch it, the scene is captured again and the count lands in the record and the manifest."""
    rig = small_rig(every=0)
    scenes = ImageFolderScenes(world["images"], resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    sim.dmd.inject_slip(kind, times=1)  # not reported as late: only the markers can tell
    summary = sess.run(scenes, progress=False)
    assert summary.misaligned == 1 and store.scene_ids() == [0, 1, 2]
    rec = store.read(0)
    assert rec.alignment["recaptured"] == 1 and rec.alignment["status"] == "ok" and rec.attempts == 2
    y = rec.readings - (0.01 + rig.sim.leak)  # dark offset and off-mirror leak
    np.testing.assert_allclose(y, ideal(world["masks"], scenes[0].load()) * (1 - rig.sim.leak), atol=0.01)
    assert CaptureStore.open(tmp_path / "out").manifest.stats["misaligned_recaptured"] == 1
    events, _ = read_events(tmp_path / "out" / "events.jsonl")
    assert [e["event"] for e in events].count("scene_misaligned") == 1
    store.close()


def test_without_markers_the_slip_is_stored_silently(tmp_path, world):
    """The old behaviour, kept as an option (markers: false): shifted readings end up in the store."""
    rig = small_rig(every=0, alignment=AlignmentConfig(markers=False))
    scenes = ImageFolderScenes(world["images"], count=1, resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    sim.dmd.inject_slip("late")
    assert sess.run(scenes, progress=False).misaligned == 0
    y = store.read(0).readings
    assert np.corrcoef(y, ideal(world["masks"], scenes[0].load()))[0, 1] < 0.5  # garbage, stored
    store.close()


def test_late_frames_over_the_limit_force_a_recapture(tmp_path, world):
    rig = small_rig(every=0)
    scenes = ImageFolderScenes(world["images"], count=1, resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    sim.dmd.inject_slip("count")  # the presenter reports a late frame; the readings happen to be fine
    summary = sess.run(scenes, progress=False)
    assert summary.misaligned == 1 and store.read(0).alignment["recaptured"] == 1
    store.close()
    rig = small_rig(every=0, alignment=AlignmentConfig(max_late_frames=1))
    sess, sim, store = session(tmp_path / "tolerant", world, rig, scenes)
    sim.dmd.inject_slip("count")
    summary = sess.run(scenes, progress=False)
    assert summary.misaligned == 0 and summary.late_frames == 1 and store.read(0).alignment["late_frames"] == 1
    store.close()


def test_persistent_misalignment_stops_the_run(tmp_path, world):
    rig = small_rig(every=0, alignment=AlignmentConfig(max_recaptures=2))
    scenes = ImageFolderScenes(world["images"], resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    sim.dmd.inject_slip("late", times=10)
    with pytest.raises(CaptureAborted, match=r"still misaligned after 3 capture\(s\).*on-marker"):
        sess.run(scenes, progress=False)
    assert store.scene_ids() == []
    store.close()


def test_misaligned_reference_is_recaptured(tmp_path, world):
    rig = small_rig(every=1, position="before")
    scenes = ImageFolderScenes(world["images"], count=1, resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    sim.dmd.inject_slip("late")  # hits the reference frame: its white block reads dark
    summary = sess.run(scenes, progress=False)
    assert summary.misaligned == 1
    ref = store.read(0).references[0]
    assert ref.white == pytest.approx(1.01, abs=5e-3)
    store.close()


def test_dark_scene_is_inconclusive_and_counted(tmp_path, world):
    from hardware.capture import Scene

    rig = small_rig(every=1, position="before")
    scenes = ImageFolderScenes(world["images"], count=1, resolution=GRID)
    dark = [Scene(0, "black", {}, lambda: np.zeros((3, GRID, GRID), np.float32))]
    sess, sim, store = session(tmp_path, world, rig, scenes)
    summary = sess.run(dark, progress=False)
    assert summary.inconclusive == 1 and store.read(0).alignment["status"] == "inconclusive"
    assert CaptureStore.open(tmp_path / "out").manifest.stats["alignment_inconclusive"] == 1
    store.close()


def test_check_markers_rules():
    cfg = AlignmentConfig()
    seq = build_sequence(np.ones((20, 1, 1), np.uint8), True)
    raw = np.full(24, 0.5)
    raw[[0, 22]], raw[[1, 23]] = 1.0, 0.0
    assert check_markers(raw, seq, cfg).status == "ok"
    assert check_markers(np.full(24, 0.3), seq, cfg).status == "inconclusive"  # flat
    assert check_markers(raw * 0.01, seq, cfg, span=1.0).status == "inconclusive"  # 1% of the white span
    shifted = np.roll(raw, 1)
    res = check_markers(shifted, seq, cfg)
    assert res.status == "misaligned" and "head on-marker" in res.reason


def test_clipped_white_reference_is_refused(tmp_path, world):
    """The ADC clips at 0.55 of the true white level. With the scenes' tolerance (half the readings may
    saturate) the reference frame (12 white, 12 dark planes) used to pass, scaling every normalised reading
    by 1.8; references now tolerate no clipping."""
    rig = small_rig(every=1, position="before", max_saturated_fraction=0.5)
    rig.sim = dataclasses.replace(rig.sim, noise=SimNoiseConfig(photons_full_scale=1e6, read_noise=1e-4, adc_bits=16,
                                                                full_scale=0.55, dark_offset=0.01, ambient=0.0))
    scenes = ImageFolderScenes(world["images"], count=1, resolution=GRID)
    sess, sim, store = session(tmp_path, world, rig, scenes)
    with pytest.raises(CaptureAborted, match="reference.*clipped reference") as err:
        sess.run(scenes, progress=False)
    assert isinstance(err.value.__cause__, SaturationError)
    assert store.scene_ids() == []
    store.close()
    rig.calibration.reference_headroom = 0.0
    rig.sim = dataclasses.replace(rig.sim, noise=dataclasses.replace(rig.sim.noise, full_scale=2.0))
    sess, sim, store = session(tmp_path / "ok", world, rig, scenes)  # a white at 1.01 of a 2.0 full scale
    sess.run(scenes, progress=False)
    assert store.read(0).references[0].white == pytest.approx(1.01, abs=5e-3)
    store.close()

"""Serial ADC line protocol (version 2) against the mock device (docs/serial-adc-protocol.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.protocols import (
    Detector,
    DetectorError,
    DetectorTimeoutError,
    TransientDetectorError,
)
from hardware.rig import RigConfigError, SerialConfig
from hardware.serial_adc import (
    MockSerialDevice,
    SerialADC,
    checksum,
    format_sample,
    parse_sample,
)
from tests.fixtures.capture_rig import make_data, manifest_for, small_rig


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path)



def adc(device: MockSerialDevice, checksum_on: bool = True, **cfg) -> SerialADC:
    return SerialADC(SerialConfig(checksum=checksum_on, line_timeout_s=0.01, **cfg), port=device)


@pytest.mark.parametrize("checksum_on", [True, False])
def test_acquisition_round_trip(checksum_on):
    values = np.array([12.0, 4000.5, 0.25, 17.0, 1234.0])
    dev = MockSerialDevice(source=lambda n: values[:n])
    det = adc(dev, checksum_on)
    assert isinstance(det, Detector)
    assert det.ident == "mock-adc v2 16bit" and dev.checksums is checksum_on
    det.arm(5)
    np.testing.assert_allclose(det.read(1.0), values)
    assert dev.written == ["ID?", f"CHK {int(checksum_on)}", "EDGE F", "ARM 5"]  # samples at the end of exposure
    assert dev.edge == "F" and det.full_scale == 65535


def test_checksum_format():
    assert checksum("0,1834") == "12"
    line = format_sample(7, 0.5, True)
    assert line == "7,0.5*" + checksum("7,0.5")
    assert parse_sample(line, True) == (7, 0.5)
    with pytest.raises(TransientDetectorError, match="checksum mismatch"):
        parse_sample("7,0.5*00", True)
    with pytest.raises(TransientDetectorError, match="no checksum"):
        parse_sample("7,0.5", True)
    with pytest.raises(TransientDetectorError, match="malformed"):
        parse_sample("seven", False)


def test_error_line_during_acquisition():
    dev = MockSerialDevice(error_after=3)
    det = adc(dev)
    det.arm(10)
    with pytest.raises(TransientDetectorError, match="after 3 samples: overrun"):
        det.read(1.0)
    assert dev.written[-1] == "ABORT"


def test_missing_index_is_detected():
    det = adc(MockSerialDevice(drop_index=4))
    det.arm(10)
    with pytest.raises(TransientDetectorError, match="index 4 missing"):
        det.read(1.0)


def test_bad_checksum_is_detected():
    dev = MockSerialDevice(bad_checksum_at=2, fault_acquisitions=1)
    det = adc(dev)
    det.arm(5)
    with pytest.raises(TransientDetectorError, match="checksum mismatch"):
        det.read(1.0)
    det.arm(5)  # the rest of the bad acquisition was drained: the next one is clean
    np.testing.assert_allclose(det.read(1.0), np.linspace(100.0, 200.0, 5))


def test_arm_refused_and_timeout():
    dev = MockSerialDevice(max_samples=8)
    det = adc(dev)
    with pytest.raises(DetectorError, match="refused 'ARM 9'.*bad sample count"):
        det.arm(9)

    class Silent(MockSerialDevice):
        def _stream(self):  # the trigger never comes
            pass

    silent = Silent()
    det = adc(silent)
    det.arm(4)
    with pytest.raises(DetectorTimeoutError, match="0 of 4 samples"):
        det.read(0.05)
    assert silent.written[-1] == "ABORT"


def test_wrong_done_count():
    class Short(MockSerialDevice):
        def _stream(self):
            self.armed = None
            self.out += ["START", "0,1*" + checksum("0,1"), "DONE 2"]

    det = adc(Short())
    det.arm(2)
    with pytest.raises(TransientDetectorError, match="DONE 2 after 1 samples"):
        det.read(1.0)


def test_stale_input_is_flushed_on_open():
    """Lines left over from a previous session used to be read as the reply to ID? (or as samples)."""
    stale = [format_sample(17, 2.0, True), "DONE 18"]
    det = adc(MockSerialDevice(stale=stale))
    assert det.ident == "mock-adc v2 16bit" and det.flushed == 0  # reset_input_buffer dropped them
    det.arm(3)
    np.testing.assert_allclose(det.read(1.0), np.linspace(100.0, 200.0, 3))

    class NoReset(MockSerialDevice):  # a port without reset_input_buffer: lines are read and dropped
        reset_input_buffer = None

    det = adc(NoReset(stale=stale))
    assert det.flushed == 2 and det.ident == "mock-adc v2 16bit"


def test_start_handshake_ties_sample_zero_to_the_first_pattern():
    """A sample that arrives before START (stale, or from a device counting edges since ARM) is refused."""
    det = adc(MockSerialDevice(early_sample=True, fault_acquisitions=1))
    det.arm(4)
    with pytest.raises(TransientDetectorError, match="before the START handshake"):
        det.read(1.0)
    det.arm(4)
    assert det.read(1.0).shape == (4,)
    with pytest.raises(DetectorError, match="protocol version 1"):  # old firmware: no EDGE, no START
        adc(MockSerialDevice(protocol=1))


def test_full_scale_is_in_counts():
    assert adc(MockSerialDevice(ident="pico-adc v2 12bit")).full_scale == 4095
    assert adc(MockSerialDevice(ident="pico-adc v2"), adc_bits=10).full_scale == 1023
    with pytest.raises(RigConfigError, match="adc_bits"):
        adc(MockSerialDevice(ident="pico-adc v2"))


# -- in the capture loop ---------------------------------------------------------------------------------------
def serial_session(tmp_path, data, device, **calibration):
    from hardware.capture import CaptureSession, ImageFolderScenes
    from hardware.mock import MockDMD, MockSceneDisplay
    from hardware.rig import AlignmentConfig
    from hardware.store import CaptureStore

    rig = small_rig(every=0, alignment=AlignmentConfig(markers=False), **calibration)
    rig.detector.backend = "serial"
    scenes = ImageFolderScenes(data["images"], count=3, resolution=32)
    store = CaptureStore.open_for_writing(tmp_path / "s", manifest_for(data["masks"], data["order"], rig, scenes),
                                          resume=False)
    adc = SerialADC.from_rig(rig, port=device)
    sess = CaptureSession(rig, data["masks"], data["order"], MockDMD(rig.dmd.geometry()), adc, MockSceneDisplay(),
                          store, sleep=lambda s: None)
    return sess, scenes, store, adc


COUNTS = lambda n: np.linspace(1000.0, 3000.0, n)  # noqa: E731  ADC counts, far below 16-bit full scale


def test_checksum_error_is_retried_by_the_capture(tmp_path, data):
    """A checksum error used to abort the capture (or pass on_error: stop); the scene is now re-acquired."""
    from hardware.store import read_events

    sess, scenes, store, _ = serial_session(tmp_path, data, MockSerialDevice(COUNTS, bad_checksum_at=3,
                                                                           fault_acquisitions=1))
    summary = sess.run(scenes, progress=False)
    assert store.scene_ids() == [0, 1, 2] and summary.retries == 1 and store.read(0).attempts == 2
    errors = [e for e in read_events(tmp_path / "s" / "events.jsonl")[0] if e["event"] == "scene_error"]
    assert len(errors) == 1 and errors[0]["transient"] and "checksum" in errors[0]["error"]
    store.close()


def test_persistent_link_errors_stop_after_max_retries(tmp_path, data):
    from hardware.capture import CaptureAborted

    sess, scenes, store, _ = serial_session(tmp_path, data, MockSerialDevice(COUNTS, drop_index=5), max_retries=2)
    with pytest.raises(CaptureAborted, match=r"after 3 link error\(s\).*index 5 missing"):
        sess.run(scenes, progress=False)
    assert store.scene_ids() == []
    store.close()


def test_counts_are_not_judged_against_the_rigs_volts(tmp_path, data):
    """The CLI used to pass detector.full_scale (10 V) to the ADC: every count >= 10 was 'saturated'."""
    from hardware.calibration import SaturationError
    from hardware.capture import CaptureAborted

    sess, scenes, store, adc = serial_session(tmp_path, data, MockSerialDevice(COUNTS))
    assert adc.full_scale == 65535 and adc.describe()["full_scale_counts"] == 65535
    sess.run(scenes, progress=False)
    assert store.read(0).saturated_fraction == 0.0 and store.read(0).readings.max() > 1000
    store.close()
    sess, scenes, store, adc = serial_session(tmp_path / "old", data, MockSerialDevice(COUNTS))
    adc.full_scale = 10.0  # the old wiring
    with pytest.raises(CaptureAborted) as err:
        sess.run(scenes, progress=False)
    assert isinstance(err.value.__cause__, SaturationError)
    store.close()

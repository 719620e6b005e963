"""Serial ADC line protocol against the mock device (docs/serial-adc-protocol.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.protocols import Detector, DetectorError, DetectorTimeoutError
from hardware.rig import SerialConfig
from hardware.serial_adc import MockSerialDevice, SerialADC, checksum, format_sample, parse_sample


def adc(device: MockSerialDevice, checksum_on: bool = True) -> SerialADC:
    return SerialADC(SerialConfig(checksum=checksum_on, line_timeout_s=0.01), full_scale=4095.0, port=device)


@pytest.mark.parametrize("checksum_on", [True, False])
def test_acquisition_round_trip(checksum_on):
    values = np.array([12.0, 4000.5, 0.25, 17.0, 1234.0])
    dev = MockSerialDevice(source=lambda n: values[:n])
    det = adc(dev, checksum_on)
    assert isinstance(det, Detector)
    assert det.ident == "mock-adc v1 16bit" and dev.checksums is checksum_on
    det.arm(5, 2880.0)
    np.testing.assert_allclose(det.read(1.0), values)
    assert dev.written == ["ID?", f"CHK {int(checksum_on)}", "ARM 5"]


def test_checksum_format():
    assert checksum("0,1834") == "12"
    line = format_sample(7, 0.5, True)
    assert line == "7,0.5*" + checksum("7,0.5")
    assert parse_sample(line, True) == (7, 0.5)
    with pytest.raises(DetectorError, match="checksum mismatch"):
        parse_sample("7,0.5*00", True)
    with pytest.raises(DetectorError, match="no checksum"):
        parse_sample("7,0.5", True)
    with pytest.raises(DetectorError, match="malformed"):
        parse_sample("seven", False)


def test_error_line_during_acquisition():
    det = adc(MockSerialDevice(error_after=3))
    det.arm(10)
    with pytest.raises(DetectorError, match="after 3 samples: overrun"):
        det.read(1.0)


def test_missing_index_is_detected():
    det = adc(MockSerialDevice(drop_index=4))
    det.arm(10)
    with pytest.raises(DetectorError, match="index 4 missing"):
        det.read(1.0)


def test_bad_checksum_is_detected():
    det = adc(MockSerialDevice(bad_checksum_at=2))
    det.arm(5)
    with pytest.raises(DetectorError, match="checksum mismatch"):
        det.read(1.0)


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
            self.out += ["0,1*" + checksum("0,1"), "DONE 2"]

    det = adc(Short())
    det.arm(2)
    with pytest.raises(DetectorError, match="DONE 2 after 1 samples"):
        det.read(1.0)

"""DLPC350 backend against a fake pyusb device: exact HID packets for pattern-mode setup and the LUT.

Expected bytes are built here from the TI DLPU010 USB format, independently of pycrafter4500:
``[flags, seq, len_lo, len_hi, CMD3, CMD2, data..., 0-padding to 64]`` with flags 0x40 (write, reply
wanted) or 0xC0 (read), ``len = len(data) + 2``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hardware.bitplanes import DMDGeometry
from hardware.display import OffscreenDisplay
from hardware.dlpc350 import DLPC350DMD, LutEntry, build_video_lut, decode_validation
from hardware.protocols import DMD, DeviceNotFoundError, DMDConfigError, HardwareError
from hardware.rig import DisplayProfile, DMDConfig


def pkt(cmd2: int, cmd3: int, data: list[int], flags: int = 0x40) -> bytes:
    n = len(data) + 2
    body = [flags, 0x00, n & 0xFF, n >> 8, cmd3, cmd2] + list(data)
    return bytes(body + [0] * (64 - len(body)))


class FakeUSBDevice:
    """Records HID reports; answers reads with a 64-byte reply (validation status at byte 4)."""

    def __init__(self, statuses: list[int] | None = None, nack_on: tuple[int, int] | None = None) -> None:
        self.packets: list[bytes] = []
        self.statuses = list(statuses or [0x00])
        self.nack_on = nack_on
        self.configured = False

    def set_configuration(self) -> None:
        self.configured = True

    def write(self, endpoint: int, buffer: list[int]) -> int:
        assert endpoint == 1
        assert len(buffer) == 64 and all(0 <= b <= 255 for b in buffer)
        self.packets.append(bytes(buffer))
        return 64

    def read(self, endpoint: int, size: int) -> list[int]:
        assert endpoint == 0x81 and size == 64
        last = self.packets[-1]
        reply = [0x40, 0, 0, 0] + [0] * 60
        if last[0] == 0xC0 and (last[5], last[4]) == (0x1A, 0x1A):
            reply[4] = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if self.nack_on is not None and (last[5], last[4]) == self.nack_on:
            reply[0] |= 0x20
        return reply

    def reset(self) -> None:
        pass


@pytest.fixture
def fake_usb(monkeypatch):
    """Patch usb.core.find / dispose_resources and pycrafter4500's 20 ms sleeps."""
    import pycrafter4500.pycrafter4500 as pc
    import usb.core
    import usb.util

    state = {"device": FakeUSBDevice(), "find": [], "disposed": 0}

    def find(**kwargs):
        state["find"].append(kwargs)
        return state["device"]

    monkeypatch.setattr(usb.core, "find", find)
    monkeypatch.setattr(usb.util, "dispose_resources", lambda dev: state.__setitem__("disposed", state["disposed"] + 1))
    monkeypatch.setattr(pc.time, "sleep", lambda s: None)
    return state


def expected_setup(exposure: int = 347, period: int = 347, led_select: int = 0, led_enable: int = 0x00,
                   currents: tuple[int, int, int] = (0, 0, 0)) -> list[bytes]:
    le = lambda v: [v & 0xFF, v >> 8 & 0xFF, v >> 16 & 0xFF, v >> 24 & 0xFF]  # noqa: E731
    out = [
        pkt(0x02, 0x00, [0]),  # power: normal operation
        pkt(0x1A, 0x24, [0]),  # pattern display stop
        pkt(0x1A, 0x1B, [1]),  # display mode: pattern
        pkt(0x1A, 0x22, [0]),  # pattern source: video port
        pkt(0x1A, 0x31, [23, 1, 23, 0]),  # 24 entries, repeat, TRIG_OUT_2 every 24, 0 images
        pkt(0x1A, 0x23, [0]),  # trigger: vsync
        pkt(0x1A, 0x29, le(exposure) + le(period)),
        pkt(0x1A, 0x07, [led_enable]),
        pkt(0x0B, 0x01, list(currents)),
        pkt(0x1A, 0x33, [2]),  # open pattern mailbox
    ]
    for i in range(24):
        first = i == 0
        b0 = (1 if first else 3) | i << 2  # trigger: vsync (external positive) / continue; pattern number i
        b1 = 1 | led_select << 4  # 1-bit
        b2 = 0x04 if first else 0x00  # buffer swap on the first plane of a frame
        out += [pkt(0x1A, 0x32, [i]), pkt(0x1A, 0x34, [b0, b1, b2])]
    out += [pkt(0x1A, 0x33, [0]), pkt(0x1A, 0x1A, [0]), pkt(0x1A, 0x1A, [], flags=0xC0)]
    return out


def test_configure_sends_exact_dlpc350_packets(fake_usb):
    dmd = DLPC350DMD(DMDConfig())
    dmd.configure()
    assert fake_usb["find"] == [{"idVendor": 0x0451, "idProduct": 0x6401}]
    assert fake_usb["device"].configured
    got = fake_usb["device"].packets
    want = expected_setup()
    assert len(got) == len(want) == 10 + 48 + 3
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"packet {k}: got {g[:12].hex()} want {w[:12].hex()}"
    assert isinstance(dmd, DMD)


def test_start_close_and_led_settings(fake_usb):
    cfg = DMDConfig(led_select=0b101, led_current=(10, 20, 30), exposure_us=100, frame_period_us=347)
    dmd = DLPC350DMD(cfg)
    dmd.configure()
    assert fake_usb["device"].packets == expected_setup(100, 347, 0b101, 0x08 | 0b101, (10, 20, 30))
    fake_usb["device"].packets.clear()
    dmd.start()
    dmd.close()
    assert fake_usb["device"].packets == [pkt(0x1A, 0x24, [2]), pkt(0x1A, 0x24, [2]),
                                     pkt(0x1A, 0x24, [0]), pkt(0x1A, 0x1B, [0])]
    assert fake_usb["disposed"] == 1
    dmd.close()  # idempotent
    assert fake_usb["disposed"] == 1


def test_lut_entry_encoding_matches_pycrafter_bits():
    import pycrafter4500.pycrafter4500 as pc

    class Capture:
        def command(self, mode, seq, com1, com2, data):
            self.data = data

    for entry in [LutEntry(1, 0, 1, 0, buf_swap=True), LutEntry(3, 23, 1, 7, invert=True),
                  LutEntry(0, 63, 8, 2, insert_black=True, trig_out_prev=True)]:
        cap = Capture()
        pc.dlpc350.send_pattern_lut(cap, **entry.kwargs())
        assert bytes(cap.data) == entry.encode()
    lut = build_video_lut(frames=5)
    assert len(lut) == 120 and [e.pat_num for e in lut[:24]] == list(range(24))
    assert [e.buf_swap for e in lut].count(True) == 5
    with pytest.raises(DMDConfigError, match="128"):
        build_video_lut(frames=6)


def test_validation_busy_then_errors(fake_usb):
    fake_usb["device"].statuses = [0x80, 0x80, 0x03]
    with pytest.raises(DMDConfigError, match="exposure or frame period.*pattern numbers"):
        DLPC350DMD(DMDConfig()).configure()
    reads = [p for p in fake_usb["device"].packets if p[0] == 0xC0]
    assert len(reads) == 3  # polled until the busy bit cleared
    assert decode_validation(0x1C) == ([], [
        "continuous TRIG_OUT_1 request or overlapping black sectors",
        "post vector was not inserted prior to an external triggered vector",
        "frame period and exposure differ by less than 230 us"])


def test_validation_warnings_are_kept(fake_usb):
    fake_usb["device"].statuses = [0x10]
    dmd = DLPC350DMD(DMDConfig())
    dmd.configure()
    assert dmd.warnings == ["frame period and exposure differ by less than 230 us"]
    assert dmd.describe()["validation_warnings"] == dmd.warnings


def test_nack_is_an_error(fake_usb):
    fake_usb["device"].nack_on = (0x1A, 0x31)
    with pytest.raises(DMDConfigError, match="NACK.*set_pattern_config"):
        DLPC350DMD(DMDConfig()).configure()


@pytest.mark.parametrize("exposure,period,match", [(200, 347, "230"), (400, 347, "longer"), (400, 400, "video frame")])
def test_invalid_timing_refused_before_usb(fake_usb, exposure, period, match):
    with pytest.raises(DMDConfigError, match=match):
        DLPC350DMD(DMDConfig(exposure_us=exposure, frame_period_us=period)).configure()
    assert fake_usb["device"].packets == []


def test_device_not_found(monkeypatch, fake_usb):
    import usb.core

    monkeypatch.setattr(usb.core, "find", lambda **kw: None)
    with pytest.raises(DeviceNotFoundError, match="0x0451.*0x6401"):
        DLPC350DMD(DMDConfig()).open()


def test_context_manager_returns_to_video_mode_on_exception(fake_usb):
    with pytest.raises(RuntimeError, match="boom"):
        with DLPC350DMD(DMDConfig()) as dmd:
            dmd.configure()
            dmd.start()
            raise RuntimeError("boom")
    assert fake_usb["device"].packets[-2:] == [pkt(0x1A, 0x24, [0]), pkt(0x1A, 0x1B, [0])]


def test_usb_error_becomes_hardware_error(fake_usb):
    import usb.core

    def broken(endpoint, buffer):
        raise usb.core.USBError("pipe error")

    fake_usb["device"].write = broken
    dmd = DLPC350DMD(DMDConfig())
    with pytest.raises(HardwareError, match="USB error during DLPC350 set_power_mode"):
        dmd.configure()
    dmd.close(raise_errors=False)  # must not raise while another error propagates
    assert any("video mode" in w for w in dmd.warnings)


def test_present_goes_through_hdmi_presenter(fake_usb):
    prof = DisplayProfile(name="dmd", backend="offscreen", width=912, height=1140, gamma=1.0, fit="native",
                          bit_exact=True)
    presenter = OffscreenDisplay(prof)
    seen = []
    presenter.observers.append(lambda kind, payload: seen.append((kind, payload.shape)))
    dmd = DLPC350DMD(DMDConfig(), presenter=presenter)
    frames = np.zeros((2, 1140, 912, 3), np.uint8)
    dmd.present(frames)
    assert seen == [("frames", (2, 1140, 912, 3))] and presenter.presented == 2
    with pytest.raises(DMDConfigError, match="frames must be"):
        dmd.present(np.zeros((1, 100, 100, 3), np.uint8))
    with pytest.raises(DMDConfigError, match="presenter"):
        DLPC350DMD(DMDConfig()).present(frames)
    assert DLPC350DMD(DMDConfig()).geometry == DMDGeometry.centred()


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("LSI_HARDWARE") != "1", reason="needs a DLP LightCrafter 4500 (LSI_HARDWARE=1)")
def test_real_dlpc350_configures():
    with DLPC350DMD(DMDConfig()) as dmd:
        dmd.configure()
        dmd.start()
        dmd.stop()

"""DLPC350 backend against the mock USB device: exact HID packets, fresh replies, USB faults.

Expected bytes are built here from the TI DLPU010 USB format, independently of pycrafter4500:
``[flags, seq, len_lo, len_hi, CMD3, CMD2, data..., 0-padding to 64]`` with flags 0x40 (write, reply
wanted) or 0xC0 (read), ``len = len(data) + 2``; every command carries its own rolling sequence byte.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hardware.bitplanes import DMDGeometry
from hardware.display import OffscreenDisplay
from hardware.dlpc350 import DLPC350DMD
from hardware.dlpc350_commands import (
    LutEntry,
    build_video_lut,
    configure_command_count,
    decode_validation,
    trig_out_delay_us,
    trig_out_register,
)
from hardware.mock import MockDLPC350Device
from hardware.protocols import DMD, DeviceNotFoundError, DMDConfigError, HardwareError
from hardware.rig import DisplayProfile, DMDConfig, RigConfigError


def pkt(cmd2: int, cmd3: int, data: list[int], flags: int = 0x40, seq: int = 0) -> bytes:
    n = len(data) + 2
    body = [flags, seq, n & 0xFF, n >> 8, cmd3, cmd2] + list(data)
    return bytes(body + [0] * (64 - len(body)))


def strip_seq(packets: list[bytes]) -> list[bytes]:
    """Packets with the sequence byte zeroed (checked separately)."""
    return [p[:1] + b"\x00" + p[2:] for p in packets]


@pytest.fixture
def fake_usb(monkeypatch):
    """Patch usb.core.find / dispose_resources and pycrafter4500's 20 ms sleeps; the device is the mock."""
    import pycrafter4500.pycrafter4500 as pc
    import usb.core
    import usb.util

    state = {"device": MockDLPC350Device(), "find": [], "disposed": 0}

    def find(**kwargs):
        state["find"].append(kwargs)
        return state["device"]

    monkeypatch.setattr(usb.core, "find", find)
    monkeypatch.setattr(usb.util, "dispose_resources", lambda dev: state.__setitem__("disposed", state["disposed"] + 1))
    monkeypatch.setattr(pc.time, "sleep", lambda s: None)
    return state


def dmd(cfg: DMDConfig | None = None, **kw) -> DLPC350DMD:
    return DLPC350DMD(cfg or DMDConfig(), sleep=lambda s: None, **kw)


def expected_setup(exposure: int = 347, period: int = 347, led_select: int = 0, led_enable: int = 0x00,
                   currents: tuple[int, int, int] = (0, 0, 0), trig_out1: tuple[int, int, int] = (0, 0xBB, 0x8C),
                   first_trig: int = 1) -> list[bytes]:
    le = lambda v: [v & 0xFF, v >> 8 & 0xFF, v >> 16 & 0xFF, v >> 24 & 0xFF]  # noqa: E731
    out = [
        pkt(0x02, 0x00, [0]),  # power: normal operation
        pkt(0x1A, 0x24, [0]),  # pattern display stop
        pkt(0x1A, 0x1B, [1]),  # display mode: pattern
        pkt(0x1A, 0x22, [0]),  # pattern source: video port
        pkt(0x1A, 0x31, [23, 1, 23, 0]),  # 24 entries, repeat, TRIG_OUT_2 every 24, 0 images
        pkt(0x1A, 0x23, [0]),  # trigger: vsync
        pkt(0x1A, 0x29, le(exposure) + le(period)),
        pkt(0x1A, 0x1D, list(trig_out1)),  # TRIG_OUT_1: polarity, rising 0xBB = 0 us, falling 0x8C = -5.04 us
        pkt(0x1A, 0x07, [led_enable]),
        pkt(0x0B, 0x01, list(currents)),
        pkt(0x1A, 0x33, [2]),  # open pattern mailbox
    ]
    for i in range(24):
        first = i == 0
        b0 = (first_trig if first else 3) | i << 2  # trigger: vsync (external positive) / continue; pattern i
        b1 = 1 | led_select << 4  # 1-bit
        b2 = 0x04 if first else 0x00  # buffer swap on the first plane of a frame
        out += [pkt(0x1A, 0x32, [i]), pkt(0x1A, 0x34, [b0, b1, b2])]
    out += [pkt(0x1A, 0x33, [0]), pkt(0x1A, 0x1A, [0]), pkt(0x1A, 0x1A, [], flags=0xC0)]
    return out


def test_configure_sends_exact_dlpc350_packets(fake_usb):
    d = dmd()
    d.configure()
    assert fake_usb["find"] == [{"idVendor": 0x0451, "idProduct": 0x6401}]
    assert fake_usb["device"].configured
    got = fake_usb["device"].packets
    want = expected_setup()
    assert len(got) == len(want) == 11 + 48 + 3 == configure_command_count(start=False)
    for k, (g, w) in enumerate(zip(strip_seq(got), want)):
        assert g == w, f"packet {k}: got {g[:12].hex()} want {w[:12].hex()}"
    assert [p[1] for p in got] == list(range(1, len(got) + 1))  # a fresh sequence byte per command
    assert isinstance(d, DMD) and d.usb_faults == []


def test_start_close_and_led_settings(fake_usb):
    cfg = DMDConfig(led_select=0b101, led_current=(10, 20, 30), exposure_us=100, frame_period_us=347,
                    trig_out1_invert=True, trig_out1_falling_delay_us=-10.0)
    d = dmd(cfg)
    d.configure()
    assert strip_seq(fake_usb["device"].packets) == expected_setup(100, 347, 0b101, 0x08 | 0b101, (10, 20, 30),
                                                                  trig_out1=(1, 0xBB, 0xBB - 93))
    fake_usb["device"].packets.clear()
    d.start()
    d.close()
    assert strip_seq(fake_usb["device"].packets) == [pkt(0x1A, 0x24, [2]), pkt(0x1A, 0x24, [2]),
                                                     pkt(0x1A, 0x24, [0]), pkt(0x1A, 0x1B, [0])]
    assert fake_usb["disposed"] == 1
    d.close()  # idempotent
    assert fake_usb["disposed"] == 1


def test_trig_out_delay_register():
    # TI DLPC350 API: 107.2 ns per step, 0x00 = -20.05 us, 0xBB = 0, 0xD5 = +2.787 us
    assert trig_out_register(0.0) == 0xBB and trig_out_register(-20.05) == 0x00 and trig_out_register(2.787) == 0xD5
    assert trig_out_delay_us(-5.0) == pytest.approx(-5.0384, abs=1e-4)
    for bad in (-21.0, 3.0, 347.0):  # the delay cannot move the edge to the end of a 347 us exposure
        with pytest.raises(RigConfigError, match="outside the DLPC350 range"):
            trig_out_register(bad, "dmd.trig_out1_rising_delay_us")


def test_lut_first_entry_is_configurable(fake_usb):
    d = dmd(DMDConfig(lut_first_trigger="external_negative"))
    d.configure()
    assert strip_seq(fake_usb["device"].packets) == expected_setup(first_trig=2)
    lut = build_video_lut(1, first_trigger=0, first_buffer_swap=False)
    assert lut[0].trig_type == 0 and not lut[0].buf_swap and lut[1].trig_type == 3


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
        dmd().configure()
    reads = [p for p in fake_usb["device"].packets if p[0] == 0xC0]
    assert len(reads) == 3  # polled until the busy bit cleared
    assert decode_validation(0x1C) == ([], [
        "continuous TRIG_OUT_1 request or overlapping black sectors",
        "post vector was not inserted prior to an external triggered vector",
        "frame period and exposure differ by less than 230 us"])


def test_validation_warnings_are_kept(fake_usb):
    fake_usb["device"].statuses = [0x10]
    d = dmd()
    d.configure()
    assert d.warnings == ["frame period and exposure differ by less than 230 us"]
    assert d.describe()["validation_warnings"] == d.warnings


def test_nack_is_an_error(fake_usb):
    fake_usb["device"].nack_on = (0x1A, 0x31)
    with pytest.raises(DMDConfigError, match="NACK.*pattern config"):
        dmd().configure()


def test_timed_out_validation_read_is_not_taken_as_validated(fake_usb):
    """pycrafter4500 keeps the previous reply when a read times out: the ACK of the validation *start* has 0
    in byte 4 and used to pass as "validated" although the DLPC350 reports fatal status 0x03."""
    dev = fake_usb["device"]
    dev.statuses = [0x03]
    dev.faults = {(0x1A, 0x1A, "r"): ["timeout"]}
    d = dmd()
    with pytest.raises(DMDConfigError, match="exposure or frame period.*pattern numbers"):
        d.configure()
    assert dev.timeouts >= 1 and len([p for p in dev.packets if p[0] == 0xC0]) == 2  # read retried once
    assert any("LUT validation status read: no reply" in f for f in d.usb_faults)


def test_timed_out_nack_is_not_taken_as_ack(fake_usb):
    """The NACK of the pattern config is lost in a time-out: the stale ACK of the previous command must not
    count; the retried command gets its own (NACK) reply."""
    dev = fake_usb["device"]
    dev.nack_on = (0x1A, 0x31)
    dev.faults = {(0x1A, 0x31, "w"): ["timeout"]}
    d = dmd()
    with pytest.raises(DMDConfigError, match="NACK.*pattern config"):
        d.configure()
    assert [p for p in dev.packets if (p[5], p[4]) == (0x1A, 0x31)].__len__() == 2


def test_late_reply_is_recognised_by_its_sequence_byte(fake_usb):
    """A reply that arrives one read late would be read as the answer to the next command; the sequence byte
    exposes it, pending replies are drained and the command is repeated."""
    dev = fake_usb["device"]
    dev.faults = {(0x1A, 0x29, "w"): ["late"]}  # the exposure/period ACK comes late
    d = dmd()
    d.configure()
    assert strip_seq([p for p in dev.packets if (p[5], p[4]) != (0x1A, 0x29)]) == \
        [p for p in expected_setup() if (p[5], p[4]) != (0x1A, 0x29)]
    assert len([p for p in dev.packets if (p[5], p[4]) == (0x1A, 0x29)]) == 2
    assert d.usb_faults and "exposure / frame period" in d.usb_faults[0]


def test_persistent_timeouts_raise_a_clear_error(fake_usb):
    dev = fake_usb["device"]
    dev.faults = {(0x1A, 0x1A, "r"): ["timeout"] * 10}
    d = dmd(DMDConfig(usb_retries=3))
    with pytest.raises(DMDConfigError, match=r"no fresh reply .* LUT validation status read after 3 attempt"):
        d.configure()
    assert len([p for p in dev.packets if p[0] == 0xC0]) == 3


@pytest.mark.parametrize("exposure,period,match", [(200, 347, "230"), (400, 347, "longer"),
                                                   (400, 400, "one frame at 120 Hz")])
def test_invalid_timing_refused_before_usb(fake_usb, exposure, period, match):
    with pytest.raises(DMDConfigError, match=match):
        dmd(DMDConfig(exposure_us=exposure, frame_period_us=period)).configure()
    assert fake_usb["device"].packets == []


def test_device_not_found(monkeypatch, fake_usb):
    import usb.core

    monkeypatch.setattr(usb.core, "find", lambda **kw: None)
    with pytest.raises(DeviceNotFoundError, match="0x0451.*0x6401"):
        DLPC350DMD(DMDConfig()).open()


def test_context_manager_returns_to_video_mode_on_exception(fake_usb):
    with pytest.raises(RuntimeError, match="boom"):
        with dmd() as d:
            d.configure()
            d.start()
            raise RuntimeError("boom")
    assert strip_seq(fake_usb["device"].packets[-2:]) == [pkt(0x1A, 0x24, [0]), pkt(0x1A, 0x1B, [0])]


def test_usb_error_becomes_hardware_error(fake_usb):
    import usb.core

    def broken(endpoint, buffer):
        raise usb.core.USBError("pipe error")

    fake_usb["device"].write = broken
    d = dmd()
    with pytest.raises(HardwareError, match="USB error during DLPC350 power on"):
        d.configure()
    d.close(raise_errors=False)  # must not raise while another error propagates
    assert any("video mode" in w for w in d.warnings)


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

"""DLP LightCrafter 4500 (DLPC350) backend over USB HID, using pycrafter4500's ``dlpc350`` command class.

Configuration for streaming masks through the video port (TI DLPU010, pattern-sequence mode):

1. power on (leave standby), stop any running sequence;
2. display mode = pattern (CMD 0x1A1B), pattern source = video port (0x1A22), trigger = vsync (0x1A23);
3. pattern config (0x1A31): 24 LUT entries, repeat, TRIG_OUT_2 every 24 patterns, no image indices;
4. exposure and pattern period (0x1A29); LED enables (0x1A07) and PWM currents (0x0B01);
5. open the pattern mailbox (0x1A33 = 2), for each entry set the address (0x1A32) and write the 3-byte
   LUT entry (0x1A34, table 2-65), close the mailbox (0x1A33 = 0);
6. validate (0x1A1A) and poll the status byte until bit 7 (busy) clears; bits 0/1 are fatal;
7. start (0x1A24 = 2, sent twice as pycrafter4500 does when leaving video mode).

The 24 entries select 1-bit pattern numbers 0..23 = bit planes G0..G7, R0..R7, B0..B7; entry 0 waits for
the vsync trigger (trigger type 1) and swaps the frame buffer, the others continue (trigger type 3). The LUT
replays for each incoming frame, so ``d`` masks stream as ``ceil(d / 24)`` frames shown by the frame
presenter (a fullscreen window on the DMD's HDMI input). ``close()`` returns the DMD to video mode.
pycrafter4500's own ``pattern_mode`` helper is *not* used: it only ever writes 3 LUT entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.bitplanes import PLANES_PER_FRAME
from hardware.protocols import (
    BackendUnavailableError,
    DeviceNotFoundError,
    DMDConfigError,
    FramePresenter,
    HardwareError,
)
from hardware.rig import DMDConfig
from hardware.timing import TimingError, check_exposure

__all__ = ["LutEntry", "build_video_lut", "DLPC350DMD", "COMMANDS", "decode_validation", "MAX_LUT_ENTRIES"]

MAX_LUT_ENTRIES = 128
TRIG_INTERNAL, TRIG_EXT_POSITIVE, TRIG_EXT_NEGATIVE, TRIG_CONTINUE = 0, 1, 2, 3

# (CMD2, CMD3) of the USB commands used here (TI DLPU010).
COMMANDS = {
    "POWER_CONTROL": (0x02, 0x00),
    "LED_CURRENT": (0x0B, 0x01),
    "LED_ENABLE": (0x1A, 0x07),
    "LUT_VALID": (0x1A, 0x1A),
    "DISP_MODE": (0x1A, 0x1B),
    "PAT_DISP_MODE": (0x1A, 0x22),
    "PAT_TRIG_MODE": (0x1A, 0x23),
    "PAT_START_STOP": (0x1A, 0x24),
    "PAT_EXPO_PRD": (0x1A, 0x29),
    "PAT_CONFIG": (0x1A, 0x31),
    "MBOX_ADDRESS": (0x1A, 0x32),
    "MBOX_CONTROL": (0x1A, 0x33),
    "MBOX_DATA": (0x1A, 0x34),
}

_VALIDATION_BITS = {
    0: ("exposure or frame period settings are invalid", True),
    1: ("pattern numbers in the LUT are invalid", True),
    2: ("continuous TRIG_OUT_1 request or overlapping black sectors", False),
    3: ("post vector was not inserted prior to an external triggered vector", False),
    4: ("frame period and exposure differ by less than 230 us", False),
}


@dataclass(frozen=True)
class LutEntry:
    """One pattern LUT entry (TI DLPU010 table 2-65)."""

    trig_type: int  # 0 internal, 1 external positive (vsync in video mode), 2 external negative, 3 continue
    pat_num: int  # 1-bit: 0..23 = G0..G7, R0..R7, B0..B7
    bit_depth: int = 1
    led_select: int = 0  # b0 red, b1 green, b2 blue
    invert: bool = False
    insert_black: bool = False
    buf_swap: bool = False
    trig_out_prev: bool = False

    def encode(self) -> bytes:
        """The three mailbox bytes: [trig | pat << 2, depth | led << 4, invert | black << 1 | swap << 2 | prev << 3]."""
        if not 0 <= self.trig_type <= 3 or not 0 <= self.pat_num <= 63 or not 1 <= self.bit_depth <= 8:
            raise DMDConfigError(f"invalid LUT entry {self}")
        if not 0 <= self.led_select <= 7:
            raise DMDConfigError(f"led_select must be 0..7, got {self.led_select}")
        return bytes([
            self.trig_type | (self.pat_num << 2),
            self.bit_depth | (self.led_select << 4),
            int(self.invert) | int(self.insert_black) << 1 | int(self.buf_swap) << 2 | int(self.trig_out_prev) << 3,
        ])

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``pycrafter4500.dlpc350.send_pattern_lut``."""
        return dict(trig_type=self.trig_type, pat_num=self.pat_num, bit_depth=self.bit_depth,
                    led_select=self.led_select, do_invert_pat=self.invert, do_insert_black=self.insert_black,
                    do_buf_swap=self.buf_swap, do_trig_out_prev=self.trig_out_prev)


def build_video_lut(frames: int = 1, led_select: int = 0, invert: bool = False) -> list[LutEntry]:
    """LUT for video-port streaming: ``24 * frames`` 1-bit entries (bit planes G0..B7 of each frame).

    The first entry of every frame waits for vsync and swaps the buffer; the rest continue. ``frames=1``
    (24 entries) replays for every incoming frame, which is how any number of masks is streamed.
    """
    n = frames * PLANES_PER_FRAME
    if frames < 1 or n > MAX_LUT_ENTRIES:
        raise DMDConfigError(f"a LUT holds at most {MAX_LUT_ENTRIES} entries; {frames} frame(s) need {n}")
    out = []
    for k in range(n):
        first = k % PLANES_PER_FRAME == 0
        out.append(LutEntry(trig_type=TRIG_EXT_POSITIVE if first else TRIG_CONTINUE, pat_num=k % PLANES_PER_FRAME,
                            led_select=led_select, invert=invert, buf_swap=first))
    return out


def decode_validation(status: int) -> tuple[list[str], list[str]]:
    """Split a LUT validation status byte into (fatal errors, warnings)."""
    errors, warnings = [], []
    for bit, (text, fatal) in _VALIDATION_BITS.items():
        if status >> bit & 1:
            (errors if fatal else warnings).append(text)
    return errors, warnings


class DLPC350DMD:
    """Real DMD: DLPC350 over USB (VID 0x0451, PID 0x6401) plus a frame presenter on its HDMI input.

    Use as a context manager: the DMD goes back to video mode on exit, also after an exception.

    Args:
        config: DMD section of the rig config.
        presenter: window on the DMD's HDMI screen (see :mod:`hardware.display`); needed for ``present``.
        lcr: an already connected ``pycrafter4500.dlpc350`` (tests); otherwise opened from USB on demand.
    """

    def __init__(self, config: DMDConfig, presenter: FramePresenter | None = None, lcr: Any = None) -> None:
        self.config = config
        self.geometry = config.geometry()
        self.presenter = presenter
        self.lcr = lcr
        self._device: Any = None
        self._configured = False
        self.warnings: list[str] = []

    # -- connection ---------------------------------------------------------------------------------------
    def open(self) -> None:
        """Find the USB device and wrap it in pycrafter4500's ``dlpc350``."""
        if self.lcr is not None:
            return
        try:
            import pycrafter4500
            import usb.core
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the DLPC350 backend needs pyusb and pycrafter4500 ({exc}); install with "
                "`pip install latent-space-imaging[hardware]`") from exc
        vid, pid = self.config.vendor_id, self.config.product_id
        try:
            dev = usb.core.find(idVendor=vid, idProduct=pid)
        except usb.core.NoBackendError as exc:
            raise BackendUnavailableError(f"pyusb found no libusb backend ({exc}); install libusb-1.0") from exc
        if dev is None:
            raise DeviceNotFoundError(
                f"no DLPC350 on USB (VID 0x{vid:04X}, PID 0x{pid:04X}): check the USB cable and power, on Linux a "
                "udev rule granting access, on Windows the libusb driver (Zadig)")
        try:
            dev.set_configuration()
        except usb.core.USBError as exc:
            raise HardwareError(f"cannot configure the DLPC350 USB device: {exc}") from exc
        self._device = dev
        self.lcr = pycrafter4500.dlpc350(dev)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a ``dlpc350`` method; USB errors become HardwareError, NACK replies DMDConfigError."""
        self.open()
        try:
            out = getattr(self.lcr, name)(*args, **kwargs)
        except OSError as exc:  # usb.core.USBError is an OSError
            raise HardwareError(f"USB error during DLPC350 {name}: {exc}; check the cable, power and "
                                "that no other program (LightCrafter GUI) holds the device") from exc
        ans = getattr(self.lcr, "ans", None)
        if ans is not None and len(ans) > 0 and int(ans[0]) & 0x20:
            raise DMDConfigError(f"the DLPC350 rejected (NACK) the {name}{args or ''} command")
        return out

    def _write(self, key: str, data: list[int]) -> None:
        cmd2, cmd3 = COMMANDS[key]
        self._call("command", "w", 0x00, cmd2, cmd3, list(data))

    # -- configuration --------------------------------------------------------------------------------------
    def configure(self, exposure_us: int | None = None, period_us: int | None = None) -> None:
        """Program pattern-sequence mode for video-port streaming and validate the LUT."""
        cfg = self.config
        exposure_us = int(cfg.exposure_us if exposure_us is None else exposure_us)
        period_us = int(cfg.frame_period_us if period_us is None else period_us)
        try:
            check_exposure(exposure_us, period_us)
        except TimingError as exc:
            raise DMDConfigError(str(exc)) from exc
        if PLANES_PER_FRAME * period_us > 1e6 / cfg.video_fps + 1:
            raise DMDConfigError(f"24 patterns of {period_us} us do not fit in one {cfg.video_fps:g} Hz video frame "
                                 f"({1e6 / cfg.video_fps:.0f} us); use dmd.frame_period_us <= "
                                 f"{int(1e6 / cfg.video_fps / PLANES_PER_FRAME)}")
        if cfg.trigger_mode != "vsync":
            raise DMDConfigError(f"video-port streaming needs trigger_mode: vsync, got {cfg.trigger_mode!r}")
        lut = build_video_lut(1, cfg.led_select, cfg.invert)
        self._call("set_power_mode", do_standby=False)
        self._call("pattern_display", "stop")
        self._call("set_display_mode", "pattern")
        self._call("set_pattern_input_source", "video")
        self._call("set_pattern_config", num_lut_entries=len(lut), do_repeat=True,
                   num_pats_for_trig_out2=len(lut), num_images=0)
        self._call("set_pattern_trigger_mode", "vsync")
        self._call("set_exposure_frame_period", exposure_us, period_us)
        red, green, blue = (cfg.led_select >> 0) & 1, (cfg.led_select >> 1) & 1, (cfg.led_select >> 2) & 1
        # LEDs off -> manual control with every LED disabled; otherwise the sequencer drives them.
        self._write("LED_ENABLE", [0x00 if cfg.led_select == 0 else (0x08 | red | green << 1 | blue << 2)])
        self._write("LED_CURRENT", [int(c) for c in cfg.led_current])
        self._call("open_mailbox", 2)
        for address, entry in enumerate(lut):
            self._call("mailbox_set_address", address)
            self._call("send_pattern_lut", **entry.kwargs())
        self._call("open_mailbox", 0)
        self.validate_lut()
        self._configured = True

    def validate_lut(self, max_polls: int = 50) -> int:
        """Run LUT validation; raise :class:`DMDConfigError` on fatal bits, keep warnings in ``self.warnings``."""
        import time

        self._call("start_pattern_lut_validate")
        status = 0x80
        for _ in range(max_polls):
            cmd2, cmd3 = COMMANDS["LUT_VALID"]
            self._call("command", "r", 0x00, cmd2, cmd3, [])
            ans = getattr(self.lcr, "ans", None)
            status = int(ans[4]) if ans is not None and len(ans) > 4 else 0
            if not status & 0x80:
                break
            time.sleep(0.05)
        else:
            raise DMDConfigError("DLPC350 LUT validation did not finish (busy bit stayed set)")
        errors, warnings = decode_validation(status)
        self.warnings = warnings
        if errors:
            raise DMDConfigError(f"DLPC350 rejected the pattern sequence (status 0x{status:02X}): " + "; ".join(errors))
        return status

    def start(self) -> None:
        if not self._configured:
            self.configure()
        self._call("pattern_display", "start")
        self._call("pattern_display", "start")

    def stop(self) -> None:
        self._call("pattern_display", "stop")

    def present(self, frames: np.ndarray) -> None:
        """Show packed frames on the DMD's HDMI input (one per video frame)."""
        if self.presenter is None:
            raise DMDConfigError("no frame presenter: the DLPC350 gets its patterns from the HDMI video port, so a "
                                 "fullscreen window on the DMD output (display profile dmd_hdmi) is required")
        if frames.shape[1:] != (self.geometry.height, self.geometry.width, 3):
            raise DMDConfigError(f"frames must be [F, {self.geometry.height}, {self.geometry.width}, 3], "
                                 f"got {frames.shape}")
        self.presenter.present(frames, 1.0 / self.config.video_fps)

    def close(self, raise_errors: bool = True) -> None:
        """Stop the sequence and return to video mode (idempotent); release the USB device.

        With ``raise_errors=False`` (used while another exception propagates) USB failures are recorded in
        ``self.warnings`` instead of masking the original error.
        """
        if self.lcr is None:
            return
        try:
            self._call("pattern_display", "stop")
            self._call("set_display_mode", "video")
        except HardwareError as exc:
            if raise_errors:
                raise
            self.warnings.append(f"could not return the DMD to video mode: {exc}")
        finally:
            self._configured = False
            if self._device is not None:
                import usb.util

                usb.util.dispose_resources(self._device)
                self._device = None
            self.lcr = None

    def __enter__(self) -> DLPC350DMD:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(raise_errors=exc_type is None)

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {"backend": "dlpc350", "usb": f"{cfg.vendor_id:04x}:{cfg.product_id:04x}",
                "resolution": [cfg.width, cfg.height], "roi": list(self.geometry.roi),
                "exposure_us": cfg.exposure_us, "frame_period_us": cfg.frame_period_us,
                "video_fps": cfg.video_fps, "led_select": cfg.led_select, "led_current": list(cfg.led_current),
                "lut_entries": PLANES_PER_FRAME, "validation_warnings": list(self.warnings)}

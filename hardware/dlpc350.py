"""DLP LightCrafter 4500 (DLPC350) backend over USB HID, with pycrafter4500's ``dlpc350.command`` as transport.

Configuration for streaming masks through the video port (TI DLPC350 programmer's guide DLPU010 and TI's
DLPC350 host API, see docs/hardware.md "Sources"):

1. power on (leave standby), stop any running sequence;
2. display mode = pattern (CMD 0x1A1B), pattern source = video port (0x1A22), trigger mode 0 = VSYNC (0x1A23);
3. pattern config (0x1A31): 24 LUT entries, repeat, TRIG_OUT_2 every 24 patterns, no image indices;
4. exposure and pattern period (0x1A29): equal, or exposure <= period - 230 us (``dmd.min_dark_us``);
5. TRIG_OUT_1 control (0x1A1D): polarity, rising and falling edge delays in 107.2 ns steps,
   register 0x00 = -20.05 us, 0xBB = 0, 0xD5 = +2.787 us; the falling edge marks the sampling point;
6. LED enables (0x1A07) and PWM currents (0x0B01);
7. open the pattern mailbox (0x1A33 = 2), for each entry set the address (0x1A32) and write the 3-byte
   LUT entry (0x1A34, table 2-65), close the mailbox (0x1A33 = 0);
8. validate (0x1A1A) and poll the status byte until bit 7 (busy) clears; bits 0/1 are fatal;
9. start (0x1A24 = 2, sent twice as pycrafter4500 does when leaving video mode).

The 24 entries select 1-bit pattern numbers 0..23 = bit planes G0..G7, R0..R7, B0..B7; entry 0 waits for
the VSYNC trigger (``dmd.lut_first_trigger``, trigger type 1 = external positive) and swaps the frame buffer
(``dmd.lut_first_buffer_swap``), the others continue (trigger type 3).

Every USB command is sent with its own rolling sequence byte and its reply must be fresh: pycrafter4500
swallows USB read errors and keeps the previous reply in ``ans``, so ``ans`` is cleared before each command,
and a missing reply, a reply with another sequence byte (a late answer to an earlier command) or an empty
read reply is a failure. The command is retried ``dmd.usb_retries`` times (pending replies are drained
first); then :class:`DMDConfigError` is raised. A NACK (flag bit 5) on a fresh reply is a refusal.
``close()`` returns the DMD to video mode. Command codes, LUT entry encoding and the TRIG_OUT register
conversion are facts of :mod:`hardware.dlpc350_commands`.
"""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import numpy as np

from hardware.bitplanes import PLANES_PER_FRAME
from hardware.dlpc350_commands import (
    COMMANDS,
    LUT_TRIGGER_TYPES,
    REPLY_NACK,
    LutEntry,
    build_video_lut,
    decode_validation,
    trig_out_delay_us,
    trig_out_register,
)
from hardware.protocols import (
    BackendUnavailableError,
    DeviceNotFoundError,
    DMDConfigError,
    FramePresenter,
    HardwareError,
)
from hardware.rig import DMDConfig, RigConfigError
from hardware.timing import PatternClock, TimingError

__all__ = ["DLPC350DMD"]

def _le32(v: int) -> list[int]:
    return [v & 0xFF, v >> 8 & 0xFF, v >> 16 & 0xFF, v >> 24 & 0xFF]



class DLPC350DMD:
    """Real DMD: DLPC350 over USB (VID 0x0451, PID 0x6401) plus a frame presenter on its HDMI input.

    Use as a context manager: the DMD goes back to video mode on exit, also after an exception.

    Args:
        config: DMD section of the rig config.
        presenter: window on the DMD's HDMI screen (see :mod:`hardware.display`); needed for ``present``.
        lcr: an already connected ``pycrafter4500.dlpc350`` (tests); otherwise opened from USB on demand.
        sleep: pause between validation polls (tests pass a no-op).
    """

    def __init__(self, config: DMDConfig, presenter: FramePresenter | None = None, lcr: Any = None,
                 sleep: Any = time.sleep) -> None:
        self.config = config
        self.geometry = config.geometry()
        self.presenter = presenter
        self.lcr = lcr
        self.sleep = sleep
        self._device: Any = None
        self._configured = False
        self._seq = 0
        self.warnings: list[str] = []
        self.usb_faults: list[str] = []  # retried USB transactions (missing / stale replies)

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

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255: a zero-filled buffer never matches
        return self._seq

    @staticmethod
    def _reply_problem(ans: Any, seq: int, mode: str, printed: str) -> str | None:
        """Why ``ans`` is not a fresh reply to the command sent with ``seq`` (None when it is)."""
        if ans is None:
            return "no reply (USB read failed" + (f": {printed.strip()}" if printed.strip() else "") + ")"
        ans = list(ans)
        if len(ans) < 4:
            return f"short reply ({len(ans)} bytes)"
        if ans[1] != seq:
            return f"stale reply (sequence byte {ans[1]}, sent {seq})"
        if mode == "r" and not ans[0] & REPLY_NACK and (ans[2] | ans[3] << 8) == 0:
            return "empty read reply"
        return None

    def _drain(self) -> None:
        """Discard replies still queued on the IN endpoint (late answers to earlier commands)."""
        dev = getattr(self.lcr, "dlpc", None)
        for _ in range(4):
            try:
                dev.read(0x81, 64, 50)
            except Exception:  # noqa: BLE001 - USBError / timeout: nothing pending
                return

    def _transact(self, mode: str, key: str, data: list[int], what: str) -> list[int]:
        """Send one command and return its fresh reply (retried; DMDConfigError when none comes)."""
        self.open()
        cmd2, cmd3 = COMMANDS[key]
        attempts = self.config.usb_retries
        problem = ""
        for attempt in range(1, attempts + 1):
            seq = self._next_seq()
            self.lcr.ans = None
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):  # pycrafter4500 prints and swallows read errors
                    self.lcr.command(mode, seq, cmd2, cmd3, list(data))
            except OSError as exc:  # usb.core.USBError on write is an OSError
                raise HardwareError(f"USB error during DLPC350 {what}: {exc}; check the cable, power and that no "
                                    "other program (LightCrafter GUI) holds the device") from exc
            ans = getattr(self.lcr, "ans", None)
            problem = self._reply_problem(ans, seq, mode, printed.getvalue())
            if problem is None:
                if int(ans[0]) & REPLY_NACK:
                    raise DMDConfigError(f"the DLPC350 rejected (NACK) the {what} command")
                return [int(b) for b in ans]
            self.usb_faults.append(f"{what}: {problem} (attempt {attempt} of {attempts})")
            self._drain()
        raise DMDConfigError(f"no fresh reply from the DLPC350 to {what} after {attempts} attempt(s): {problem}; "
                             "check the USB connection (dmd.usb_retries sets the number of attempts)")

    def _write(self, key: str, data: list[int], what: str | None = None) -> list[int]:
        return self._transact("w", key, data, what or key)

    # -- configuration --------------------------------------------------------------------------------------
    def lut(self) -> list[LutEntry]:
        cfg = self.config
        return build_video_lut(1, cfg.led_select, cfg.invert, LUT_TRIGGER_TYPES[cfg.lut_first_trigger],
                               cfg.lut_first_buffer_swap)

    def configure(self, exposure_us: int | None = None, period_us: int | None = None) -> None:
        """Program pattern-sequence mode for video-port streaming and validate the LUT."""
        cfg = self.config
        exposure_us = int(cfg.exposure_us if exposure_us is None else exposure_us)
        period_us = int(cfg.frame_period_us if period_us is None else period_us)
        try:
            PatternClock(exposure_us, period_us, cfg.video_fps, min_dark_us=cfg.min_dark_us)
        except TimingError as exc:
            raise DMDConfigError(str(exc)) from exc
        if cfg.trigger_mode != "vsync":
            raise DMDConfigError(f"video-port streaming needs trigger_mode: vsync, got {cfg.trigger_mode!r}")
        if cfg.lut_first_trigger not in LUT_TRIGGER_TYPES:
            raise DMDConfigError(f"dmd.lut_first_trigger must be one of {sorted(LUT_TRIGGER_TYPES)}")
        try:
            rising = trig_out_register(cfg.trig_out1_rising_delay_us, "dmd.trig_out1_rising_delay_us")
            falling = trig_out_register(cfg.trig_out1_falling_delay_us, "dmd.trig_out1_falling_delay_us")
        except RigConfigError as exc:
            raise DMDConfigError(str(exc)) from exc
        lut = self.lut()
        n = len(lut)
        self._write("POWER_CONTROL", [0], "power on (leave standby)")
        self._write("PAT_START_STOP", [0], "pattern stop")
        self._write("DISP_MODE", [1], "display mode: pattern")
        self._write("PAT_DISP_MODE", [0], "pattern source: video port")
        self._write("PAT_CONFIG", [n - 1, 1, n - 1, 0], "pattern config")
        self._write("PAT_TRIG_MODE", [0], "trigger mode: vsync")
        self._write("PAT_EXPO_PRD", _le32(exposure_us) + _le32(period_us), "exposure / frame period")
        self._write("TRIG_OUT1_CTL", [int(cfg.trig_out1_invert), rising, falling], "TRIG_OUT_1 control")
        red, green, blue = (cfg.led_select >> 0) & 1, (cfg.led_select >> 1) & 1, (cfg.led_select >> 2) & 1
        # LEDs off -> manual control with every LED disabled; otherwise the sequencer drives them.
        self._write("LED_ENABLE", [0x00 if cfg.led_select == 0 else (0x08 | red | green << 1 | blue << 2)])
        self._write("LED_CURRENT", [int(c) for c in cfg.led_current])
        self._write("MBOX_CONTROL", [2], "open pattern mailbox")
        for address, entry in enumerate(lut):
            self._write("MBOX_ADDRESS", [address], f"mailbox address {address}")
            self._write("MBOX_DATA", list(entry.encode()), f"LUT entry {address}")
        self._write("MBOX_CONTROL", [0], "close mailbox")
        self.validate_lut()
        self._configured = True

    def validate_lut(self, max_polls: int = 50) -> int:
        """Run LUT validation; raise :class:`DMDConfigError` on fatal bits, keep warnings in ``self.warnings``."""
        self._write("LUT_VALID", [0], "LUT validation start")
        status = 0x80
        for _ in range(max_polls):
            ans = self._transact("r", "LUT_VALID", [], "LUT validation status read")
            status = ans[4]
            if not status & 0x80:
                break
            self.sleep(0.05)
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
        self._write("PAT_START_STOP", [2], "pattern start")
        self._write("PAT_START_STOP", [2], "pattern start")

    def stop(self) -> None:
        self._write("PAT_START_STOP", [0], "pattern stop")

    @property
    def late_frames(self) -> int:
        """Frames the presenter could not show on time (0 without a presenter)."""
        return int(getattr(self.presenter, "late_frames", 0))

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
            self._write("PAT_START_STOP", [0], "pattern stop")
            self._write("DISP_MODE", [0], "display mode: video")
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
                "lut_entries": PLANES_PER_FRAME, "lut_first_trigger": cfg.lut_first_trigger,
                "trig_out1": {"invert": cfg.trig_out1_invert,
                              "rising_delay_us": trig_out_delay_us(cfg.trig_out1_rising_delay_us),
                              "falling_delay_us": trig_out_delay_us(cfg.trig_out1_falling_delay_us)},
                "validation_warnings": list(self.warnings), "usb_faults": list(self.usb_faults)}

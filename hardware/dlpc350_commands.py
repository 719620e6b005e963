"""DLPC350 (DLP LightCrafter 4500) command set facts: no USB here, only what the bytes mean.

* :data:`COMMANDS` - (CMD2, CMD3) of the USB commands the backend sends (TI DLPU010);
* :class:`LutEntry` / :func:`build_video_lut` - the 3-byte pattern LUT entries (DLPU010 table 2-65) for
  video-port streaming: 24 1-bit entries = bit planes G0..G7, R0..R7, B0..B7, entry 0 waits for the VSYNC
  trigger (:data:`LUT_TRIGGER_TYPES`) and swaps the buffer, the others continue;
* :func:`trig_out_register` / :func:`trig_out_delay_us` - TRIG_OUT_1 edge delays in 107.2 ns register steps
  (0x00 = -20.05 us, 0xBB = 0, 0xD5 = +2.787 us); out of range is a :class:`RigConfigError`;
* :func:`decode_validation` - fatal errors and warnings of the LUT validation status byte;
* :func:`configure_command_count` - USB commands of one configure + start, for the timing model.

The backend that sends them is :mod:`hardware.dlpc350`; the rig config validates its DMD settings here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware.bitplanes import PLANES_PER_FRAME
from hardware.config_schema import RigConfigError
from hardware.protocols import DMDConfigError

__all__ = ["COMMANDS", "MAX_LUT_ENTRIES", "LUT_TRIGGER_TYPES", "REPLY_NACK", "LutEntry", "build_video_lut",
           "decode_validation", "trig_out_register", "trig_out_delay_us", "configure_command_count"]

MAX_LUT_ENTRIES = 128
TRIG_INTERNAL, TRIG_EXT_POSITIVE, TRIG_EXT_NEGATIVE, TRIG_CONTINUE = 0, 1, 2, 3
LUT_TRIGGER_TYPES = {"internal": TRIG_INTERNAL, "external_positive": TRIG_EXT_POSITIVE,
                     "external_negative": TRIG_EXT_NEGATIVE}
TRIG_OUT_STEP_US = 0.1072  # TRIG_OUT delay register step (107.2 ns)
TRIG_OUT_ZERO = 0xBB  # register value of zero delay
TRIG_OUT_MAX = 0xD5  # +2.787 us
REPLY_NACK = 0x20  # flag bit 5 of a reply

# (CMD2, CMD3) of the USB commands used here (TI DLPU010).
COMMANDS = {
    "POWER_CONTROL": (0x02, 0x00),
    "LED_CURRENT": (0x0B, 0x01),
    "LED_ENABLE": (0x1A, 0x07),
    "LUT_VALID": (0x1A, 0x1A),
    "DISP_MODE": (0x1A, 0x1B),
    "TRIG_OUT1_CTL": (0x1A, 0x1D),
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


def trig_out_register(delay_us: float, where: str = "TRIG_OUT delay") -> int:
    """DLPC350 TRIG_OUT delay register for ``delay_us`` (nearest 107.2 ns step); RigConfigError outside range."""
    reg = TRIG_OUT_ZERO + round(delay_us / TRIG_OUT_STEP_US)
    if not 0 <= reg <= TRIG_OUT_MAX:
        lo, hi = -TRIG_OUT_ZERO * TRIG_OUT_STEP_US, (TRIG_OUT_MAX - TRIG_OUT_ZERO) * TRIG_OUT_STEP_US
        raise RigConfigError(f"{where} = {delay_us} us is outside the DLPC350 range {lo:.2f} .. +{hi:.3f} us")
    return reg


def trig_out_delay_us(delay_us: float) -> float:
    """The delay actually applied for a requested ``delay_us`` (quantised to the register step)."""
    return (trig_out_register(delay_us) - TRIG_OUT_ZERO) * TRIG_OUT_STEP_US


def configure_command_count(lut_entries: int = PLANES_PER_FRAME, validation_polls: int = 1, start: bool = True) -> int:
    """USB commands of one :meth:`DLPC350DMD.configure` (+ :meth:`~DLPC350DMD.start`), for the timing model:
    10 settings, mailbox open and close, address + data per LUT entry, validation start and polls, start x 2."""
    return 10 + 2 + 2 * lut_entries + 1 + validation_polls + (2 if start else 0)


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


def build_video_lut(frames: int = 1, led_select: int = 0, invert: bool = False,
                    first_trigger: int = TRIG_EXT_POSITIVE, first_buffer_swap: bool = True) -> list[LutEntry]:
    """LUT for video-port streaming: ``24 * frames`` 1-bit entries (bit planes G0..B7 of each frame).

    The first entry of every frame waits for ``first_trigger`` (the VSYNC edge in trigger mode 0) and swaps
    the buffer; the rest continue. ``frames=1`` (24 entries) replays for every incoming frame, which is how
    any number of masks is streamed.
    """
    n = frames * PLANES_PER_FRAME
    if frames < 1 or n > MAX_LUT_ENTRIES:
        raise DMDConfigError(f"a LUT holds at most {MAX_LUT_ENTRIES} entries; {frames} frame(s) need {n}")
    out = []
    for k in range(n):
        first = k % PLANES_PER_FRAME == 0
        out.append(LutEntry(trig_type=first_trigger if first else TRIG_CONTINUE, pat_num=k % PLANES_PER_FRAME,
                            led_select=led_select, invert=invert, buf_swap=first and first_buffer_swap))
    return out


def decode_validation(status: int) -> tuple[list[str], list[str]]:
    """Split a LUT validation status byte into (fatal errors, warnings)."""
    errors, warnings = [], []
    for bit, (text, fatal) in _VALIDATION_BITS.items():
        if status >> bit & 1:
            (errors if fatal else warnings).append(text)
    return errors, warnings

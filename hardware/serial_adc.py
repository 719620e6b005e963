"""Serial ADC detector (pyserial) speaking the line protocol of docs/serial-adc-protocol.md.

``SerialADC`` is the host side; ``MockSerialDevice`` emulates a device (a pyserial-like object with
``write``/``readline``) for tests, including faults: an ``ERR`` line, a dropped index, a bad checksum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.protocols import BackendUnavailableError, DetectorError, DetectorTimeoutError
from hardware.rig import SerialConfig

__all__ = ["SerialADC", "MockSerialDevice", "checksum", "format_sample", "parse_sample"]


def checksum(payload: str) -> str:
    """XOR of the ASCII bytes of ``payload`` as two upper-case hex digits."""
    x = 0
    for b in payload.encode("ascii"):
        x ^= b
    return f"{x:02X}"


def format_sample(index: int, value: float, with_checksum: bool) -> str:
    """One sample line without the newline: ``<index>,<value>[*hh]``."""
    body = f"{index},{value:.6g}" if isinstance(value, float) else f"{index},{value}"
    return f"{body}*{checksum(body)}" if with_checksum else body


def parse_sample(line: str, with_checksum: bool) -> tuple[int, float]:
    """Parse a sample line; raise :class:`DetectorError` when malformed or the checksum is wrong."""
    body = line
    if "*" in line:
        body, _, hh = line.partition("*")
        if hh.upper() != checksum(body):
            raise DetectorError(f"serial ADC: checksum mismatch in {line!r} (expected *{checksum(body)})")
    elif with_checksum:
        raise DetectorError(f"serial ADC: sample line {line!r} has no checksum but checksums are enabled")
    idx, sep, val = body.partition(",")
    try:
        if not sep:
            raise ValueError("missing comma")
        return int(idx), float(val)
    except ValueError as exc:
        raise DetectorError(f"serial ADC: malformed sample line {line!r} ({exc}); expected '<index>,<value>'") from exc


class SerialADC:
    """Detector over a serial port.

    Args:
        config: ``detector.serial`` section.
        full_scale: saturation level in device units.
        port: an open pyserial-like object (tests); otherwise ``serial.serial_for_url(config.port)``.
    """

    def __init__(self, config: SerialConfig, full_scale: float = 4095.0, port: Any = None) -> None:
        self.config = config
        self.full_scale = full_scale
        if port is None:
            try:
                import serial
            except ImportError as exc:
                raise BackendUnavailableError(f"the serial ADC needs pyserial ({exc}): pip install pyserial") from exc
            try:
                port = serial.serial_for_url(config.port, baudrate=config.baudrate, timeout=config.line_timeout_s)
            except serial.SerialException as exc:
                raise DetectorError(f"cannot open serial port {config.port!r}: {exc}") from exc
        self.port = port
        self._n: int | None = None
        self.ident = self.identify()
        self._command(f"CHK {int(config.checksum)}")

    def _send(self, line: str) -> None:
        self.port.write((line + "\n").encode("ascii"))

    def _readline(self) -> str | None:
        raw = self.port.readline()
        if not raw:
            return None
        return raw.decode("ascii", errors="replace").rstrip("\r\n")

    def _command(self, line: str, expect: str = "OK") -> str:
        self._send(line)
        reply = self._readline()
        if reply is None:
            raise DetectorTimeoutError(f"serial ADC did not answer {line!r} within {self.config.line_timeout_s} s")
        if reply.startswith("ERR"):
            raise DetectorError(f"serial ADC refused {line!r}: {reply[3:].strip()}")
        if not reply.startswith(expect):
            raise DetectorError(f"serial ADC answered {reply!r} to {line!r}, expected {expect!r}")
        return reply

    def identify(self) -> str:
        """Send ``ID?`` and return the identification text."""
        return self._command("ID?", expect="ID ")[3:].strip()

    def arm(self, n_patterns: int, pattern_rate_hz: float = 0.0) -> None:
        if n_patterns < 1:
            raise ValueError(f"n_patterns must be >= 1, got {n_patterns}")
        self._command(f"ARM {n_patterns}")
        self._n = n_patterns

    def read(self, timeout_s: float) -> np.ndarray:
        """Collect the armed samples, checking index continuity, checksums and the DONE count."""
        if self._n is None:
            raise DetectorError("read() without arm()")
        n, self._n = self._n, None
        values = np.empty(n, dtype=np.float64)
        expected = 0
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._readline()
            if line is None:
                if time.monotonic() > deadline:
                    self.abort()
                    raise DetectorTimeoutError(f"serial ADC timed out after {timeout_s:.2f} s with {expected} of {n} "
                                               "samples: is TRIG_OUT_1 wired to the ADC trigger input?")
                continue
            if line.startswith("ERR"):
                raise DetectorError(f"serial ADC error during acquisition after {expected} samples: {line[3:].strip()}")
            if line.startswith("DONE"):
                try:
                    count = int(line[4:].strip())
                except ValueError as exc:
                    raise DetectorError(f"serial ADC: malformed {line!r}") from exc
                if count != n or expected != n:
                    raise DetectorError(f"serial ADC finished with DONE {count} after {expected} samples, armed {n}")
                return values
            idx, val = parse_sample(line, self.config.checksum)
            if idx != expected:
                what = "missing" if idx > expected else "repeated"
                raise DetectorError(f"serial ADC: sample index {expected} {what} (got index {idx}); the device lost a "
                                    "trigger or the line was dropped")
            if idx >= n:
                raise DetectorError(f"serial ADC sent index {idx} beyond the {n} armed samples")
            values[idx] = val
            expected += 1

    def abort(self) -> None:
        """Send ``ABORT`` and drain until its ``OK`` (or silence)."""
        self._n = None
        self._send("ABORT")
        for _ in range(100000):
            line = self._readline()
            if line is None or line == "OK":
                return

    def close(self) -> None:
        self.port.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": "serial", "port": self.config.port, "baudrate": self.config.baudrate, "id": self.ident,
                "checksum": self.config.checksum, "full_scale": self.full_scale}


class MockSerialDevice:
    """In-memory device implementing the protocol (pyserial-like ``write``/``readline``/``close``).

    Args:
        source: ``n -> values [n]`` sampled when the acquisition streams (after ARM, on first read).
        ident: reply to ``ID?``.
        drop_index: skip this sample index (fault).
        error_after: send ``ERR overrun`` after this many samples (fault).
        bad_checksum_at: corrupt the checksum of this index (fault).
        max_samples: larger ``ARM`` requests are refused with ``ERR``.
    """

    def __init__(self, source: Callable[[int], np.ndarray] | None = None, ident: str = "mock-adc v1 16bit",
                 drop_index: int | None = None, error_after: int | None = None, bad_checksum_at: int | None = None,
                 max_samples: int = 100000) -> None:
        self.source = source or (lambda n: np.linspace(100.0, 200.0, n))
        self.ident = ident
        self.drop_index, self.error_after, self.bad_checksum_at = drop_index, error_after, bad_checksum_at
        self.max_samples = max_samples
        self.checksums = False
        self.armed: int | None = None
        self.out: list[str] = []
        self.written: list[str] = []
        self.closed = False
        self.timeout = 0.0

    def write(self, data: bytes) -> int:
        for line in data.decode("ascii").splitlines():
            self.written.append(line)
            self._handle(line.strip())
        return len(data)

    def _handle(self, line: str) -> None:
        cmd, _, arg = line.partition(" ")
        if cmd == "ID?":
            self.out.append(f"ID {self.ident}")
        elif cmd == "CHK" and arg in ("0", "1"):
            self.checksums = arg == "1"
            self.out.append("OK")
        elif cmd == "ARM":
            if not arg.isdigit() or not 1 <= int(arg) <= self.max_samples:
                self.out.append(f"ERR bad sample count {arg!r} (1..{self.max_samples})")
                return
            self.armed = int(arg)
            self.out.append("OK")
        elif cmd == "ABORT":
            self.armed = None
            self.out = []
            self.out.append("OK")
        else:
            self.out.append(f"ERR unknown command {line!r}")

    def _stream(self) -> None:
        n, self.armed = self.armed, None
        values = np.asarray(self.source(n), dtype=np.float64)
        for i in range(n):
            if self.error_after is not None and i == self.error_after:
                self.out.append("ERR overrun")
                return
            if i == self.drop_index:
                continue
            line = format_sample(i, float(values[i]), self.checksums)
            if i == self.bad_checksum_at and self.checksums:
                line = line[:-2] + ("00" if line[-2:] != "00" else "11")
            self.out.append(line)
        self.out.append(f"DONE {n}")

    def readline(self) -> bytes:
        if not self.out and self.armed is not None:
            self._stream()
        if not self.out:
            return b""
        return (self.out.pop(0) + "\n").encode("ascii")

    def reset_input_buffer(self) -> None:
        self.out = []

    def close(self) -> None:
        self.closed = True

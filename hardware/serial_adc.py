"""Serial ADC detector (pyserial) speaking the line protocol of docs/serial-adc-protocol.md (version 2).

``SerialADC`` is the host side; ``MockSerialDevice`` emulates a device (a pyserial-like object with
``write``/``readline``/``reset_input_buffer``) for tests, including faults: stale input at open, an
``ERR`` line, a dropped index, a bad checksum, a sample before the ``START`` handshake.

Host rules added in version 2: stale input is flushed on open and before every ``ARM``; the sampling edge
is set with ``EDGE F`` (end of exposure, default) or ``EDGE R``; after ``ARM n`` the device answers ``OK``,
waits for the sequence start (TRIG_OUT_2) and sends ``START`` before sample 0, so the first sample belongs
to the first pattern; checksum, index, handshake and overrun errors abort the acquisition (the input is
drained) and raise :class:`~hardware.protocols.TransientDetectorError`, which the capture loop retries. The
full scale is in ADC counts: ``detector.serial.adc_bits`` or the ``<n>bit`` of the device's ``ID`` reply.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.protocols import BackendUnavailableError, DetectorError, DetectorTimeoutError, TransientDetectorError
from hardware.rig import RigConfig, RigConfigError, SerialConfig
from hardware.timing import PatternClock

__all__ = ["SerialADC", "MockSerialDevice", "checksum", "format_sample", "parse_sample", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 2
_EDGES = {"end": "F", "start": "R"}


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
    """Parse a sample line; raise :class:`TransientDetectorError` when malformed or the checksum is wrong."""
    body = line
    if "*" in line:
        body, _, hh = line.partition("*")
        if hh.upper() != checksum(body):
            raise TransientDetectorError(f"serial ADC: checksum mismatch in {line!r} (expected *{checksum(body)})")
    elif with_checksum:
        raise TransientDetectorError(f"serial ADC: sample line {line!r} has no checksum but checksums are enabled")
    idx, sep, val = body.partition(",")
    try:
        if not sep:
            raise ValueError("missing comma")
        return int(idx), float(val)
    except ValueError as exc:
        raise TransientDetectorError(f"serial ADC: malformed sample line {line!r} ({exc}); expected "
                                     "'<index>,<value>'") from exc


class SerialADC:
    """Detector over a serial port.

    Args:
        config: ``detector.serial`` section.
        port: an open pyserial-like object (tests); otherwise ``serial.serial_for_url(config.port)``.
        full_scale: saturation level in counts; default ``2**adc_bits - 1`` (config, else the ID reply).
        sampling_point: ``end`` (sample on TRIG_OUT_1's falling edge) or ``start``.
    """

    def __init__(self, config: SerialConfig, port: Any = None, full_scale: float | None = None,
                 sampling_point: str = "end") -> None:
        if sampling_point not in _EDGES:
            raise RigConfigError("the serial ADC samples on an edge: sampling point end or start, got "
                                 f"{sampling_point!r}")
        self.config = config
        self.sampling_point = sampling_point
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
        self.flushed = self.flush()  # stale lines from before this session (a previous run, a reset)
        self.ident = self.identify()
        self.full_scale = float(full_scale if full_scale is not None else 2 ** self._adc_bits() - 1)
        self._command(f"CHK {int(config.checksum)}")
        self._command(f"EDGE {_EDGES[sampling_point]}")

    @classmethod
    def from_rig(cls, rig: RigConfig, port: Any = None) -> SerialADC:
        return cls(rig.detector.serial, port, sampling_point=rig.detector.sampling.point)

    def _adc_bits(self) -> int:
        if self.config.adc_bits is not None:
            return int(self.config.adc_bits)
        m = re.search(r"(\d+)\s*-?\s*bit", self.ident, re.IGNORECASE)
        if not m:
            raise RigConfigError(f"serial ADC {self.ident!r} does not state its resolution (no '<n>bit' in its ID "
                                 "reply): set detector.serial.adc_bits so saturation is judged in ADC counts")
        return int(m.group(1))

    def _send(self, line: str) -> None:
        self.port.write((line + "\n").encode("ascii"))

    def _readline(self) -> str | None:
        raw = self.port.readline()
        if not raw:
            return None
        return raw.decode("ascii", errors="replace").rstrip("\r\n")

    def flush(self, max_lines: int = 100000) -> int:
        """Discard pending input (``reset_input_buffer`` and any lines already queued); returns lines dropped."""
        reset = getattr(self.port, "reset_input_buffer", None)
        if reset is not None:
            reset()
        dropped = 0
        for _ in range(max_lines):
            if getattr(self.port, "in_waiting", 0) <= 0:
                break
            if self._readline() is None:
                break
            dropped += 1
        return dropped

    def _command(self, line: str, expect: str = "OK") -> str:
        self._send(line)
        reply = self._readline()
        if reply is None:
            raise DetectorTimeoutError(f"serial ADC did not answer {line!r} within {self.config.line_timeout_s} s")
        if reply.startswith("ERR"):
            hint = " (the device speaks protocol version 1: update its firmware to version 2, " \
                   "docs/serial-adc-protocol.md)" if line.startswith("EDGE") else ""
            raise DetectorError(f"serial ADC refused {line!r}: {reply[3:].strip()}{hint}")
        if not reply.startswith(expect):
            raise DetectorError(f"serial ADC answered {reply!r} to {line!r}, expected {expect!r}")
        return reply

    def identify(self) -> str:
        """Send ``ID?`` and return the identification text."""
        return self._command("ID?", expect="ID ")[3:].strip()

    def arm(self, n_patterns: int, clock: PatternClock | None = None) -> None:
        if n_patterns < 1:
            raise ValueError(f"n_patterns must be >= 1, got {n_patterns}")
        self.flush()
        self._command(f"ARM {n_patterns}")
        self._n = n_patterns

    def _fail(self, message: str, transient: bool = True) -> DetectorError:
        """Abort the acquisition (drain its remaining lines) and build the error to raise."""
        self.abort()
        return (TransientDetectorError if transient else DetectorError)(message)

    def read(self, timeout_s: float) -> np.ndarray:
        """Collect the armed samples: START handshake, index continuity, checksums, the DONE count."""
        if self._n is None:
            raise DetectorError("read() without arm()")
        n, self._n = self._n, None
        values = np.empty(n, dtype=np.float64)
        expected = 0
        started = False
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._readline()
            if line is None:
                if time.monotonic() > deadline:
                    self.abort()
                    raise DetectorTimeoutError(f"serial ADC timed out after {timeout_s:.2f} s with {expected} of {n} "
                                               "samples: are TRIG_OUT_1/TRIG_OUT_2 wired to the ADC's trigger inputs?")
                continue
            if line.startswith("ERR"):
                raise self._fail(f"serial ADC error during acquisition after {expected} samples: {line[3:].strip()}")
            if line.startswith("START"):
                if started:
                    raise self._fail("serial ADC sent START twice in one acquisition")
                started = True
                continue
            if not started:
                raise self._fail(f"serial ADC sent {line!r} before the START handshake: stale data or a device "
                                 "that does not wait for the sequence start (protocol version 2)")
            if line.startswith("DONE"):
                try:
                    count = int(line[4:].strip())
                except ValueError:
                    raise self._fail(f"serial ADC: malformed {line!r}") from None
                if count != n or expected != n:
                    raise self._fail(f"serial ADC finished with DONE {count} after {expected} samples, armed {n}")
                return values
            try:
                idx, val = parse_sample(line, self.config.checksum)
            except TransientDetectorError as exc:
                raise self._fail(str(exc)) from None
            if idx != expected:
                what = "missing" if idx > expected else "repeated"
                raise self._fail(f"serial ADC: sample index {expected} {what} (got index {idx}); the device lost a "
                                 "trigger or the line was dropped")
            if idx >= n:
                raise self._fail(f"serial ADC sent index {idx} beyond the {n} armed samples")
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
                "checksum": self.config.checksum, "full_scale_counts": self.full_scale,
                "sampling_edge": _EDGES[self.sampling_point], "protocol": PROTOCOL_VERSION,
                "stale_lines_flushed": self.flushed}


class MockSerialDevice:
    """In-memory device implementing the protocol (pyserial-like ``write``/``readline``/``close``).

    Args:
        source: ``n -> values [n]`` sampled when the acquisition streams (after ARM, on first read).
        ident: reply to ``ID?``.
        drop_index, error_after, bad_checksum_at: faults (skip an index, ``ERR overrun``, corrupt a checksum).
        early_sample: send a stray sample line before ``START`` (fault).
        fault_acquisitions: the faults above hit only the first this-many acquisitions (None = all).
        stale: lines pending in the input buffer when the host opens the port (a previous session's tail).
        protocol: 1 = no ``EDGE`` command and no ``START`` line (an old firmware).
        max_samples: larger ``ARM`` requests are refused with ``ERR``.
    """

    def __init__(self, source: Callable[[int], np.ndarray] | None = None, ident: str = "mock-adc v2 16bit",
                 drop_index: int | None = None, error_after: int | None = None, bad_checksum_at: int | None = None,
                 early_sample: bool = False, fault_acquisitions: int | None = None, stale: list[str] | None = None,
                 protocol: int = PROTOCOL_VERSION, max_samples: int = 100000) -> None:
        self.source = source or (lambda n: np.linspace(100.0, 200.0, n))
        self.ident = ident
        self.drop_index, self.error_after, self.bad_checksum_at = drop_index, error_after, bad_checksum_at
        self.early_sample = early_sample
        self.fault_acquisitions = fault_acquisitions
        self.protocol = protocol
        self.max_samples = max_samples
        self.checksums = False
        self.edge = "R"
        self.armed: int | None = None
        self.acquisitions = 0
        self.out: list[str] = list(stale or [])
        self.written: list[str] = []
        self.closed = False
        self.timeout = 0.0

    @property
    def in_waiting(self) -> int:
        return sum(len(line) + 1 for line in self.out)

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
        elif cmd == "EDGE" and self.protocol >= 2 and arg in ("R", "F"):
            self.edge = arg
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
        faulty = self.fault_acquisitions is None or self.acquisitions < self.fault_acquisitions
        self.acquisitions += 1
        values = np.asarray(self.source(n), dtype=np.float64)
        if faulty and self.early_sample:
            self.out.append(format_sample(0, 1.0, self.checksums))
        if self.protocol >= 2:
            self.out.append("START")
        for i in range(n):
            if faulty and self.error_after is not None and i == self.error_after:
                self.out.append("ERR overrun")
                return
            if faulty and i == self.drop_index:
                continue
            line = format_sample(i, float(values[i]), self.checksums)
            if faulty and i == self.bad_checksum_at and self.checksums:
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
        """Like pyserial, discards bytes already received; lines the mock has not 'sent' yet stay."""
        self.out = []

    def close(self) -> None:
        self.closed = True

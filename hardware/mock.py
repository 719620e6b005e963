"""Mock backends that record every call, and a fault injector for robustness tests.

* :class:`MockDMD`, :class:`MockDetector`, :class:`MockSceneDisplay` satisfy the Protocols of
  :mod:`hardware.protocols` and append ``(method, args)`` to ``calls``.
* :class:`FaultInjector` wraps any backend and raises a chosen exception on a seeded random subset of
  calls, to exercise the capture loop's error paths.
* :class:`MockDLPC350Device` is a pyusb-like DLPC350 (HID reports in, replies out) with injectable USB
  faults: lost replies (read time-outs), late replies (answer arrives one read later), NACKs, and a scripted
  LUT validation status.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.bitplanes import DMDGeometry, unpack_frames
from hardware.protocols import DetectorTimeoutError, HardwareError

__all__ = ["MockDMD", "MockDetector", "MockSceneDisplay", "FaultInjector", "InjectedFault", "MockDLPC350Device"]


class InjectedFault(HardwareError):
    """Raised by :class:`FaultInjector`."""


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def names(self) -> list[str]:
        """Method names in call order."""
        return [c[0] for c in self.calls]


class MockDMD(_Recorder):
    """Records configuration and keeps the unpacked patterns of every ``present`` call in ``shown``."""

    def __init__(self, geometry: DMDGeometry | None = None) -> None:
        super().__init__()
        self.geometry = geometry or DMDGeometry()
        self.running = False
        self.shown: list[np.ndarray] = []
        self.late_frames = 0  # raise it in a test to fake a presenter that missed frames

    def configure(self, exposure_us: int, period_us: int) -> None:
        self._rec("configure", exposure_us, period_us)

    def start(self) -> None:
        self._rec("start")
        self.running = True

    def stop(self) -> None:
        self._rec("stop")
        self.running = False

    def present(self, frames: np.ndarray) -> None:
        self._rec("present", frames.shape)
        self.shown.append(self.geometry.extract(unpack_frames(frames)[..., None])[..., 0])

    def close(self) -> None:
        self._rec("close")
        self.running = False

    def describe(self) -> dict[str, Any]:
        return {"backend": "mock"}


class MockDetector(_Recorder):
    """Returns ``values(n)`` (default: ``0.1 + 0.001 * arange(n)``) for each armed acquisition."""

    def __init__(self, values: Callable[[int], np.ndarray] | None = None, full_scale: float = 10.0) -> None:
        super().__init__()
        self.values = values or (lambda n: 0.1 + 0.001 * np.arange(n, dtype=np.float64))
        self.full_scale = full_scale
        self._armed: int | None = None

    def arm(self, n_patterns: int, clock: Any) -> None:
        self._rec("arm", n_patterns, clock)
        self._armed = n_patterns

    def read(self, timeout_s: float) -> np.ndarray:
        self._rec("read", timeout_s)
        if self._armed is None:
            raise DetectorTimeoutError("mock detector read without arm()")
        n, self._armed = self._armed, None
        return np.asarray(self.values(n), dtype=np.float64)

    def abort(self) -> None:
        self._rec("abort")
        self._armed = None

    def close(self) -> None:
        self._rec("close")

    def describe(self) -> dict[str, Any]:
        return {"backend": "mock"}


class MockSceneDisplay(_Recorder):
    """Keeps the last image shown."""

    def __init__(self, settle_s: float = 0.0) -> None:
        super().__init__()
        self.settle_s = settle_s
        self.last: np.ndarray | None = None

    def show(self, image: Any) -> None:
        self._rec("show", np.shape(image))
        self.last = np.asarray(image)

    def close(self) -> None:
        self._rec("close")

    def describe(self) -> dict[str, Any]:
        return {"backend": "mock"}


class FaultInjector:
    """Proxy raising ``exc_factory()`` on a call to one of ``methods`` with probability ``rate``.

    Args:
        target: backend to wrap (attribute access is forwarded).
        methods: method names that may fail.
        rate: failure probability per call.
        seed: RNG seed (the sequence of faults is reproducible).
        exc_factory: builds the exception; default :class:`InjectedFault`.
        max_faults: stop injecting after this many faults (None = unlimited).
    """

    def __init__(self, target: Any, methods: tuple[str, ...], rate: float, seed: int = 0,
                 exc_factory: Callable[[str], BaseException] | None = None, max_faults: int | None = None) -> None:
        self._target = target
        self._methods = set(methods)
        self._rate = rate
        self._rng = random.Random(seed)
        self._exc = exc_factory or (lambda name: InjectedFault(f"injected fault in {name}()"))
        self._max = max_faults
        self.faults = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._methods or not callable(attr):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if (self._max is None or self.faults < self._max) and self._rng.random() < self._rate:
                self.faults += 1
                raise self._exc(name)
            return attr(*args, **kwargs)

        return wrapped


class MockDLPC350Device:
    """A DLPC350 on USB as pyusb sees it: ``write(1, report)``, ``read(0x81, 64[, timeout])``.

    Replies echo the request's flags (plus the NACK bit 0x20 where refused) and sequence byte, carry the
    payload length in bytes 2-3 and the payload from byte 4 (the LUT validation status for a 0x1A1A read).

    Args:
        statuses: validation status bytes returned by successive 0x1A1A reads (the last one repeats).
        nack_on: ``(cmd2, cmd3)`` answered with a NACK.
        faults: ``{(cmd2, cmd3, "r" | "w"): ["timeout" | "late", ...]}``; each reply to a matching command
            takes the next fault: ``timeout`` loses the reply (the read times out), ``late`` keeps it queued
            so that the read times out and the reply comes out of a later read instead.
    """

    def __init__(self, statuses: list[int] | None = None, nack_on: tuple[int, int] | None = None,
                 faults: dict[tuple[int, int, str], list[str]] | None = None) -> None:
        self.packets: list[bytes] = []
        self.statuses = list(statuses or [0x00])
        self.nack_on = nack_on
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.pending: list[list[int]] = []  # queued replies, oldest first
        self._hold = 0  # reads to fail before the head of the queue is delivered ("late")
        self.timeouts = 0
        self.configured = False

    def set_configuration(self) -> None:
        self.configured = True

    def write(self, endpoint: int, buffer: list[int], timeout: int | None = None) -> int:
        assert endpoint == 1, f"HID reports go to endpoint 1, got {endpoint}"
        assert len(buffer) == 64 and all(0 <= b <= 255 for b in buffer), "a HID report is 64 bytes"
        pkt = bytes(buffer)
        self.packets.append(pkt)
        flags, seq, cmd = pkt[0], pkt[1], (pkt[5], pkt[4])
        mode = "r" if flags & 0x80 else "w"
        data: list[int] = []
        if mode == "r" and cmd == (0x1A, 0x1A):
            data = [self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]]
        nack = 0x20 if self.nack_on == cmd else 0
        reply = [(flags & 0xC0) | nack, seq, len(data) & 0xFF, len(data) >> 8] + data
        fault = self.faults.get(cmd + (mode,), [])
        kind = fault.pop(0) if fault else None
        if kind == "timeout":
            return 64  # reply lost
        self.pending.append(reply + [0] * (64 - len(reply)))
        if kind == "late":
            self._hold += 1
        return 64

    def read(self, endpoint: int, size: int, timeout: int | None = None) -> list[int]:
        import usb.core

        assert endpoint == 0x81 and size == 64
        if self._hold or not self.pending:
            self._hold = max(self._hold - 1, 0)
            self.timeouts += 1
            raise usb.core.USBError("Operation timed out", errno=110)
        return self.pending.pop(0)

    def reset(self) -> None:
        pass

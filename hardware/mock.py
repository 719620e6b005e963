"""Mock backends that record every call, and a fault injector for robustness tests.

* :class:`MockDMD`, :class:`MockDetector`, :class:`MockSceneDisplay` satisfy the Protocols of
  :mod:`hardware.protocols` and append ``(method, args)`` to ``calls``.
* :class:`FaultInjector` wraps any backend and raises a chosen exception on a seeded random subset of
  calls, to exercise the capture loop's error paths.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.bitplanes import DMDGeometry, unpack_frames
from hardware.protocols import DetectorTimeoutError, HardwareError

__all__ = ["MockDMD", "MockDetector", "MockSceneDisplay", "FaultInjector", "InjectedFault"]


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

    def arm(self, n_patterns: int, pattern_rate_hz: float) -> None:
        self._rec("arm", n_patterns, pattern_rate_hz)
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

"""NI-DAQmx detector: PDA100A2 photodiode on an analog input, clocked by the DMD's trigger outputs.

Two modes (``detector.nidaqmx.oversample``, ``detector.sampling.point``):

* ``1`` (point ``end`` or ``start``) - one sample per pattern: the sample clock is external, DMD TRIG_OUT_1
  wired to ``sample_clock`` (PFI0), sampled on its *falling* edge for ``end`` (end of the exposure, moved
  by ``dmd.trig_out1_falling_delay_us``) or its rising edge for ``start`` (swapped when TRIG_OUT_1 is
  inverted); the acquisition starts on TRIG_OUT_2 wired to ``start_trigger`` (PFI1). A finite task of
  ``n`` samples.
* ``k > 1`` (point ``integrate``) - oversampled: the onboard clock runs at ``k x`` the *burst* rate of the
  :class:`~hardware.timing.PatternClock` (``1e6 / period_us``, not the VSYNC-limited average, which would
  drift at 60 Hz), and the start trigger (TRIG_OUT_2, once per frame) is retriggerable: every frame
  acquires ``24 k`` samples, so the clock is re-aligned at each VSYNC. Each pattern's ``k`` samples are
  averaged after dropping the first ``settle_samples``. Needs an X-series board (retriggerable AI).

``nidaqmx`` is imported lazily so the rest of the package works without it. With nidaqmx installed but no
NI-DAQmx driver, nidaqmx raises ``DaqNotFoundError`` (not a ``DaqError``); it becomes
:class:`~hardware.protocols.DeviceNotFoundError` with the install command.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from hardware.protocols import BackendUnavailableError, DetectorError, DetectorTimeoutError, DeviceNotFoundError
from hardware.rig import PDA100A2_GAINS_DB, NIDAQConfig, RigConfig, RigConfigError
from hardware.timing import PatternClock

__all__ = ["NIDAQDetector", "DAQMX_TIMEOUT_CODE"]

DAQMX_TIMEOUT_CODE = -200284  # "Some or all of the samples requested have not yet been acquired"


def _import_nidaqmx() -> Any:
    try:
        import nidaqmx
        import nidaqmx.constants  # noqa: F401
        import nidaqmx.errors  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the NI-DAQmx detector needs the nidaqmx package and NI-DAQmx drivers ({exc}); install with "
            "`pip install nidaqmx` and `python -m nidaqmx installdriver`, or use detector.backend: serial/sim"
        ) from exc
    return nidaqmx


class NIDAQDetector:
    """Finite, trigger-clocked analog acquisition of one value per DMD pattern.

    Args:
        config: ``detector.nidaqmx`` section.
        gain_db: PDA100A2 gain switch setting (recorded in metadata; 0-70 dB in 10 dB steps).
        full_scale: saturation level in volts (readings at or above it count as saturated).
        sampling_point: ``end`` | ``start`` | ``integrate`` (``detector.sampling.point``).
        trig_out1_inverted: TRIG_OUT_1 is active low (``dmd.trig_out1_invert``): edges swap.
        module: the ``nidaqmx`` module (tests pass a fake); imported lazily when None.
    """

    def __init__(self, config: NIDAQConfig, gain_db: int = 40, full_scale: float = 10.0, sampling_point: str = "end",
                 trig_out1_inverted: bool = False, module: Any = None) -> None:
        if gain_db not in PDA100A2_GAINS_DB:
            raise RigConfigError(f"PDA100A2 gain must be one of {list(PDA100A2_GAINS_DB)} dB, got {gain_db}")
        if config.oversample < 1 or not 0 <= config.settle_samples < config.oversample:
            raise RigConfigError(f"oversample must be >= 1 and settle_samples in [0, oversample) (0 without "
                                 f"oversampling), got {config.oversample}, {config.settle_samples}")
        if config.v_min >= config.v_max:
            raise RigConfigError(f"v_min ({config.v_min}) must be below v_max ({config.v_max})")
        if (sampling_point == "integrate") != (config.oversample > 1):
            raise RigConfigError(f"sampling point {sampling_point!r} needs oversample "
                                 f"{'> 1' if sampling_point == 'integrate' else '1'}, got {config.oversample}")
        self.sampling_point = sampling_point
        self.trig_out1_inverted = trig_out1_inverted
        self.config = config
        self.gain_db = gain_db
        self.full_scale = min(full_scale, config.v_max)
        self._nidaqmx = module
        self._task: Any = None
        self._n = 0
        self._frames = 0

    @classmethod
    def from_rig(cls, rig: RigConfig, module: Any = None) -> NIDAQDetector:
        det = rig.detector
        return cls(det.nidaqmx, det.gain_db, det.full_scale, det.sampling.point, rig.dmd.trig_out1_invert, module)

    @property
    def clock_edge(self) -> str:
        """TRIG_OUT_1 edge that clocks the samples (``end``: falling, ``start``: rising; swapped if inverted)."""
        falling = (self.sampling_point == "end") != self.trig_out1_inverted
        return "falling" if falling else "rising"

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        """nidaqmx errors that are not DaqError: no NI-DAQmx driver, or an unsupported one."""
        errors = self.nidaqmx.errors
        return tuple(getattr(errors, n) for n in ("DaqNotFoundError", "DaqNotSupportedError",
                                                   "DaqFunctionNotSupportedError") if hasattr(errors, n))

    def _no_driver(self, exc: BaseException) -> DeviceNotFoundError:
        return DeviceNotFoundError(
            f"NI-DAQmx is not usable on this machine ({type(exc).__name__}: {exc}); the nidaqmx Python package is "
            "installed but the NI-DAQmx driver is not: run `python -m nidaqmx installdriver` (or install NI-DAQmx "
            "from ni.com), or use detector.backend: serial / --simulate")

    @property
    def nidaqmx(self) -> Any:
        if self._nidaqmx is None:
            self._nidaqmx = _import_nidaqmx()
        return self._nidaqmx

    def _terminal(self, name: str) -> str:
        return name if name.startswith("/") else f"/{self.config.device}/{name}"

    def _edge(self, name: str) -> Any:
        edges = self.nidaqmx.constants.Edge
        if name not in ("rising", "falling"):
            raise RigConfigError(f"edge must be rising or falling, got {name!r}")
        return edges.RISING if name == "rising" else edges.FALLING

    def arm(self, n_patterns: int, clock: PatternClock) -> None:
        """Create and start a finite task for ``n_patterns`` patterns; it waits for the start trigger."""
        if n_patterns < 1:
            raise ValueError(f"n_patterns must be >= 1, got {n_patterns}")
        self.abort()
        cfg, mx = self.config, self.nidaqmx
        consts = mx.constants
        try:
            terminal = getattr(consts.TerminalConfiguration, cfg.terminal)
        except AttributeError as exc:
            raise RigConfigError(f"unknown terminal configuration {cfg.terminal!r} (RSE, NRSE, DIFF, PSEUDO_DIFF, "
                                 "DEFAULT)") from exc
        if clock.burst_rate_hz * cfg.oversample > cfg.max_rate_hz:
            raise RigConfigError(f"{cfg.oversample} sample(s) per pattern at {clock.burst_rate_hz:,.1f} patterns/s "
                                 "need "
                                 f"{clock.burst_rate_hz * cfg.oversample:,.0f} S/s > detector.nidaqmx.max_rate_hz "
                                 f"{cfg.max_rate_hz:,.0f}")
        try:
            task = mx.Task()
        except self._driver_errors() as exc:
            raise self._no_driver(exc) from exc
        frames = clock.frames_for(n_patterns)
        try:
            task.ai_channels.add_ai_voltage_chan(f"{cfg.device}/{cfg.channel}", terminal_config=terminal,
                                                 min_val=cfg.v_min, max_val=cfg.v_max)
            if cfg.oversample == 1:
                task.timing.cfg_samp_clk_timing(cfg.max_rate_hz, source=self._terminal(cfg.sample_clock),
                                                active_edge=self._edge(self.clock_edge),
                                                sample_mode=consts.AcquisitionType.FINITE, samps_per_chan=n_patterns)
            else:  # one retriggered burst of 24 k samples per frame, on the pattern (burst) clock
                task.timing.cfg_samp_clk_timing(clock.burst_rate_hz * cfg.oversample, source="",
                                                active_edge=consts.Edge.RISING,
                                                sample_mode=consts.AcquisitionType.FINITE,
                                                samps_per_chan=clock.patterns_per_frame * cfg.oversample)
            if cfg.start_trigger:
                task.triggers.start_trigger.cfg_dig_edge_start_trig(self._terminal(cfg.start_trigger),
                                                                    trigger_edge=self._edge(cfg.trigger_edge))
                if cfg.oversample > 1:
                    task.triggers.start_trigger.retriggerable = True
            elif cfg.oversample > 1:
                raise RigConfigError("oversampling needs detector.nidaqmx.start_trigger (TRIG_OUT_2) to re-align "
                                     "the onboard clock at every frame")
            task.start()
        except mx.errors.DaqError as exc:
            task.close()
            raise DetectorError(f"NI-DAQmx rejected the acquisition setup on {cfg.device}/{cfg.channel}: "
                                f"{exc}") from exc
        except self._driver_errors() as exc:
            with contextlib.suppress(Exception):
                task.close()
            raise self._no_driver(exc) from exc
        except BaseException:
            task.close()
            raise
        self._task, self._n, self._frames = task, n_patterns, frames
        self._per_frame = clock.patterns_per_frame

    def read(self, timeout_s: float) -> np.ndarray:
        """Wait up to ``timeout_s`` for the samples; returns ``[n_patterns]`` volts (float64)."""
        if self._task is None:
            raise DetectorError("read() without arm()")
        cfg, task = self.config, self._task
        k = cfg.oversample
        total = self._n if k == 1 else self._frames * self._per_frame * k
        try:
            data = task.read(number_of_samples_per_channel=total, timeout=timeout_s)
        except self.nidaqmx.errors.DaqError as exc:
            self.abort()
            if getattr(exc, "error_code", None) == DAQMX_TIMEOUT_CODE:
                raise DetectorTimeoutError(
                    f"DAQ timed out after {timeout_s:.2f} s waiting for {total} samples: are TRIG_OUT_1 -> "
                    f"{cfg.sample_clock} and TRIG_OUT_2 -> {cfg.start_trigger} wired and the DMD running?") from exc
            raise DetectorError(f"NI-DAQmx read failed: {exc}") from exc
        except self._driver_errors() as exc:
            self.abort()
            raise self._no_driver(exc) from exc
        self.abort()
        arr = np.asarray(data, dtype=np.float64).reshape(-1)
        if arr.size != total:
            raise DetectorError(f"DAQ returned {arr.size} samples, expected {total}")
        if k > 1:
            arr = arr.reshape(-1, k)[:self._n, cfg.settle_samples:].mean(axis=1)
        return arr

    def abort(self) -> None:
        """Stop and release the current task (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            try:
                task.stop()
            except self._driver_errors() as exc:
                raise self._no_driver(exc) from exc
            finally:
                task.close()

    def close(self) -> None:
        self.abort()

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {"backend": "nidaqmx", "channel": f"{cfg.device}/{cfg.channel}", "terminal": cfg.terminal,
                "range_v": [cfg.v_min, cfg.v_max], "sample_clock": self._terminal(cfg.sample_clock),
                "start_trigger": self._terminal(cfg.start_trigger) if cfg.start_trigger else None,
                "oversample": cfg.oversample, "settle_samples": cfg.settle_samples,
                "sampling_point": self.sampling_point, "clock_edge": self.clock_edge,
                "detector": "Thorlabs PDA100A2", "gain_db": self.gain_db, "full_scale_v": self.full_scale}

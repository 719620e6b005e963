"""Where in each pattern the detector is sampled, and how well the photodiode has settled by then.

The photodiode (Thorlabs PDA100A2) is modelled as a first-order low pass: after the DMD switches from
pattern ``k-1`` to pattern ``k`` the output approaches the new level as ``1 - exp(-t / tau)`` with
``tau = 1 / (2 pi f_3dB)``, ``f_3dB`` from the gain table ``configs/hardware/photodiodes/<name>.yaml``. A
sample taken ``t`` microseconds after the pattern's light starts still carries the fraction
``residual = exp(-t / tau)`` of the previous pattern.

Sampling points (``detector.sampling.point``):

* ``end`` (default): the DAQ / serial ADC samples on TRIG_OUT_1's falling edge, i.e. at the end of the
  exposure, moved by the DLPC350's falling-edge delay (``dmd.trig_out1_falling_delay_us``, default -5 us:
  5 us before the mirrors switch). ``t = exposure + delay``.
* ``start``: the rising edge (plus ``dmd.trig_out1_rising_delay_us``, at most +2.787 us): ``t ~ 0``, so the
  reading is mostly the previous pattern at any useful gain; refused by the settle check.
* ``integrate``: an onboard clock at ``oversample x`` the burst rate (NI-DAQ), retriggered each frame; the
  first ``settle_samples`` of each pattern are dropped and the rest averaged. ``t`` = time of the first kept
  sample.

:func:`check_sampling` turns this into ok / warn / refuse for ``--plan`` and the capture;
:func:`respond` applies the same model to a pattern sequence in the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hardware.dlpc350_commands import trig_out_delay_us
from hardware.rig import PDA100A2_GAINS_DB, RigConfig, RigConfigError, config_dir
from hardware.timing import PatternClock

__all__ = ["PhotodiodeTable", "load_photodiode", "SamplingCheck", "sample_offsets_us", "check_sampling",
           "detector_tau_us", "respond"]


@dataclass(frozen=True)
class PhotodiodeTable:
    """-3 dB bandwidth per gain setting of a switchable-gain photodiode amplifier."""

    model: str
    bandwidth_hz: dict[int, float]
    verified: bool
    source: str
    path: str = ""

    def bandwidth(self, gain_db: int) -> float:
        if gain_db not in self.bandwidth_hz:
            raise RigConfigError(f"{self.path or self.model}: no bandwidth for gain {gain_db} dB; known gains "
                                 f"{sorted(self.bandwidth_hz)}")
        return self.bandwidth_hz[gain_db]

    def tau_us(self, gain_db: int) -> float:
        """First-order time constant at ``gain_db``."""
        return 1e6 / (2 * math.pi * self.bandwidth(gain_db))


def load_photodiode(name_or_path: str | Path) -> PhotodiodeTable:
    """Load ``configs/hardware/photodiodes/<name>.yaml`` (or an explicit YAML path)."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = config_dir() / "photodiodes" / f"{name_or_path}.yaml"
    if not p.is_file():
        raise RigConfigError(f"photodiode table {str(p)!r} not found (detector.photodiode); known: "
                             f"{sorted(q.stem for q in p.parent.glob('*.yaml'))}")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    try:
        bw = {int(k): float(v) for k, v in data["bandwidth_hz"].items()}
        table = PhotodiodeTable(str(data["model"]), bw, bool(data.get("verified", False)),
                                str(data.get("source", "")), str(p))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RigConfigError(f"{p}: needs 'model' and a 'bandwidth_hz' mapping gain_db -> Hz ({exc})") from exc
    missing = [g for g in PDA100A2_GAINS_DB if g not in bw]
    if missing or any(v <= 0 for v in bw.values()):
        raise RigConfigError(f"{p}: bandwidth_hz must give a positive value for every gain {list(PDA100A2_GAINS_DB)}"
                             f" (missing {missing})")
    return table


def detector_tau_us(rig: RigConfig, table: PhotodiodeTable | None = None) -> float:
    """Time constant of the (simulated) detector: ``sim.detector_bandwidth_hz`` or the table at the gain."""
    bw = rig.sim.detector_bandwidth_hz
    if bw is not None:
        return 0.0 if bw == 0 else 1e6 / (2 * math.pi * bw)
    table = table or load_photodiode(rig.detector.photodiode)
    return table.tau_us(rig.detector.gain_db)


def sample_offsets_us(rig: RigConfig, clock: PatternClock) -> tuple[np.ndarray, np.ndarray]:
    """Sample times within a pattern ``[m]`` (us after its light starts) and which of them are kept ``[m]`` bool."""
    point, dmd = rig.detector.sampling.point, rig.dmd
    if point == "end":
        t = clock.exposure_us + trig_out_delay_us(dmd.trig_out1_falling_delay_us)
        return np.array([min(max(t, 0.0), clock.period_us)]), np.array([True])
    if point == "start":
        return np.array([max(trig_out_delay_us(dmd.trig_out1_rising_delay_us), 0.0)]), np.array([True])
    k, settle = rig.detector.nidaqmx.oversample, rig.detector.nidaqmx.settle_samples
    t = np.arange(k) * clock.period_us / k
    return t, np.arange(k) >= settle


@dataclass
class SamplingCheck:
    """Result of :func:`check_sampling`: ``status`` ok | warn | refuse, and the numbers behind it."""

    status: str
    point: str
    sample_us: float
    tau_us: float
    residual: float
    bandwidth_hz: float
    message: str
    table_verified: bool

    def lines(self) -> list[str]:
        where, _, settle = self.message.partition("; ")
        out = [f"sampling point      {where}", f"photodiode          {settle}"]
        if not self.table_verified:
            out.append("                    (bandwidth table not verified against the spec sheet: "
                       "configs/hardware/photodiodes, verified: false)")
        return out


def check_sampling(rig: RigConfig, clock: PatternClock, table: PhotodiodeTable | None = None) -> SamplingCheck:
    """Compare the sampling point with the photodiode's settling at the configured gain."""
    table = table or load_photodiode(rig.detector.photodiode)
    gain, s = rig.detector.gain_db, rig.detector.sampling
    tau = table.tau_us(gain)
    offsets, keep = sample_offsets_us(rig, clock)
    t = float(offsets[keep][0]) if keep.any() else 0.0
    residual = math.exp(-t / tau) if tau > 0 else 0.0
    where = {"end": "end of exposure (TRIG_OUT_1 falling edge)", "start": "start of exposure (TRIG_OUT_1 rising edge)",
             "integrate": f"integrated over the pattern ({int(keep.sum())} of {keep.size} samples kept)"}[s.point]
    text = (f"{where}, {t:.1f} us after the pattern starts; {table.model} at {gain} dB: "
            f"{table.bandwidth(gain) / 1e3:,.1f} kHz, tau {tau:.1f} us -> {residual:.1e} of the previous pattern "
            "remains")
    if residual > s.max_residual:
        status = "refuse"
        text += (f" > {s.max_residual:g} (detector.sampling.max_residual): REFUSED, the detector has not settled; "
                 + ("sample at the end of the exposure (detector.sampling.point: end)" if s.point == "start" else
                    "lengthen the exposure (dmd.exposure_us, dmd.frame_period_us; lower video_fps) or lower the gain"))
    elif residual > s.warn_residual:
        status = "warn"
        text += (f" > {s.warn_residual:g} (detector.sampling.warn_residual): WARNING, readings carry some of the "
                 "previous pattern; lengthen the exposure or lower the gain")
    else:
        status = "ok"
        text += " (ok)"
    return SamplingCheck(status, s.point, t, tau, residual, table.bandwidth(gain), text, table.verified)


def respond(levels: np.ndarray, off_level: float, clock: PatternClock, tau_us: float, offsets_us: np.ndarray,
            keep: np.ndarray) -> np.ndarray:
    """Detector readings of a pattern sequence through a first-order response.

    Args:
        levels: ``[n]`` settled reading of each pattern (its light during the exposure).
        off_level: reading with all mirrors off (dark time, idle time between frames, before the sequence).
        clock: pattern timing; pattern ``k`` starts at ``clock.pattern_start_us(k)``.
        tau_us: time constant (0 = ideal detector).
        offsets_us, keep: sample times within a pattern and which are averaged (:func:`sample_offsets_us`).

    Returns:
        ``[n]`` readings; the output starts the sequence settled at ``off_level``.
    """
    levels = np.asarray(levels, dtype=np.float64)
    if tau_us <= 0:
        return levels.copy()
    exp = math.exp
    e, p = clock.exposure_us, clock.period_us
    out = np.empty_like(levels)
    v = float(off_level)  # output at the start of the current pattern
    for k, level in enumerate(levels):
        vals = []
        for o in offsets_us[keep]:
            if o <= e:
                vals.append(level + (v - level) * exp(-o / tau_us))
            else:
                v_e = level + (v - level) * exp(-e / tau_us)
                vals.append(off_level + (v_e - off_level) * exp(-(o - e) / tau_us))
        out[k] = sum(vals) / len(vals)
        v_e = level + (v - level) * exp(-e / tau_us)
        v = off_level + (v_e - off_level) * exp(-(p - e) / tau_us)  # dark part of the period
        if (k + 1) % clock.patterns_per_frame == 0 and clock.idle_us > 0:
            v = off_level + (v - off_level) * exp(-clock.idle_us / tau_us)  # idle until the next VSYNC
    return out

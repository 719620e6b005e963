"""``lsi-capture --plan``: what a capture will take and whether the rig can measure it faithfully.

A plan combines the timing model (:func:`hardware.timing.timing_for`: pattern rate from the video rate,
bit depth and exposure; frames, references, display update, DAQ set-up, LUT upload), the sampling-point
check against the photodiode's settling at the configured gain (:func:`hardware.sampling.check_sampling`)
and, for the serial ADC, the line rate the link must carry. Refusals stop both ``--plan`` and the capture
(:class:`PlanRefused`, CLI exit 1); warnings are printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hardware.rig import DisplayProfile, RigConfig
from hardware.sampling import SamplingCheck, check_sampling, load_photodiode
from hardware.timing import TimingModel, serial_line_rate, timing_for

__all__ = ["PlanRefused", "CapturePlan", "make_plan"]


class PlanRefused(ValueError):
    """The rig settings cannot give trustworthy readings (see the message for the fix)."""


@dataclass
class CapturePlan:
    rig: RigConfig
    timing: TimingModel
    sampling: SamplingCheck
    link: str = ""
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def report(self, count: int | None = None) -> str:
        det = self.rig.detector
        lines = [self.timing.report(count), *self.sampling.lines()]
        lines.append(f"detector            {det.backend}, gain {det.gain_db} dB")
        if self.link:
            lines.append(f"serial link         {self.link}")
            lines += [f"                    REFUSED: {r}" for r in self.refusals if r.startswith("serial link")]
        if self.refusals:
            lines.append(f"plan                REFUSED ({len(self.refusals)} problem(s), see above)")
        else:
            lines.append("plan                ok" + (f", {len(self.warnings)} warning(s)" if self.warnings else ""))
        return "\n".join(lines)

    def check(self) -> None:
        """Raise :class:`PlanRefused` when any check refuses."""
        if self.refusals:
            raise PlanRefused("the rig settings were refused:\n  " + "\n  ".join(self.refusals))


def make_plan(rig: RigConfig, d: int, scene_profile: DisplayProfile | None = None) -> CapturePlan:
    """Plan a capture of ``d`` masks on ``rig``."""
    timing = timing_for(rig, d, scene_profile)
    sampling = check_sampling(rig, timing.clock, load_photodiode(rig.detector.photodiode))
    plan = CapturePlan(rig, timing, sampling)
    if sampling.status == "refuse":
        plan.refusals.append(f"sampling point: {sampling.message}")
    elif sampling.status == "warn":
        plan.warnings.append(f"sampling point: {sampling.message}")
    ser = rig.detector.serial
    if rig.detector.backend == "serial":
        lines_per_s = timing.patterns_per_s
        need, fits = serial_line_rate(lines_per_s, ser.line_bytes)
        plan.link = (f"{ser.baudrate:,} baud; {lines_per_s:,.0f} lines/s x {ser.line_bytes} bytes x 10 bits = "
                     f"{need:,.0f} bit/s" + (" (USB CDC: baud rate not used)" if ser.usb_cdc else ""))
        if not ser.usb_cdc and ser.baudrate < need:
            fix = f"set detector.serial.baudrate: {fits}" if fits else "lower the pattern rate or use a USB CDC device"
            plan.refusals.append(f"serial link: {ser.baudrate:,} baud cannot carry {need:,.0f} bit/s of samples "
                                 f"({lines_per_s:,.0f} lines/s of {ser.line_bytes} bytes); {fix}")
    return plan

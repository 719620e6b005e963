"""Rig configuration: typed dataclasses loaded from ``configs/hardware/rig.yaml`` and display profiles.

Every section is a dataclass; unknown keys are refused with the list of allowed keys, so a typo in the
YAML is an error rather than a silently ignored setting (strict reading: :mod:`hardware.config_schema`,
whose ``RigConfigError``, ``from_dict`` and ``rig_to_dict`` are re-exported here). ``rig_to_dict`` gives the
JSON-able snapshot stored in each capture's manifest. DMD register limits come from
:mod:`hardware.dlpc350_commands`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hardware.bitplanes import DMD_HEIGHT, DMD_WIDTH, DMDGeometry
from hardware.config_schema import RigConfigError, from_dict, read_yaml, rig_to_dict
from hardware.dlpc350_commands import LUT_TRIGGER_TYPES, trig_out_register
from hardware.timing import PatternClock

__all__ = [
    "RigConfigError",
    "RoiConfig",
    "DMDConfig",
    "NIDAQConfig",
    "SerialConfig",
    "SamplingConfig",
    "DetectorConfig",
    "AlignmentConfig",
    "DisplaySelection",
    "CalibrationConfig",
    "SimNoiseConfig",
    "SimConfig",
    "RigConfig",
    "DisplayProfile",
    "from_dict",
    "rig_to_dict",
    "load_rig",
    "load_display_profile",
    "config_dir",
]

PDA100A2_GAINS_DB = tuple(range(0, 80, 10))


@dataclass
class RoiConfig:
    """Mask placement on the mirror array; ``offset=None`` centres the ROI."""

    offset: tuple[int, int] | None = None
    scale: tuple[int, int] = (2, 4)
    mask_shape: tuple[int, int] = (256, 256)


@dataclass
class DMDConfig:
    """DLP4500 / DLPC350 settings (pattern-sequence mode, video-port source)."""

    backend: str = "dlpc350"  # dlpc350 | sim | mock
    vendor_id: int = 0x0451
    product_id: int = 0x6401
    width: int = DMD_WIDTH
    height: int = DMD_HEIGHT
    roi: RoiConfig = field(default_factory=RoiConfig)
    video_fps: float = 120.0
    exposure_us: int = 347
    frame_period_us: int = 347
    trigger_mode: str = "vsync"
    min_dark_us: float = 230.0  # DLPC350: exposure == period or exposure <= period - min_dark_us
    lut_first_trigger: str = "external_positive"  # LUT entry 0 trigger: VSYNC edge in trigger mode 0
    lut_first_buffer_swap: bool = True  # entry 0 swaps to the newly received frame
    trig_out1_invert: bool = False  # TRIG_OUT_1 active low
    trig_out1_rising_delay_us: float = 0.0  # DLPC350 range -20.05 .. +2.787 us in 107.2 ns steps
    trig_out1_falling_delay_us: float = -5.0  # falling edge 5 us before the exposure ends (sampling point)
    usb_retries: int = 3  # fresh-reply attempts per USB command before DMDConfigError
    usb_command_s: float = 0.021  # per command: pycrafter4500 sleeps 20 ms + ~1 ms HID round trip
    led_select: int = 0  # LUT LED bits (b0 red, b1 green, b2 blue); 0 = LEDs off, external light
    led_current: tuple[int, int, int] = (0, 0, 0)  # PWM 0-255 for red, green, blue
    invert: bool = False
    latency_frames: int = 0  # frames between presenting a frame and the DMD showing it
    expected_masks: int | None = None  # pin the mask count for this rig
    max_masks: int = 4096

    def geometry(self) -> DMDGeometry:
        """The :class:`DMDGeometry` of this configuration."""
        roi = self.roi
        if roi.offset is None:
            return DMDGeometry.centred(tuple(roi.scale), tuple(roi.mask_shape), self.width, self.height)
        return DMDGeometry(self.width, self.height, tuple(roi.offset), tuple(roi.scale), tuple(roi.mask_shape))


@dataclass
class NIDAQConfig:
    """NI-DAQmx analog input clocked by the DMD triggers (terminals without the device prefix)."""

    device: str = "Dev1"
    channel: str = "ai0"
    terminal: str = "RSE"  # RSE | NRSE | DIFF | PSEUDO_DIFF | DEFAULT
    v_min: float = -1.0
    v_max: float = 10.0
    sample_clock: str = "PFI0"  # TRIG_OUT_1: one sample per pattern (edge from detector.sampling.point)
    start_trigger: str | None = "PFI1"  # TRIG_OUT_2: sequence start
    trigger_edge: str = "rising"
    oversample: int = 1  # >1: internal clock at oversample x burst rate, retriggered per frame, averaged
    settle_samples: int = 0  # oversampled samples dropped at the start of each pattern
    max_rate_hz: float = 100_000.0  # upper bound given to DAQmx for the external clock


@dataclass
class SerialConfig:
    """Serial ADC (see docs/serial-adc-protocol.md)."""

    port: str = "/dev/ttyACM0"
    baudrate: int = 460800  # 2,880 lines/s x 12 bytes x 10 bits = 345,600 bit/s -> 460,800 baud
    usb_cdc: bool = False  # USB CDC devices ignore the baud rate (no line-rate check)
    line_bytes: int = 12  # bytes per sample line incl. checksum and newline (line-rate check)
    adc_bits: int | None = None  # full scale = 2**bits - 1 counts; None = from the device's ID reply
    checksum: bool = True
    line_timeout_s: float = 1.0


@dataclass
class SamplingConfig:
    """Where in each pattern the detector is sampled, and how much of the previous pattern may remain."""

    point: str = "end"  # end (TRIG_OUT_1 falling edge) | start (rising edge) | integrate (oversampled)
    warn_residual: float = 1.0e-4  # --plan warns above this fraction of the previous pattern
    max_residual: float = 1.0e-2  # --plan (and the capture) refuse above this fraction


@dataclass
class DetectorConfig:
    """Photodiode + digitiser."""

    backend: str = "nidaqmx"  # nidaqmx | serial | sim | mock
    gain_db: int = 40  # PDA100A2 gain switch (0-70 dB in 10 dB steps)
    photodiode: str = "pda100a2"  # bandwidth table configs/hardware/photodiodes/<name>.yaml (or a path)
    full_scale: float = 10.0  # NI-DAQ: volts at or above which a reading counts as saturated
    setup_s: float = 0.005  # per acquisition: DAQ task set-up / serial ARM round trip (estimate)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    nidaqmx: NIDAQConfig = field(default_factory=NIDAQConfig)
    serial: SerialConfig = field(default_factory=SerialConfig)


@dataclass
class DisplaySelection:
    """Display profile names (files in configs/hardware/displays) for the scene monitor and the DMD input."""

    scene: str = "eizo"
    dmd: str = "dmd_hdmi"


@dataclass
class AlignmentConfig:
    """Frame-alignment check of every scene (see hardware.alignment)."""

    markers: bool = True  # all-on/all-off marker pairs at the head and tail of each scene's frames
    tolerance: float = 0.05  # markers must be the extreme readings within this fraction of the range
    min_signal: float = 0.02  # below this fraction of (white - dark) a scene is too dark to check
    max_late_frames: int = 0  # late frames reported by the presenter during one acquisition
    max_recaptures: int = 3  # a misaligned scene is captured again at most this often, then the run stops


@dataclass
class CalibrationConfig:
    """References, complementary patterns, refusal rules and the watchdog."""

    every: int = 1  # take references every N scenes (0 = never)
    position: str = "both"  # before | after | both
    ref_planes: int = 12  # all-on planes (then as many all-off planes) in the reference frame
    complementary: bool = False  # show each mask followed by its inverse
    max_saturated_fraction: float = 0.0  # scenes only; references tolerate no clipping
    reference_headroom: float = 0.02  # white reference readings must stay below (1 - headroom) x full scale
    on_error: str = "stop"  # stop | retry  (NaN, saturation, detector timeout)
    max_retries: int = 2
    watchdog_factor: float = 2.0  # detector timeout = factor x expected duration + margin
    watchdog_margin_s: float = 1.0
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)


@dataclass
class SimNoiseConfig:
    """Arguments of :class:`lsi.physics.noise.NoiseModel` for the simulated detector."""

    photons_full_scale: float = 2.0e5
    read_noise: float = 5.0e-4
    adc_bits: int = 16
    full_scale: float = 2.0
    dark_offset: float = 0.01
    ambient: float = 0.002


@dataclass
class SimConfig:
    """Simulated optical path."""

    blur_sigma: float = 0.7  # objective blur, in mask pixels
    leak: float = 0.001  # light passed by off mirrors (finite DMD contrast)
    monitor_gamma: float = 2.2  # native gamma of the simulated monitor
    drift_per_acquisition: float = 0.0  # relative source drift per acquisition
    noise: SimNoiseConfig = field(default_factory=SimNoiseConfig)
    detector_bandwidth_hz: float | None = None  # None = photodiode table at detector.gain_db; 0 = ideal
    seed: int = 0
    realtime: bool = False  # sleep for the modelled durations


@dataclass
class RigConfig:
    """The whole rig."""

    name: str = "lsi-dlp4500"
    dmd: DMDConfig = field(default_factory=DMDConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    display: DisplaySelection = field(default_factory=DisplaySelection)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    sim: SimConfig = field(default_factory=SimConfig)

    def validate(self) -> None:
        """Cross-field checks; raises :class:`RigConfigError`."""
        if self.detector.gain_db not in PDA100A2_GAINS_DB:
            raise RigConfigError(f"detector.gain_db must be one of {list(PDA100A2_GAINS_DB)} (PDA100A2 switch), "
                                 f"got {self.detector.gain_db}")
        cal = self.calibration
        if cal.position not in ("before", "after", "both"):
            raise RigConfigError(f"calibration.position must be before|after|both, got {cal.position!r}")
        if cal.on_error not in ("stop", "retry"):
            raise RigConfigError(f"calibration.on_error must be stop|retry, got {cal.on_error!r}")
        if not 1 <= cal.ref_planes <= 23:
            raise RigConfigError(f"calibration.ref_planes must be in [1, 23], got {cal.ref_planes}")
        if cal.every < 0 or cal.max_retries < 0 or not 0 <= cal.max_saturated_fraction <= 1:
            raise RigConfigError("calibration.every and max_retries must be >= 0 and max_saturated_fraction in [0, 1]")
        if not 0 <= self.dmd.led_select <= 7 or any(not 0 <= c <= 255 for c in self.dmd.led_current):
            raise RigConfigError("dmd.led_select must be in [0, 7] and dmd.led_current values in [0, 255]")
        if self.dmd.latency_frames < 0 or self.detector.nidaqmx.oversample < 1:
            raise RigConfigError("dmd.latency_frames must be >= 0 and detector.nidaqmx.oversample >= 1")
        self._validate_dmd_and_sampling()
        al = cal.alignment
        if al.max_late_frames < 0 or al.max_recaptures < 0 or not 0 <= al.tolerance < 0.5 or not 0 <= al.min_signal < 1:
            raise RigConfigError("calibration.alignment: max_late_frames and max_recaptures must be >= 0, tolerance in "
                                 "[0, 0.5) and min_signal in [0, 1)")
        if not 0 <= cal.reference_headroom < 1:
            raise RigConfigError(f"calibration.reference_headroom must be in [0, 1), got {cal.reference_headroom}")
        self.dmd.geometry()  # raises MaskGeometryError (a ValueError) when the ROI does not fit

    def _validate_dmd_and_sampling(self) -> None:
        dmd, det = self.dmd, self.detector
        if dmd.lut_first_trigger not in LUT_TRIGGER_TYPES:
            raise RigConfigError(f"dmd.lut_first_trigger must be one of {sorted(LUT_TRIGGER_TYPES)}, got "
                                 f"{dmd.lut_first_trigger!r}")
        for key in ("trig_out1_rising_delay_us", "trig_out1_falling_delay_us"):
            trig_out_register(getattr(dmd, key), f"dmd.{key}")
        if dmd.usb_retries < 1 or dmd.usb_command_s < 0:
            raise RigConfigError("dmd.usb_retries must be >= 1 and dmd.usb_command_s >= 0")
        PatternClock(dmd.exposure_us, dmd.frame_period_us, dmd.video_fps, min_dark_us=dmd.min_dark_us)
        s = det.sampling
        if s.point not in ("end", "start", "integrate"):
            raise RigConfigError(f"detector.sampling.point must be end|start|integrate, got {s.point!r}")
        if not 0 < s.warn_residual <= s.max_residual < 1:
            raise RigConfigError("detector.sampling needs 0 < warn_residual <= max_residual < 1, got "
                                 f"{s.warn_residual} and {s.max_residual}")
        oversampled = det.nidaqmx.oversample > 1
        if det.backend == "nidaqmx" and (s.point == "integrate") != oversampled:
            raise RigConfigError("detector.sampling.point: integrate goes with detector.nidaqmx.oversample > 1 (and "
                                 f"end/start with oversample 1); got point {s.point!r}, oversample "
                                 f"{det.nidaqmx.oversample}")
        if s.point == "integrate" and dmd.exposure_us != dmd.frame_period_us:
            raise RigConfigError("detector.sampling.point: integrate averages over the whole pattern period, so it "
                                 "needs dmd.exposure_us == dmd.frame_period_us")
        if det.backend == "serial" and s.point == "integrate":
            raise RigConfigError("the serial ADC samples once per trigger edge: use detector.sampling.point end")
        ser = det.serial
        if ser.line_bytes < 4 or (ser.adc_bits is not None and not 1 <= ser.adc_bits <= 32) or ser.baudrate < 1:
            raise RigConfigError("detector.serial: line_bytes must be >= 4, adc_bits in [1, 32] or null, baudrate >= 1")


@dataclass
class DisplayProfile:
    """A fullscreen output: where it is, how to encode intensities, how long it takes to settle."""

    name: str = "display"
    backend: str = "tk"  # tk | offscreen
    width: int = 1920
    height: int = 1080
    x: int = 0  # window position on the virtual desktop (pixels)
    y: int = 0
    monitor: int = 0  # informational: which output this is
    refresh_hz: float = 60.0
    gamma: float = 2.2  # content is encoded as v = x ** (1 / gamma); 1.0 = no correction
    settle_s: float = 0.05  # wait after showing a new image
    update_s: float = 0.0  # time to render and hand a new image to the display (estimate, --plan)
    fit: str = "contain"  # contain | stretch | native
    image_size: int | None = None  # side of the square scene in pixels (None = as large as fits)
    background: float = 0.0  # linear intensity around the scene
    bit_exact: bool = False  # frames are shown unscaled and unmodified (DMD video input)

    def validate(self) -> None:
        if self.width < 1 or self.height < 1 or self.gamma <= 0 or self.settle_s < 0 or self.refresh_hz <= 0:
            raise RigConfigError(f"display profile {self.name!r}: width/height/gamma/refresh must be > 0 and "
                                 "settle_s >= 0")
        if self.fit not in ("contain", "stretch", "native"):
            raise RigConfigError(f"display profile {self.name!r}: fit must be contain|stretch|native, got {self.fit!r}")
        if self.bit_exact and (self.gamma != 1.0 or self.fit != "native"):
            raise RigConfigError(f"display profile {self.name!r} is bit_exact (DMD input): it needs gamma: 1.0 and "
                                 "fit: native so bit planes reach the DMD unchanged")


# ---------------------------------------------------------------------------------------------- loading
def config_dir() -> Path:
    """``configs/hardware`` of this checkout (next to the ``hardware`` package), else of the cwd."""
    here = Path(__file__).resolve().parents[1] / "configs" / "hardware"
    return here if here.is_dir() else Path.cwd() / "configs" / "hardware"


def load_rig(path: str | Path | None = None) -> RigConfig:
    """Load and validate a rig YAML (default ``configs/hardware/rig.yaml``)."""
    p = Path(path) if path is not None else config_dir() / "rig.yaml"
    if not p.is_file():
        raise RigConfigError(f"rig config {str(p)!r} not found; pass --rig configs/hardware/rig.yaml")
    cfg = from_dict(RigConfig, read_yaml(p), p.name)
    cfg.validate()
    return cfg


def load_display_profile(name_or_path: str | Path, profiles_dir: str | Path | None = None) -> DisplayProfile:
    """Load ``configs/hardware/displays/<name>.yaml`` (or an explicit path to a YAML profile)."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        base = Path(profiles_dir) if profiles_dir is not None else config_dir() / "displays"
        p = base / f"{name_or_path}.yaml"
        if not p.is_file():
            known = sorted(q.stem for q in base.glob("*.yaml")) if base.is_dir() else []
            raise RigConfigError(f"display profile {str(name_or_path)!r} not found in {base}; known: {known}")
    elif not p.is_file():
        raise RigConfigError(f"display profile file {str(p)!r} not found")
    data = read_yaml(p)
    data.setdefault("name", p.stem)
    prof = from_dict(DisplayProfile, data, p.name)
    prof.validate()
    return prof

"""NI-DAQmx detector against a fake ``nidaqmx.Task`` (the real module is patched, no driver needed)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from hardware.daq_nidaqmx import DAQMX_TIMEOUT_CODE, NIDAQDetector
from hardware.protocols import (
    BackendUnavailableError,
    Detector,
    DetectorError,
    DetectorTimeoutError,
    DeviceNotFoundError,
)
from hardware.rig import NIDAQConfig, RigConfig, RigConfigError
from hardware.timing import PatternClock

nidaqmx = pytest.importorskip("nidaqmx")
from nidaqmx.constants import AcquisitionType, Edge, TerminalConfiguration  # noqa: E402
from nidaqmx.errors import DaqError, DaqNotFoundError  # noqa: E402

CLOCK_120 = PatternClock(347, 347, 120.0)  # 2,880 patterns/s
CLOCK_60 = PatternClock(347, 347, 60.0)  # 1,440 patterns/s, same 347 us burst


class FakeTask:
    """Records the DAQmx configuration calls of one task."""

    instances: list[FakeTask] = []
    data: np.ndarray | None = None
    read_error: DaqError | None = None

    def __init__(self, new_task_name: str = "") -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.closed = self.started = False
        FakeTask.instances.append(self)
        task = self

        class _Rec:
            def __init__(self, prefix):
                object.__setattr__(self, "prefix", prefix)

            def __getattr__(self, name):
                return lambda *a, **k: task.calls.append((f"{self.prefix}.{name}", a, k))

            def __setattr__(self, name, value):  # property writes, e.g. start_trigger.retriggerable = True
                task.calls.append((f"{self.prefix}.{name}=", (value,), {}))

        self.ai_channels = _Rec("ai_channels")
        self.timing = _Rec("timing")
        self.triggers = type("T", (), {"start_trigger": _Rec("start_trigger")})()

    def start(self):
        self.started = True

    def read(self, number_of_samples_per_channel, timeout):
        self.calls.append(("read", (), {"number_of_samples_per_channel": number_of_samples_per_channel,
                                        "timeout": timeout}))
        if FakeTask.read_error is not None:
            raise FakeTask.read_error
        if FakeTask.data is not None:
            return list(FakeTask.data)
        return [0.5 + 0.01 * i for i in range(number_of_samples_per_channel)]

    def stop(self):
        self.calls.append(("stop", (), {}))

    def close(self):
        self.closed = True

    def call(self, name):
        return [c for c in self.calls if c[0] == name]


@pytest.fixture
def fake_task(monkeypatch):
    FakeTask.instances, FakeTask.data, FakeTask.read_error = [], None, None
    monkeypatch.setattr(nidaqmx, "Task", FakeTask)
    return FakeTask


def test_external_clock_samples_at_the_end_of_each_exposure(fake_task):
    det = NIDAQDetector(NIDAQConfig(), gain_db=30, full_scale=10.0)
    assert isinstance(det, Detector)
    det.arm(128, CLOCK_120)
    task = fake_task.instances[-1]
    (_, args, kw), = task.call("ai_channels.add_ai_voltage_chan")
    assert args == ("Dev1/ai0",) and kw["terminal_config"] == TerminalConfiguration.RSE
    assert (kw["min_val"], kw["max_val"]) == (-1.0, 10.0)
    (_, args, kw), = task.call("timing.cfg_samp_clk_timing")
    # TRIG_OUT_1 frames the exposure: its falling edge is the end of the exposure (the default sampling point);
    # the rising edge (the old default) is its start, when the photodiode still shows the previous pattern
    assert kw["source"] == "/Dev1/PFI0" and kw["active_edge"] == Edge.FALLING
    assert kw["sample_mode"] == AcquisitionType.FINITE and kw["samps_per_chan"] == 128
    assert args[0] >= CLOCK_120.burst_rate_hz  # max expected rate for an external clock
    (_, args, kw), = task.call("start_trigger.cfg_dig_edge_start_trig")
    assert args == ("/Dev1/PFI1",) and kw["trigger_edge"] == Edge.RISING
    assert task.started
    values = det.read(timeout_s=1.75)
    (_, _, kw), = task.call("read")
    assert kw == {"number_of_samples_per_channel": 128, "timeout": 1.75}
    np.testing.assert_allclose(values, 0.5 + 0.01 * np.arange(128))
    assert task.closed
    assert det.describe()["gain_db"] == 30 and det.describe()["detector"] == "Thorlabs PDA100A2"
    assert det.describe()["clock_edge"] == "falling"


@pytest.mark.parametrize("point,inverted,edge", [("end", False, Edge.FALLING), ("end", True, Edge.RISING),
                                                 ("start", False, Edge.RISING), ("start", True, Edge.FALLING)])
def test_sampling_point_picks_the_clock_edge(fake_task, point, inverted, edge):
    rig = RigConfig()
    rig.detector.sampling.point, rig.dmd.trig_out1_invert = point, inverted
    NIDAQDetector.from_rig(rig).arm(24, CLOCK_120)
    assert fake_task.instances[-1].call("timing.cfg_samp_clk_timing")[0][2]["active_edge"] == edge


def test_complementary_count_edges_and_custom_terminals(fake_task):
    cfg = NIDAQConfig(device="Dev2", channel="ai3", terminal="DIFF", sample_clock="PFI4", start_trigger="/Dev2/PFI5",
                      trigger_edge="falling")
    det = NIDAQDetector(cfg)
    det.arm(2 * 64, CLOCK_120)
    task = fake_task.instances[-1]
    (_, _, kw), = task.call("timing.cfg_samp_clk_timing")
    assert kw["samps_per_chan"] == 128 and kw["source"] == "/Dev2/PFI4"
    (_, args, kw), = task.call("start_trigger.cfg_dig_edge_start_trig")
    assert args == ("/Dev2/PFI5",) and kw["trigger_edge"] == Edge.FALLING
    assert task.call("ai_channels.add_ai_voltage_chan")[0][2]["terminal_config"] == TerminalConfiguration.DIFF


@pytest.mark.parametrize("clock", [CLOCK_120, CLOCK_60])
def test_oversampled_clock_follows_the_pattern_burst_and_retriggers_per_frame(fake_task, clock):
    """The oversampling clock used to run at k x the average pattern rate from one start trigger: at 60 Hz
    (1,440 patterns/s on average, 2,881.8/s within a frame) it drifted off the patterns. It now runs at
    k x the burst rate and is re-aligned by TRIG_OUT_2 at every frame."""
    det = NIDAQDetector(NIDAQConfig(oversample=4, settle_samples=1), sampling_point="integrate")
    d = 30  # 2 frames
    per_pattern = np.tile([100.0, 0.0, 1.0, 2.0], 48)  # first sample of each pattern still settling
    fake_task.data = np.repeat(np.arange(48, dtype=float), 4) + per_pattern
    det.arm(d, clock)
    task = fake_task.instances[-1]
    (_, args, kw), = task.call("timing.cfg_samp_clk_timing")
    assert args[0] == pytest.approx(4 * 1e6 / 347) and kw["source"] == "" and kw["samps_per_chan"] == 4 * 24
    assert task.call("start_trigger.cfg_dig_edge_start_trig")[0][1] == ("/Dev1/PFI1",)
    assert task.call("start_trigger.retriggerable=")[0][1] == (True,)
    out = det.read(2.0)
    assert task.call("read")[0][2]["number_of_samples_per_channel"] == 2 * 24 * 4  # whole frames
    np.testing.assert_allclose(out, np.arange(d) + 1.0)  # first (settle) sample of each pattern dropped


def test_missing_ni_driver_is_a_clear_hardware_error(monkeypatch):
    """nidaqmx installed without the NI-DAQmx driver raises DaqNotFoundError (not a DaqError): it used to
    escape as a traceback; it is now a DeviceNotFoundError (a HardwareError: CLI exit 4) with the fix."""
    def no_driver(*a, **k):
        raise DaqNotFoundError("Could not find an installation of NI-DAQmx.")

    monkeypatch.setattr(nidaqmx, "Task", no_driver)
    with pytest.raises(DeviceNotFoundError, match="installdriver"):
        NIDAQDetector(NIDAQConfig()).arm(24, CLOCK_120)


def test_timeout_is_mapped_and_task_released(fake_task):
    det = NIDAQDetector(NIDAQConfig())
    fake_task.read_error = DaqError("samples not acquired", DAQMX_TIMEOUT_CODE)
    det.arm(24, CLOCK_120)
    with pytest.raises(DetectorTimeoutError, match="0.50 s.*TRIG_OUT_1 -> PFI0"):
        det.read(0.5)
    assert fake_task.instances[-1].closed
    fake_task.read_error = DaqError("device gone", -50405)
    det.arm(24, CLOCK_120)
    with pytest.raises(DetectorError, match="read failed"):
        det.read(0.5)


def test_config_validation_and_missing_module(monkeypatch):
    with pytest.raises(RigConfigError, match="gain"):
        NIDAQDetector(NIDAQConfig(), gain_db=35)
    with pytest.raises(RigConfigError, match="settle_samples"):
        NIDAQDetector(NIDAQConfig(oversample=2, settle_samples=2), sampling_point="integrate")
    with pytest.raises(RigConfigError, match="'end' needs oversample 1"):
        NIDAQDetector(NIDAQConfig(oversample=2))
    with pytest.raises(RigConfigError, match="v_min"):
        NIDAQDetector(NIDAQConfig(v_min=5, v_max=1))
    monkeypatch.setitem(sys.modules, "nidaqmx", None)
    det = NIDAQDetector(NIDAQConfig())
    with pytest.raises(BackendUnavailableError, match="pip install nidaqmx"):
        det.arm(10, CLOCK_120)


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("LSI_HARDWARE") != "1", reason="needs an NI DAQ wired to the DMD (LSI_HARDWARE=1)")
def test_real_daq_times_out_without_triggers():
    det = NIDAQDetector(NIDAQConfig())
    det.arm(24, CLOCK_120)
    with pytest.raises(DetectorTimeoutError):
        det.read(0.2)

"""The LSI single-pixel rig: DLP4500 DMD (DLPC350), photodiode + DAQ, scene display, simulator and capture.

Submodules (import what you need; none is imported here so ``import hardware`` stays light):

* :mod:`hardware.protocols` - ``DMD``, ``Detector``, ``SceneDisplay``, ``FramePresenter`` and exceptions
* :mod:`hardware.bitplanes` - 1-bit masks <-> 24-bit RGB video frames (G0..G7, R0..R7, B0..B7)
* :mod:`hardware.dlpc350` - real DMD over USB HID (pycrafter4500)
* :mod:`hardware.dlpc350_commands` - DLPC350 command codes, pattern LUT entries, TRIG_OUT registers (no USB)
* :mod:`hardware.daq_nidaqmx`, :mod:`hardware.serial_adc` - real detectors
* :mod:`hardware.display` - fullscreen scene / DMD outputs and an offscreen renderer
* :mod:`hardware.sim`, :mod:`hardware.mock` - simulated rig, recording mocks (USB device, detectors), faults
* :mod:`hardware.calibration` - references, drift, saturation
* :mod:`hardware.timing` - the one timing model (pattern clock, scene rate, overheads)
* :mod:`hardware.sampling` - sampling point, photodiode settling (PDA100A2 table), detector response
* :mod:`hardware.alignment` - frame-alignment markers and checks, latency measurement
* :mod:`hardware.plan` - ``--plan``: timing + sampling + serial link checks
* :mod:`hardware.rig` - configuration (``configs/hardware/rig.yaml``, display profiles)
* :mod:`hardware.config_schema` - strict YAML -> dataclass reading (unknown keys and wrong types refused)
* :mod:`hardware.manifest`, :mod:`hardware.store` - capture metadata and identity; capture store
* :mod:`hardware.capture` - capture loop (scenes come from a ``SceneSource``)

The ``lsi-capture`` command lives in :mod:`lsi.cli.capture`: it wires scene sources (image folders, the
embedded face world of ``datamodules``) into this package, which imports only ``lsi.physics``, ``lsi.labels``
and ``lsi.images`` from the rest of the project.

See docs/hardware.md.
"""

__all__ = [
    "alignment", "bitplanes", "calibration", "capture", "config_schema", "daq_nidaqmx", "display", "dlpc350",
    "dlpc350_commands", "manifest", "mock", "plan", "protocols", "rig", "sampling", "serial_adc", "sim", "store",
    "timing",
]

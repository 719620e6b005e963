"""``lsi-capture``: capture single-pixel measurements of scenes through learned masks.

Examples::

    lsi-capture --masks masks.npy --display eizo --dataset embedded --count 100 --out captures/r512
    lsi-capture --masks masks.npy --images faces/ --out captures/real --resume
    lsi-capture --masks masks.npy --dataset embedded --count 100 --plan      # timing only
    lsi-capture --masks masks.npy --dataset embedded --count 20 --simulate --out /tmp/sim

Exit codes: 0 done, 1 refused (bad input/config, plan refused, a different capture in --out), 2 usage,
3 aborted by a bad or misaligned reading, 4 hardware error (device missing, USB, NI-DAQmx driver),
130 interrupted by SIGINT (Ctrl-C), 143 terminated by SIGTERM. After 3, 4, 130 and 143 the DMD is back in
video mode, a ``session_stopped`` event is logged, and ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hardware.alignment import measure_latency, sequence_layout
from hardware.bitplanes import PLANE_NAMES, frame_map
from hardware.capture import CaptureAborted, CaptureSession, ImageFolderScenes, SceneSource
from hardware.daq_nidaqmx import NIDAQDetector
from hardware.display import open_display
from hardware.dlpc350 import DLPC350DMD
from hardware.manifest import CaptureManifest, MaskInfo, SceneSetInfo, TimingInfo
from hardware.plan import make_plan
from hardware.protocols import HardwareError
from hardware.rig import RigConfig, load_display_profile, load_rig, rig_to_dict
from hardware.serial_adc import SerialADC
from hardware.store import CaptureStore
from lsi.physics.mask_files import load_masks

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lsi-capture", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--masks", default=None, help="mask file (.npy with JSON sidecar, lsi.physics.mask_files format)")
    p.add_argument("--display", default=None, help="scene display profile name or YAML path (default: rig's)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", default=None, help="directory of images to show (sorted, recursive)")
    src.add_argument("--dataset", choices=["embedded"], default=None, help="built-in procedural face dataset")
    p.add_argument("--count", type=int, default=None, help="number of scenes (default: all)")
    p.add_argument("--split", default="test", help="embedded dataset split (default test)")
    p.add_argument("--seed", type=int, default=0, help="embedded dataset seed")
    p.add_argument("--identities", type=int, default=100, help="embedded dataset: identities in the split")
    p.add_argument("--images-per-identity", type=int, default=10, help="embedded dataset: images per identity")
    p.add_argument("--resolution", type=int, default=256, help="scene resolution before display scaling")
    p.add_argument("--rig", default=None, help="rig config (default configs/hardware/rig.yaml)")
    p.add_argument("--out", default=None, help="capture directory (default captures/<masks>-<sha8>-<source>)")
    p.add_argument("--simulate", action="store_true", help="use the simulated rig (no hardware)")
    p.add_argument("--sim-realtime", action="store_true", help="simulator sleeps for settle/frame times")
    p.add_argument("--resume", action="store_true", help="continue an interrupted capture in --out")
    p.add_argument("--plan", action="store_true", help="print frame rate and total time, then exit")
    p.add_argument("--check-sync", action="store_true",
                   help="bring-up check: measure the frame latency between presenting and the DMD (no masks needed)")
    p.add_argument("--complementary", action=argparse.BooleanOptionalAction, default=None,
                   help="show each mask followed by its inverse (default: rig's calibration.complementary)")
    p.add_argument("--calib-every", type=int, default=None, help="take references every N scenes (0 = never)")
    p.add_argument("--gain-db", type=int, default=None, help="PDA100A2 gain setting to record (0-70, step 10)")
    p.add_argument("--detector", choices=["nidaqmx", "serial"], default=None, help="override detector backend")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _scenes(args: argparse.Namespace) -> tuple[str, SceneSource]:
    """The scene source: this layer wires datasets into the capture (``hardware`` imports no datamodules)."""
    if args.images:
        return "images", ImageFolderScenes(args.images, args.count, args.resolution)
    if args.dataset == "embedded":
        from datamodules.scenes import EmbeddedScenes  # torch + lightning: only when embedded scenes are asked for

        return "embedded", EmbeddedScenes(args.split, args.count, args.identities, args.images_per_identity,
                                          args.resolution, args.seed)
    raise ValueError("choose the scenes with --images DIR or --dataset embedded")


def _run(args: argparse.Namespace) -> int:
    rig = load_rig(args.rig)
    if args.complementary is not None:
        rig.calibration.complementary = args.complementary
    if args.calib_every is not None:
        rig.calibration.every = args.calib_every
    if args.gain_db is not None:
        rig.detector.gain_db = args.gain_db
    if args.detector is not None:
        rig.detector.backend = args.detector
    if args.sim_realtime:
        rig.sim.realtime = True
    rig.validate()
    if args.check_sync:
        return _check_sync(rig, args)
    if not args.masks:
        raise ValueError("--masks is required (a .npy mask file with its JSON sidecar)")
    geometry = rig.dmd.geometry()
    masks, meta = load_masks(args.masks, shape=geometry.mask_shape)
    if meta.bits != 1:
        raise ValueError(f"{args.masks} holds {meta.bits}-bit masks; the DMD shows 1-bit masks only")
    if rig.dmd.expected_masks is not None and meta.count != rig.dmd.expected_masks:
        raise ValueError(f"{args.masks} holds {meta.count} masks but the rig expects {rig.dmd.expected_masks} "
                         "(dmd.expected_masks in the rig config)")
    if meta.count > rig.dmd.max_masks:
        raise ValueError(f"{meta.count} masks exceed dmd.max_masks={rig.dmd.max_masks}")
    scene_profile = load_display_profile(args.display or rig.display.scene)
    dmd_profile = load_display_profile(rig.display.dmd)
    plan = make_plan(rig, meta.count, scene_profile)
    timing = plan.timing

    if args.plan:
        count = args.count
        if count is None and (args.images or args.dataset):
            count = len(_scenes(args)[1])
        print(f"masks: {meta.count} ({Path(args.masks).name}, ratio 1:{meta.ratio}), display {scene_profile.name}")
        print(plan.report(count))
        plan.check()
        return 0
    plan.check()
    for warning in plan.warnings:
        print(f"lsi-capture: warning: {warning}", file=sys.stderr)

    kind, scenes = _scenes(args)
    out = Path(args.out) if args.out else Path("captures") / f"{Path(args.masks).stem}-{meta.sha256[:8]}-{kind}"
    t = timing
    layout = sequence_layout(t.mask_patterns, rig.calibration.alignment.markers)
    manifest = CaptureManifest(
        masks=MaskInfo(meta.sha256, meta.count, meta.height, meta.width, meta.bits, meta.ratio, list(meta.order),
                       meta.source),
        timing=TimingInfo(t.exposure_us, t.period_us, rig.dmd.video_fps, t.patterns_per_s, t.patterns_per_scene,
                          t.frames_per_scene, scene_profile.settle_s, scene_profile.settle_s, rig.dmd.latency_frames,
                          t.scene_s, t.burst_rate_hz, t.patterns_per_frame, t.markers, plan.sampling.point,
                          plan.sampling.sample_us),
        scenes=SceneSetInfo(kind, len(scenes), scenes.spec),
        complementary=rig.calibration.complementary,
        calibration=dataclasses.asdict(rig.calibration), devices={},
        detector_gain_db=rig.detector.gain_db, display_profile=dataclasses.asdict(scene_profile),
        dmd_profile=dataclasses.asdict(dmd_profile),
        frame_map=frame_map(meta.order, rig.calibration.complementary, layout["first_pattern"]),
        plane_names=list(PLANE_NAMES), rig=rig_to_dict(rig), simulated=args.simulate, sequence=layout,
        units="normalised" if args.simulate else ("V" if rig.detector.backend == "nidaqmx" else "ADC counts"))
    backends = _open_backends(rig, scene_profile, dmd_profile, args.simulate)
    manifest.devices = {k: v.describe() for k, v in backends.items()}
    try:
        with CaptureStore.open_for_writing(out, manifest, resume=args.resume) as store:
            session = CaptureSession(rig, masks, meta.order, backends["dmd"], backends["detector"],
                                     backends["scene_display"], store,
                                     sleep=(lambda s: None) if args.simulate else time.sleep)
            print(f"capturing {len(scenes)} scenes into {out} ({t.scenes_per_s:.1f} scenes/s expected)",
                  file=sys.stderr)
            summary = session.run(scenes, progress=not args.no_progress)
    finally:
        _close_backends(backends)
    print(f"done: {len(summary.written)} written, {summary.skipped} already present, {summary.retries} retries, "
          f"{summary.elapsed_s:.1f} s -> {out}")
    return 0


def _check_sync(rig: RigConfig, args: argparse.Namespace) -> int:
    scene_profile = load_display_profile(args.display or rig.display.scene)
    backends = _open_backends(rig, scene_profile, load_display_profile(rig.display.dmd), args.simulate)
    try:
        k, raw = measure_latency(rig, backends["dmd"], backends["detector"], backends["scene_display"],
                                 sleep=(lambda s: None) if args.simulate else time.sleep)
    finally:
        _close_backends(backends)
    print("readings per frame (even planes on, odd off):")
    for i in range(0, raw.size, 24):
        print(f"  frame {i // 24}: " + " ".join(f"{v:.4g}" for v in raw[i:i + 24]))
    if k is None:
        print("no alternating frame found: check TRIG_OUT wiring, the DMD's HDMI input and the optics")
        return 1
    print(f"alignment found: set dmd.latency_frames: {k} in the rig config (now {rig.dmd.latency_frames})")
    return 0


def _open_backends(rig: RigConfig, scene_profile: Any, dmd_profile: Any, simulate: bool) -> dict[str, Any]:
    if simulate:
        from hardware.sim import build_sim_rig  # torch + scipy: only for --simulate

        sim = build_sim_rig(rig, scene_profile, dmd_profile)
        return {"dmd": sim.dmd, "detector": sim.detector, "scene_display": sim.scene_display}
    opened: dict[str, Any] = {}
    try:
        det = rig.detector
        if det.backend == "nidaqmx":
            opened["detector"] = NIDAQDetector.from_rig(rig)
        elif det.backend == "serial":
            opened["detector"] = SerialADC.from_rig(rig)
        else:
            raise ValueError(f"detector.backend {det.backend!r} needs --simulate (real backends: nidaqmx, serial)")
        opened["scene_display"] = open_display(scene_profile)
        dmd = DLPC350DMD(rig.dmd, presenter=open_display(dmd_profile))
        opened["dmd"] = dmd
        dmd.open()
    except BaseException:
        _close_backends(opened)
        raise
    return opened


def _close_backends(backends: dict[str, Any]) -> None:
    """Close every backend (the DMD returns to video mode); later failures do not hide earlier ones."""
    errors = []
    for name in ("dmd", "detector", "scene_display"):
        dev = backends.get(name)
        if dev is None:
            continue
        try:
            dev.close()
            presenter = getattr(dev, "presenter", None)
            if presenter is not None:
                presenter.close()
        except (OSError, RuntimeError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
    if errors:
        print("lsi-capture: warning: while closing devices: " + "; ".join(errors), file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM: the same clean shutdown as Ctrl-C, exit code 128 + 15."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _install_sigterm() -> Any:
    """Turn the first SIGTERM into :class:`Terminated`; later ones are ignored while shutting down."""
    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lsi-capture`` console script."""
    args = build_parser().parse_args(argv)
    if args.count is not None and args.count < 1:
        build_parser().error("--count must be >= 1")
    previous = _install_sigterm()
    try:
        return _run(args)
    except Terminated as exc:
        print(f"\nlsi-capture: terminated by {exc}; every finished scene is stored - rerun with --resume to continue",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("\nlsi-capture: interrupted; every finished scene is stored - rerun with --resume to continue",
              file=sys.stderr)
        return 130
    except CaptureAborted as exc:
        print(f"lsi-capture: aborted: {exc}\n(no record was written for that scene; fix the cause and rerun with "
              "--resume)", file=sys.stderr)
        return 3
    except HardwareError as exc:
        print(f"lsi-capture: hardware error: {exc}\n(finished scenes are stored; rerun with --resume)", file=sys.stderr)
        return 4
    except (ValueError, FileNotFoundError) as exc:
        print(f"lsi-capture: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

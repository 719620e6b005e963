"""Fullscreen outputs: the scene monitor (e.g. Eizo CG3145) and the DMD's HDMI video input.

Rendering is pure numpy/PIL (:func:`render_scene`), so it is testable without a display:

* the scene (linear intensities in [0, 1]) is resized into a rectangle of the window chosen by the profile's
  ``fit`` / ``image_size`` and encoded with the profile gamma, ``v = round(255 * x ** (1 / gamma))``, so a
  monitor with that native gamma emits light proportional to ``x``;
* DMD frames (profile ``bit_exact``) are shown unscaled and unmodified - any scaling, dithering or gamma
  would destroy the bit planes.

Backends: :class:`OffscreenDisplay` renders into ``framebuffer`` (the simulator reads it) and
:class:`TkDisplay` opens a borderless window at the profile's position and size on the chosen monitor.
Tk cannot lock to vsync: it is fine for scenes, and for DMD frames only when the video rate is low
enough for every frame to be drawn in time (late frames are counted in ``late_frames``); see
docs/hardware.md for vsync-locked alternatives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from hardware.protocols import BackendUnavailableError, HardwareError
from hardware.rig import DisplayProfile, RigConfigError

__all__ = ["to_hwc", "scene_rect", "encode", "render_scene", "OffscreenDisplay", "TkDisplay", "open_display"]


def to_hwc(image: Any) -> np.ndarray:
    """``[3, H, W]``, ``[H, W, 3]`` or ``[H, W]`` (float in [0, 1] or uint8; numpy/torch) -> float32 ``[H, W, 3]``."""
    arr = np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"scene image must be [3, H, W], [H, W, 3] or [H, W], got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if not np.isfinite(arr).all():
        raise ValueError("scene image contains NaN or infinite values")
    return np.clip(arr, 0.0, 1.0)


def scene_rect(profile: DisplayProfile, image_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the scene inside the window."""
    ih, iw = image_hw
    if profile.fit == "stretch":
        return 0, 0, profile.width, profile.height
    if profile.fit == "native":
        w, h = iw, ih
    elif profile.image_size is not None:
        s = profile.image_size / max(ih, iw)
        w, h = round(iw * s), round(ih * s)
    else:
        s = min(profile.width / iw, profile.height / ih)
        w, h = int(iw * s), int(ih * s)
    if w > profile.width or h > profile.height:
        raise RigConfigError(f"a {w}x{h} scene does not fit the {profile.width}x{profile.height} display "
                             f"{profile.name!r}; lower image_size or use fit: contain")
    return (profile.width - w) // 2, (profile.height - h) // 2, w, h


def encode(linear: np.ndarray, gamma: float) -> np.ndarray:
    """Linear intensity in [0, 1] -> uint8 drive values for a monitor of native ``gamma``."""
    x = np.clip(linear, 0.0, 1.0)
    if gamma != 1.0:
        x = x ** (1.0 / gamma)
    return np.round(x * 255.0).astype(np.uint8)


def _encode_fast(linear: np.ndarray, gamma: float) -> np.ndarray:
    """:func:`encode` through a 16-bit lookup table (large images; identical except at rare level boundaries)."""
    if linear.size < 65536:
        return encode(linear, gamma)
    lut = encode(np.linspace(0.0, 1.0, 65536), gamma)
    return lut[(np.clip(linear, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)]


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return img
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32)).resize((w, h),
                                                                                                  Image.BILINEAR))
             for c in range(3)]
    return np.stack(chans, axis=-1)


def render_scene(image: Any, profile: DisplayProfile) -> np.ndarray:
    """The window contents ``[height, width, 3]`` uint8 for a scene."""
    img = to_hwc(image)
    x, y, w, h = scene_rect(profile, img.shape[:2])
    fb = np.empty((profile.height, profile.width, 3), dtype=np.uint8)
    fb[...] = encode(np.float32(profile.background), profile.gamma)
    fb[y:y + h, x:x + w] = _encode_fast(_resize(img, w, h), profile.gamma)
    return fb


def _check_frames(frames: np.ndarray, profile: DisplayProfile) -> None:
    if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[1:] != (profile.height, profile.width, 3):
        raise ValueError(f"display {profile.name!r} shows frames [F, {profile.height}, {profile.width}, 3] uint8 "
                         f"unchanged; got {frames.shape} {frames.dtype}")


class OffscreenDisplay:
    """Renders into ``framebuffer`` instead of a window; observers are called after every update.

    Attributes:
        framebuffer: current contents ``[height, width, 3]`` uint8.
        rect: ``(x, y, w, h)`` of the last scene.
        shown, presented: number of scenes shown / frames presented.
    """

    def __init__(self, profile: DisplayProfile) -> None:
        self.profile = profile
        self.framebuffer = np.zeros((profile.height, profile.width, 3), dtype=np.uint8)
        self.rect = (0, 0, profile.width, profile.height)
        self.shown = 0
        self.presented = 0
        self.late_frames = 0
        self.observers: list[Callable[[str, Any], None]] = []
        self.closed = False

    @property
    def settle_s(self) -> float:
        return self.profile.settle_s

    def _notify(self, kind: str, payload: Any) -> None:
        for fn in self.observers:
            fn(kind, payload)

    def show(self, image: Any) -> None:
        img = to_hwc(image)
        self.rect = scene_rect(self.profile, img.shape[:2])
        self.framebuffer = render_scene(img, self.profile)
        self.shown += 1
        self._notify("scene", self.framebuffer)

    def present(self, frames: np.ndarray, period_s: float) -> None:
        _check_frames(frames, self.profile)
        self.presented += frames.shape[0]
        self.framebuffer = frames[-1]
        self._notify("frames", frames)
        self.framebuffer = np.zeros_like(self.framebuffer)

    def close(self) -> None:
        self.closed = True

    def describe(self) -> dict[str, Any]:
        return {"backend": "offscreen", "profile": self.profile.name}


_TK_ROOT: list[Any] = []  # one hidden Tk root shared by all windows of the process


class TkDisplay(OffscreenDisplay):
    """Borderless fullscreen Tk window at ``(profile.x, profile.y)`` of size ``width x height``."""

    def __init__(self, profile: DisplayProfile) -> None:
        super().__init__(profile)
        try:
            import tkinter as tk
        except ImportError as exc:
            raise BackendUnavailableError(f"the Tk display backend needs tkinter ({exc})") from exc
        try:
            if not _TK_ROOT:
                root = tk.Tk()
                root.withdraw()
                _TK_ROOT.append(root)
            self._root = tk.Toplevel(_TK_ROOT[0])
        except tk.TclError as exc:
            raise HardwareError(f"cannot open a window for display {profile.name!r} (no X/Wayland display?): {exc}") \
                from exc
        self._tk = tk
        self._root.overrideredirect(True)
        self._root.geometry(f"{profile.width}x{profile.height}+{profile.x}+{profile.y}")
        self._root.configure(background="black", cursor="none")
        self._label = tk.Label(self._root, borderwidth=0, highlightthickness=0, background="black")
        self._label.pack()
        self._photo = None
        self._blit(self.framebuffer)

    def _blit(self, fb: np.ndarray) -> None:
        header = f"P6 {fb.shape[1]} {fb.shape[0]} 255\n".encode("ascii")
        self._photo = self._tk.PhotoImage(data=header + np.ascontiguousarray(fb).tobytes(), format="PPM")
        self._label.configure(image=self._photo)
        self._root.update()

    def show(self, image: Any) -> None:
        super().show(image)
        self._blit(self.framebuffer)

    def present(self, frames: np.ndarray, period_s: float) -> None:
        _check_frames(frames, self.profile)
        t_next = time.perf_counter()
        for frame in frames:
            self._blit(frame)
            t_next += period_s
            slack = t_next - time.perf_counter()
            if slack > 0:
                time.sleep(slack)
            else:
                self.late_frames += 1
        self.presented += frames.shape[0]
        self._blit(np.zeros_like(frames[0]))

    def close(self) -> None:
        if not self.closed:
            self._root.destroy()
        super().close()

    def describe(self) -> dict[str, Any]:
        return {"backend": "tk", "profile": self.profile.name, "geometry": [self.profile.width, self.profile.height,
                                                                            self.profile.x, self.profile.y]}


def open_display(profile: DisplayProfile, offscreen: bool = False) -> OffscreenDisplay:
    """The backend named by the profile (``offscreen=True`` forces the offscreen one)."""
    if offscreen or profile.backend == "offscreen":
        return OffscreenDisplay(profile)
    if profile.backend == "tk":
        return TkDisplay(profile)
    raise RigConfigError(f"display profile {profile.name!r}: unknown backend {profile.backend!r} (tk | offscreen)")

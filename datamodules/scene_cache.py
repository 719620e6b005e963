"""A split of scenes and labels stored once on disk as memory-mapped ``.npy`` files, reused by every run.

Training reads the same scenes thousands of times; rendering (procedural world, ~100 scenes/s on 2 cores) or
decoding (JPEG) them every step is where the time went. :meth:`SceneCache.build` writes a dataset once:

* ``image.npy``        ``[N, 3, S, S]`` uint8 (``round(255 * image)``; exact for 8-bit sources such as the
  procedural world and JPEG/PNG files, whose float images are ``k / 255``);
* ``segmentation.npy`` ``[N, S, S]`` uint8, 255 = unknown (read back as int64 with -1 = unknown);
* every other tensor field (``attributes``, ``landmarks``, ``identity``, ``index``, ...) in its own dtype.

The folder name carries a hash of the dataset's *fingerprint* (what defines its content), so a changed dataset
gets a new cache and a stale one is never read. Writing goes to ``<name>.partial-<pid>`` and is renamed into place
when complete (a crash leaves no half cache that looks finished); a lock file serialises concurrent builders.
:meth:`SceneCache.derived` stores arrays computed from the scenes (E(I) targets, features) beside them, keyed
the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

__all__ = ["SceneCache", "SceneCacheError", "fingerprint_hash"]

FORMAT_VERSION = 1
#: memory maps are opened copy-on-write ("c"): writable tensors for torch, the files never change
UNKNOWN_SEGMENT = 255


class SceneCacheError(RuntimeError):
    """A scene cache is missing, incomplete or does not match what was asked for."""


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable fingerprint."""
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _encode(key: str, value: Tensor) -> np.ndarray:
    if key == "image":
        return value.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    if key == "segmentation":
        seg = value.to(torch.int64)
        return torch.where(seg < 0, UNKNOWN_SEGMENT, seg).clamp_(0, 255).to(torch.uint8).numpy()
    return value.numpy()


def _batch_items(dataset: Any, indices: list[int]) -> list[dict[str, Any]]:
    getitems = getattr(dataset, "__getitems__", None)
    return getitems(indices) if getitems is not None else [dataset[i] for i in indices]


class SceneCache:
    """An opened cache (read-only memory maps). ``len(cache)`` scenes; ``cache.images`` is ``[N,3,S,S]`` uint8."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        if not manifest.is_file():
            raise SceneCacheError(f"{self.root} is not a finished scene cache (no manifest.json); delete it and "
                                  "let the next run rebuild it")
        self.manifest = json.loads(manifest.read_text())
        if self.manifest.get("format") != FORMAT_VERSION:
            raise SceneCacheError(f"{self.root} has cache format {self.manifest.get('format')}, this code reads "
                                  f"{FORMAT_VERSION}; delete the folder to rebuild it")
        self.fields: dict[str, np.ndarray] = {}
        for key in self.manifest["fields"]:
            try:
                self.fields[key] = np.load(self.root / f"{key}.npy", mmap_mode="c", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise SceneCacheError(f"{self.root}/{key}.npy is unreadable ({err}); delete {self.root} to "
                                      "rebuild the cache") from err
            if len(self.fields[key]) != self.manifest["count"]:
                raise SceneCacheError(f"{self.root}/{key}.npy holds {len(self.fields[key])} rows, the manifest "
                                      f"says {self.manifest['count']}; delete {self.root} to rebuild it")

    def __len__(self) -> int:
        return int(self.manifest["count"])

    @property
    def fingerprint(self) -> dict[str, Any]:
        return self.manifest["fingerprint"]

    @property
    def images(self) -> Tensor:
        """``[N, 3, S, S]`` uint8, memory-mapped (no copy)."""
        return torch.from_numpy(self.fields["image"])

    def tensor(self, key: str) -> Tensor:
        """A whole field as a (memory-mapped) tensor."""
        if key not in self.fields:
            raise KeyError(f"the cache holds {sorted(self.fields)}, not {key!r}")
        return torch.from_numpy(self.fields[key])

    def batch(self, index: Tensor | Sequence[int], keys: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Rows ``index`` as a batch in the dataset's own conventions: ``image`` float in [0,1], ``segmentation``
        int64 with -1 = unknown, other fields as stored."""
        idx = np.asarray(torch.as_tensor(index, dtype=torch.int64))
        out: dict[str, Tensor] = {}
        for key in keys or self.fields:
            rows = torch.from_numpy(np.ascontiguousarray(self.fields[key][idx]))
            if key == "image":
                rows = rows.float().div_(255.0)
            elif key == "segmentation":
                rows = rows.long()
                rows[rows == UNKNOWN_SEGMENT] = -1
            out[key] = rows
        return out

    # -- building ---------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, dataset: Any, cache_dir: str | os.PathLike, name: str, fingerprint: dict[str, Any],
              chunk: int = 256, keys: Sequence[str] | None = None, progress: bool = True) -> SceneCache:
        """Open ``<cache_dir>/<name>-<hash(fingerprint)>``, writing it from ``dataset`` first if absent.

        ``dataset`` yields dicts with an ``image [3,S,S]`` in [0,1] (plus labels); ``keys`` limits the fields
        stored (default: every tensor or int field of the first item).
        """
        fp = {"format": FORMAT_VERSION, **fingerprint}
        root = Path(cache_dir) / f"{name}-{fingerprint_hash(fp)}"
        with _locked(Path(cache_dir) / f".{name}.lock"):
            if (root / "manifest.json").is_file():
                return cls(root)
            n = len(dataset)
            if n < 1:
                raise SceneCacheError(f"cannot cache an empty dataset ({name})")
            partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
            for stale in root.parent.glob(f"{root.name}.partial-*"):
                shutil.rmtree(stale, ignore_errors=True)  # a crashed earlier build: never read, just removed
            partial.mkdir(parents=True)
            arrays: dict[str, np.ndarray] = {}
            bar = tqdm(total=n, desc=f"caching {name}", unit="scene", disable=not progress, leave=False)
            for start in range(0, n, chunk):
                ids = list(range(start, min(n, start + chunk)))
                items = _batch_items(dataset, ids)
                first = items[0]
                wanted = keys or [k for k, v in first.items() if isinstance(v, (Tensor, int, np.integer))]
                if "image" not in wanted:
                    raise SceneCacheError(f"dataset items of {name} have no 'image' tensor (keys {sorted(first)})")
                for key in wanted:
                    block = _encode(key, torch.stack([torch.as_tensor(it[key]) for it in items]))
                    if key not in arrays:
                        arrays[key] = np.lib.format.open_memmap(partial / f"{key}.npy", mode="w+",
                                                                dtype=block.dtype, shape=(n, *block.shape[1:]))
                    arrays[key][start:start + len(ids)] = block
                bar.update(len(ids))
            bar.close()
            for arr in arrays.values():
                arr.flush()
            manifest = {"format": FORMAT_VERSION, "name": name, "count": n, "fingerprint": fp,
                        "fields": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()}}
            (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
            del arrays
            os.replace(partial, root)
        return cls(root)

    # -- arrays derived from the scenes ---------------------------------------------------------------------
    def derived(self, name: str, key: dict[str, Any], compute: Callable[[Tensor], Tensor],
                chunk: int = 256, progress: bool = True) -> Tensor:
        """``compute`` applied to every scene (in chunks of row indices), stored once as ``derived/<name>-<hash>.npy``.

        ``compute(index [b]) -> [b, ...]`` float tensor; ``key`` names what the result depends on besides the scenes
        (e.g. the encoder weights' hash), so a different network gets a different file. Returns a memory-mapped
        float32 tensor ``[N, ...]``.
        """
        folder = self.root / "derived"
        path = folder / f"{name}-{fingerprint_hash(key)}.npy"
        with _locked(folder / f".{name}.lock"):
            if not path.is_file():
                n = len(self)
                tmp = path.with_name(f"{path.stem}.partial-{os.getpid()}.npy")
                arr: np.ndarray | None = None
                for start in tqdm(range(0, n, chunk), desc=f"computing {name}", unit="chunk",
                                  disable=not progress, leave=False):
                    idx = torch.arange(start, min(n, start + chunk))
                    block = compute(idx).detach().float().cpu().numpy()
                    if arr is None:
                        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, *block.shape[1:]))
                    arr[start:start + len(idx)] = block
                assert arr is not None
                arr.flush()
                del arr
                os.replace(tmp, path)
        return torch.from_numpy(np.load(path, mmap_mode="c", allow_pickle=False))

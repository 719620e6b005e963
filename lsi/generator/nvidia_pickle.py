"""Restricted reader for NVIDIA network pickles (StyleGAN2-ADA, StyleGAN3, StyleGAN-XL): data only, no code.

An NVIDIA network pickle is a pickled dict (``G``, ``D``, ``G_ema``, ``augment_pipe``, ...). Every network
module in it is a *persistent record*: ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {type: 'class', version: 6, module_src: <whole source file>, class_name, state}`` where ``state`` is
the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, hook dicts, plain attributes). The
official loader ``exec()``s ``module_src``; this reader never compiles, executes or even keeps it (only its
SHA-256): each record becomes a :class:`ModuleRecord` holding the class name and the state.

Safety model (details in docs/generators.md):

* Every global the pickle names goes through :func:`lsi.generator.pickle_globals.resolve_global`: a whitelist
  of data constructors; :class:`UnsafePickleError` as soon as the pickle calls anything of code execution /
  system access (``os``, ``subprocess``, ``builtins.eval``/``exec``/``getattr``, ...); an inert
  :class:`ForeignObject` for anything else (e.g. the timm classes of StyleGAN-XL's discriminator ``D``, which
  is never looked at). Only ``G_ema`` is rebuilt; if it needs a stand-in, that is a clear
  :class:`GeneratorFileError`. No module is imported.
* The opcodes that call or mutate objects (``REDUCE``, ``NEWOBJ``, ``BUILD``, ``INST``/``OBJ``) are checked
  against the same whitelist, numpy object arrays are refused and persistent ids are refused in the outer
  pickle (tensor storages are legacy ``torch.save`` bytes read with ``weights_only=True``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from lsi.generator.errors import GeneratorFileError, UnsafePickleError
from lsi.generator.pickle_globals import (
    DeniedGlobal,
    checked_dtype,
    is_allowed_call,
    is_allowed_class,
    resolve_global,
    set_array_state,
)
from lsi.generator.pickle_records import EasyDictRecord, ForeignObject, ModuleRecord


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: its opcodes can be checked
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"persistent id {pid!r} in a network pickle; this is not an NVIDIA network pickle")

    @staticmethod
    def _call(func: Any, args: tuple) -> Any:
        if isinstance(func, DeniedGlobal):
            raise func.refuse()
        if not is_allowed_call(func):
            raise UnsafePickleError(f"the pickle calls {func!r}, which is not a whitelisted data constructor")
        return func(*args)

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    @staticmethod
    def _new(cls: Any, args: tuple, kwargs: dict | None = None) -> Any:
        if isinstance(cls, DeniedGlobal):
            raise cls.refuse()
        if not is_allowed_class(cls):
            raise UnsafePickleError(f"the pickle creates an instance of {cls!r}, which is not whitelisted")
        return cls.__new__(cls, *args, **(kwargs or {}))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass: Any, args: list) -> None:  # INST / OBJ (protocols 0 and 1)
        self.append(self._call(klass, tuple(args)))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, (ModuleRecord, EasyDictRecord)):
            inst.__setstate__(state)
        elif isinstance(inst, ForeignObject):
            inst.state = state
        elif type(inst) is np.ndarray:
            set_array_state(inst, state)
        elif isinstance(inst, np.dtype):
            inst.__setstate__(state)
            checked_dtype(inst)
        elif isinstance(inst, dict) and not state:
            pass
        else:
            raise UnsafePickleError(f"the pickle sets the state of a {type(inst).__name__}; refused")
    dispatch[pickle.BUILD[0]] = load_build


def read_network_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` into plain data (dicts, tensors, :class:`ModuleRecord` trees) without running its code."""
    path = Path(path)
    if not path.is_file():
        raise GeneratorFileError(f"network pickle {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(b"PK"):
            raise GeneratorFileError(f"{path} is a torch.save zip checkpoint, not an NVIDIA network pickle; "
                                     "export the generator with the official code's pickle or convert it")
        f.seek(0)
        try:
            return _RestrictedUnpickler(f).load()
        except GeneratorFileError:
            raise
        except Exception as err:  # noqa: BLE001 - truncated/corrupt files: say which file
            raise GeneratorFileError(f"{path} is not a readable network pickle ({type(err).__name__}: {err})") from err


def g_ema_record(data: Any, path: str | Path = "<pickle>") -> ModuleRecord:
    """The ``G_ema`` network of an unpickled snapshot dict (or the record itself if that is what was pickled)."""
    if isinstance(data, ModuleRecord):
        return data
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, ForeignObject) for x in data):
        raise GeneratorFileError(f"{path} is a TensorFlow-era StyleGAN pickle (G, D, Gs); convert it once with the "
                                 "official `legacy.py --source ... --dest ...`, then load or convert the result")
    if not isinstance(data, dict) or "G_ema" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise GeneratorFileError(f"{path} has no 'G_ema' entry (found {keys}); pass a StyleGAN2-ADA/StyleGAN3/"
                                 "StyleGAN-XL training snapshot or a file written by convert_generator")
    g = data["G_ema"]
    if not isinstance(g, ModuleRecord) or not g.persistent:
        raise GeneratorFileError(f"{path}: 'G_ema' is {g!r}, not a persistent network record")
    return g

"""The whitelist of a network pickle's globals: what each reference becomes (never an import of its module).

``resolve_global(module, name)`` is the only way a name in the pickle turns into something callable:

* whitelisted data constructors - tensor/parameter rebuilds (storages through ``torch.load(...,
  weights_only=True)``), ``collections.OrderedDict``, numpy ``dtype``/``ndarray``/``_reconstruct``/``scalar``/
  ``_frombuffer`` (``numpy.core.*`` and ``numpy._core.*``), ``dnnlib``'s ``EasyDict``, dill's ``_get_attr``/
  ``_import_module``/``_load_type``/``_create_array`` (as data), ``copyreg._reconstructor`` of records,
  ``torch_utils.persistence._reconstruct_persistent_obj`` (a :class:`ModuleRecord`; ``module_src`` dropped);
* ``torch.nn.modules.*`` classes - :class:`ModuleRecord` classes;
* names that can only mean code execution or system access (``os``, ``subprocess``, ``builtins`` other than
  plain types, ``sys``, ``importlib``, ``socket``, ...) - a :class:`DeniedGlobal`: inert as a mere reference
  (dill may store such references in ``D``), :class:`UnsafePickleError` as soon as the pickle calls it;
* anything else - an inert :class:`ForeignObject` class.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from lsi.generator.errors import GeneratorFileError, UnsafePickleError
from lsi.generator.pickle_records import (
    EasyDictRecord,
    ForeignObject,
    ModuleRecord,
    foreign_class,
    torch_module_class,
)

_DENIED_MODULE_ROOTS = frozenset({
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "shutil", "importlib", "runpy", "code",
    "codeop", "pty", "socket", "ctypes", "marshal", "pickle", "_pickle", "cPickle", "webbrowser",
    "multiprocessing", "signal", "platform", "pdb", "bdb", "timeit", "commands", "popen2", "asyncio",
    "threading", "_thread", "tempfile", "io", "_io", "pathlib", "posixpath", "ntpath", "glob", "urllib",
    "http", "ftplib", "smtplib", "ssl", "pkgutil", "zipimport", "site", "sysconfig", "operator", "inspect",
    "types", "gc", "pip", "setuptools", "distutils",
})
_DENIED_GLOBALS = frozenset({("torch", "load"), ("torch.serialization", "load"), ("numpy", "load"),
                             ("torch.jit", "load"), ("torch.hub", "load"), ("numpy.lib.npyio", "load")})
_SAFE_BUILTIN_TYPES: dict[str, type] = {
    t.__name__: t for t in (set, frozenset, list, dict, tuple, bytes, bytearray, str, int, float, complex, bool,
                            slice, range, object)
}
_SAFE_BUILTIN_TYPES["NoneType"] = type(None)


class DeniedGlobal:
    """A reference to a code-executing / system global (``os.system``, ``builtins.eval``, ...): inert as data,
    :class:`UnsafePickleError` the moment the pickle tries to call or instantiate it."""

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname

    def refuse(self) -> UnsafePickleError:
        return UnsafePickleError(
            f"the pickle calls {self.qualname}, which would execute code or touch the system; refusing to load "
            "it. Only load network pickles from sources you trust; if you do trust this file and have the official "
            "code checked out, use load_generator(..., trust_pickle=True).")

    def __repr__(self) -> str:
        return f"<refused global {self.qualname}>"


class _ModuleRef:
    """What dill's ``_import_module(name)`` gives back here: the module's name, never the module."""

    def __init__(self, name: str) -> None:
        self.name = name



# ---- whitelisted constructors -------------------------------------------------------------------------------

def _reconstruct_persistent(meta: Any) -> ModuleRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise GeneratorFileError("a persistent record is not {type: 'class', class_name, state, ...}; "
                                 "this is not an NVIDIA network pickle this loader supports")
    rec = ModuleRecord.__new__(ModuleRecord)
    rec.__setstate__(meta.get("state") or {})
    src = meta.get("module_src")
    rec.class_name, rec.persistent, rec.version = meta["class_name"], True, meta.get("version")
    rec.source_sha256 = hashlib.sha256(src.encode()).hexdigest() if isinstance(src, str) else None
    return rec  # module_src is dropped here: never compiled, never executed


def _storage_from_bytes(data: bytes):
    if not isinstance(data, (bytes, bytearray)):
        raise GeneratorFileError("torch.storage._load_from_bytes got no bytes; the pickle is corrupt")
    try:  # a legacy torch.save of one storage; weights_only admits storages and nothing else of note
        return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - re-raised as ours with the cause
        raise GeneratorFileError(f"a tensor storage in the pickle cannot be read safely: {err}") from err


def _check_no_hooks(hooks: Any, what: str) -> None:
    if hooks:
        raise UnsafePickleError(f"a pickled {what} carries backward hooks (functions); refusing to restore them")


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise GeneratorFileError(f"a tensor is rebuilt from {type(storage).__name__}, not a torch storage")
    _check_no_hooks(hooks, "tensor")
    if metadata:
        raise GeneratorFileError("a pickled tensor carries extra metadata this loader does not restore")
    return torch._utils._rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise GeneratorFileError(f"a parameter is rebuilt from {type(data).__name__}, not a tensor")
    _check_no_hooks(hooks, "parameter")
    if state:
        raise GeneratorFileError("a pickled parameter carries extra state this loader does not restore")
    return data


def checked_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"numpy data of dtype {dtype!r} (Python objects) is refused")
    return dtype


def _np_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    if not isinstance(obj, str):
        raise UnsafePickleError(f"numpy.dtype({obj!r}) is refused: only dtype codes are accepted")
    return checked_dtype(np.dtype(obj, align, copy))


def _np_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"numpy array subclass {subtype!r} is refused")
    return np.ndarray(shape=(0,), dtype=np.uint8)  # the BUILD that follows sets shape, dtype and data


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    dtype = checked_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("a numpy scalar without raw bytes is refused")
    return np.frombuffer(bytes(data), dtype=dtype)[0].copy()


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    dtype = checked_dtype(dtype)
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _dill_import_module(name: Any, safe: bool = False) -> _ModuleRef:
    if not isinstance(name, str):
        raise GeneratorFileError("dill _import_module got a non-string module name")
    return _ModuleRef(name)


def _dill_get_attr(obj: Any, name: Any) -> Any:
    if isinstance(obj, _ModuleRef) and isinstance(name, str):
        return resolve_global(obj.name, name)
    return foreign_class(f"getattr({type(obj).__name__}, {name!r})")  # e.g. a bound method of D: inert


def _dill_load_type(name: Any) -> Any:
    if name in _SAFE_BUILTIN_TYPES:
        return _SAFE_BUILTIN_TYPES[name]
    return foreign_class(f"dill type {name!r}")


def set_array_state(array: np.ndarray, state: Any) -> np.ndarray:
    if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], (bytes, bytearray))):
        raise UnsafePickleError("a numpy array state without raw bytes (object array) is refused")
    checked_dtype(state[2])
    array.__setstate__(state)
    return array


def _dill_create_array(f: Any, args: Any, state: Any, npdict: Any = None) -> np.ndarray:
    """dill's form of a pickled ndarray: ``f(*args)`` then ``__setstate__(state)``; ``f`` must be numpy's."""
    if f is not _np_reconstruct or not isinstance(args, tuple) or npdict:
        raise UnsafePickleError("dill _create_array is only accepted for plain numpy arrays")
    return set_array_state(f(*args), state)


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, (ModuleRecord, ForeignObject)) and state is None:
        return cls.__new__(cls)
    raise UnsafePickleError(f"copyreg._reconstructor({cls!r}, {base!r}, ...) is refused")


_WHITELIST: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("numpy", "dtype"): _np_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("dnnlib.util", "EasyDict"): EasyDictRecord,
    ("dnnlib", "EasyDict"): EasyDictRecord,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
}
for _np_pkg in ("numpy.core", "numpy._core"):
    for _mod in ("multiarray", "_multiarray_umath"):
        _WHITELIST[(f"{_np_pkg}.{_mod}", "_reconstruct")] = _np_reconstruct
        _WHITELIST[(f"{_np_pkg}.{_mod}", "scalar")] = _np_scalar
    _WHITELIST[(f"{_np_pkg}.numeric", "_frombuffer")] = _np_frombuffer
for _dill_mod in ("dill._dill", "dill.dill"):
    _WHITELIST[(_dill_mod, "_import_module")] = _dill_import_module
    _WHITELIST[(_dill_mod, "_get_attr")] = _dill_get_attr
    _WHITELIST[(_dill_mod, "_load_type")] = _dill_load_type
    _WHITELIST[(_dill_mod, "_create_array")] = _dill_create_array
_WHITELIST_CALLABLES = tuple(v for v in _WHITELIST.values() if not isinstance(v, type)) + (OrderedDict,)


def resolve_global(module: str, name: str) -> Any:
    """What a pickle's reference to ``module.name`` becomes here (never an import of ``module``)."""
    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
    if (module, name) in _WHITELIST:
        return _WHITELIST[(module, name)]
    if module == "builtins" and name in _SAFE_BUILTIN_TYPES:
        return _SAFE_BUILTIN_TYPES[name]
    root = module.split(".")[0]
    if root in _DENIED_MODULE_ROOTS or root == "builtins" or (module, name) in _DENIED_GLOBALS:
        return DeniedGlobal(f"{module}.{name}")
    if module.startswith("torch.nn.modules."):
        return torch_module_class(f"{module}.{name}")
    return foreign_class(f"{module}.{name}")


def is_allowed_call(func: Any) -> bool:
    """May the unpickler call ``func`` (REDUCE/INST/OBJ)? Whitelisted constructors and inert stand-ins only."""
    if isinstance(func, ForeignObject):
        return True
    if isinstance(func, type):
        return is_allowed_class(func)
    return any(func is f for f in _WHITELIST_CALLABLES)


def is_allowed_class(cls: Any) -> bool:
    """May the unpickler create an instance of ``cls`` (NEWOBJ)?"""
    return isinstance(cls, type) and (issubclass(cls, (ForeignObject, ModuleRecord)) or cls in (
        *(t for t in _SAFE_BUILTIN_TYPES.values() if t is not object), OrderedDict, EasyDictRecord))

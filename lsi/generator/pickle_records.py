"""Plain-data stand-ins for what a network pickle holds: module records, inert foreign objects, EasyDicts.

* :class:`ModuleRecord` - a pickled network module as data: ``class_name`` and ``state`` (the module
  ``__dict__``: ``_parameters``, ``_buffers``, ``_modules`` of sub-records, attributes). Persistent records
  (NVIDIA's ``torch_utils.persistence``) remember only the SHA-256 of their dropped ``module_src``; plain
  ``torch.nn`` modules (e.g. StyleGAN-XL's ``Embedding``) are records too.
* :class:`ForeignObject` - an inert stand-in for an object of any class outside the whitelist: calling,
  building or filling it only records data.
* :class:`EasyDictRecord` - ``dnnlib.util.EasyDict`` as a plain dict.
"""

from __future__ import annotations

from typing import Any

import torch

from lsi.generator.errors import GeneratorFileError


class ForeignObject:
    """Inert stand-in for an object of a class outside the whitelist; it records what the pickle fed it."""

    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> ForeignObject:
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items = args, kwargs, None, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never runs anything of the pickle's
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> ForeignObject:  # e.g. a stand-in function result
        return foreign_class(f"{self.qualname}(...)")(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def append(self, value: Any) -> None:
        self.items.append(value)

    def extend(self, values: Any) -> None:
        self.items.extend(values)

    add = append

    def __repr__(self) -> str:
        return f"<inert stand-in for {self.qualname}>"


_FOREIGN_CLASSES: dict[str, type] = {}


def foreign_class(qualname: str) -> type:
    """The (cached) inert stand-in class for the global ``qualname``."""
    if qualname not in _FOREIGN_CLASSES:
        _FOREIGN_CLASSES[qualname] = type("Foreign", (ForeignObject,), {"qualname": qualname})
    return _FOREIGN_CLASSES[qualname]


class ModuleRecord:
    """A pickled network module as plain data: ``class_name`` and ``state`` (the module ``__dict__``).

    ``persistent`` records come from ``_reconstruct_persistent_obj`` (``source_sha256`` identifies the dropped
    ``module_src``); the others are ordinary ``torch.nn`` modules (e.g. StyleGAN-XL's ``Embedding``).
    """

    torch_class = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> ModuleRecord:
        obj = object.__new__(cls)
        obj.class_name, obj.state, obj.persistent = cls.torch_class, {}, False
        obj.version, obj.source_sha256 = None, None
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise GeneratorFileError(f"the state of a pickled {self.class_name} is {type(state).__name__}, not a dict")
        self.state = state

    def params(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in (self.state.get("_parameters") or {}).items() if v is not None}

    def buffers(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in (self.state.get("_buffers") or {}).items() if v is not None}

    def children(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def child(self, name: str) -> ModuleRecord:
        sub = self.children().get(name)
        if not isinstance(sub, ModuleRecord):
            kind = getattr(sub, "qualname", type(sub).__name__)
            found = "missing" if sub is None else f"an object of unsupported class {kind}"
            raise GeneratorFileError(f"{self.class_name} has no usable sub-module {name!r} ({found}); "
                                     f"its sub-modules are {sorted(self.children())}")
        return sub

    def attr(self, name: str, default: Any = ...) -> Any:
        if name in self.state:
            return self.state[name]
        if default is not ...:
            return default
        raise GeneratorFileError(f"{self.class_name} has no attribute {name!r}; this layout is not supported")

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """All parameters and buffers below this record, keyed like ``state_dict()`` (None entries skipped)."""
        out = {prefix + k: v for k, v in {**self.params(), **self.buffers()}.items()}
        for name, sub in self.children().items():
            if isinstance(sub, ModuleRecord):
                out.update(sub.tensors(f"{prefix}{name}."))
        return out

    def __repr__(self) -> str:
        return f"<record {self.class_name} children={list(self.children())}>"


_TORCH_MODULE_CLASSES: dict[str, type] = {}


def torch_module_class(qualname: str) -> type:
    """The (cached) record class for the ``torch.nn`` module class ``qualname``."""
    if qualname not in _TORCH_MODULE_CLASSES:
        _TORCH_MODULE_CLASSES[qualname] = type("TorchModuleRecord", (ModuleRecord,), {"torch_class": qualname})
    return _TORCH_MODULE_CLASSES[qualname]


class EasyDictRecord(dict):
    """``dnnlib.util.EasyDict`` read back as a plain dict."""

    def __setstate__(self, state: Any) -> None:  # EasyDict keeps its items in the dict, not in __dict__
        pass


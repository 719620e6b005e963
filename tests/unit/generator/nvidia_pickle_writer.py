"""Test-fixture writer: tiny random StyleGAN2-ADA / StyleGAN3 / StyleGAN-XL networks in the exact real pickle layout.

No official code is used or needed. Each network module is written the way ``torch_utils.persistence`` pickles
it: ``REDUCE(torch_utils.persistence._reconstruct_persistent_obj, ({type: 'class', version: 6, module_src,
class_name, state},))`` where ``state`` is the module ``__dict__`` (``training``, ``_parameters``,
``_buffers``, ``_non_persistent_buffers_set``, the hook dicts of the chosen torch generation, ``_modules``,
plain attributes with their real types, ``_init_args``, ``_init_kwargs``). ``module_src`` is a string that is
never run (tests put a trap in it). Tensors, numpy values and ``torch.nn.Embedding`` are pickled by the
standard machinery; ``numpy.core.*`` names (numpy 1.x files), dill's helpers (``_create_array``, ``_get_attr``
/``_import_module``, ``_load_type('set')``), ``dnnlib.util.EasyDict`` and foreign classes (timm in D) are
emitted as the global references those files contain. The networks themselves are built by ``stylegan_fixtures``.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

TRAP_SOURCE = "raise RuntimeError('module_src must never be executed')\n"
HOOKS_TORCH2 = ("_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
                "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
                "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
                "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
HOOKS_TORCH1 = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
                "_load_state_dict_pre_hooks")


class GlobalRef:
    """A reference to ``module.name`` written as a pickle global without importing anything."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):  # pickle insists that REDUCE callables are callable
        raise RuntimeError("fixture-only reference")


class Rec:
    """One network module: class name, ordered parameters/buffers/sub-modules/attributes, init kwargs."""

    def __init__(self, class_name: str, init_kwargs: dict | None = None) -> None:
        self.class_name, self.init_kwargs = class_name, dict(init_kwargs or {})
        self.params: dict = {}
        self.buffers: dict = {}
        self.modules: dict = {}
        self.attrs: dict = {}
        self.module_src = TRAP_SOURCE


class Foreign:
    """An object of a class our reader must not know (e.g. timm's in StyleGAN-XL's D): NEWOBJ + BUILD."""

    def __init__(self, module: str, name: str, state: dict) -> None:
        self.ref, self.state = GlobalRef(module, name), state


class _Writer(pickle._Pickler):
    def __init__(self, f, style: str, torch_gen: int) -> None:
        super().__init__(f, protocol=4)
        self.style, self.torch_gen = style, torch_gen  # style: numpy2 | numpy1 | dill

    def save(self, obj, save_persistent_id=True):
        memo = self.memo.get(id(obj))
        if memo is not None and not isinstance(obj, (str, int, float, bool, type(None))):
            return self.write(self.get(memo[0]))  # shared objects (e.g. G is G_ema) are written once
        if isinstance(obj, GlobalRef):
            return self._save_global_ref(obj)
        if isinstance(obj, Rec):
            return self.save_reduce(GlobalRef("torch_utils.persistence", "_reconstruct_persistent_obj"),
                                    (self._meta(obj),), None, obj=obj)
        if isinstance(obj, Foreign):
            return self._save_newobj(obj.ref, obj, obj.state)
        if isinstance(obj, EasyDict):
            self._save_newobj(GlobalRef("dnnlib.util", "EasyDict"), obj, None)
            return self._batch_setitems(iter(dict(obj).items()))
        if isinstance(obj, np.ndarray) and self.style != "numpy2":
            f, args, state = obj.__reduce__()
            if self.style == "dill":
                f = DillAttr("numpy._core._multiarray_umath", "_reconstruct")
                return self.save_reduce(GlobalRef("dill._dill", "_create_array"), (f, args, state, None), obj=obj)
            return self.save_reduce(GlobalRef("numpy.core.multiarray", "_reconstruct"), args, state, obj=obj)
        if isinstance(obj, np.generic) and self.style == "numpy1":
            return self.save_reduce(GlobalRef("numpy.core.multiarray", "scalar"), obj.__reduce__()[1], obj=obj)
        if isinstance(obj, DillAttr):
            return self.save_reduce(GlobalRef("dill._dill", "_get_attr"), (_DillModule(obj.module), obj.name), obj=obj)
        if isinstance(obj, _DillModule):
            return self.save_reduce(GlobalRef("dill._dill", "_import_module"), (obj.name,), obj=obj)
        if isinstance(obj, set) and self.style == "dill":  # dill 0.3: set via _load_type('set')
            return self.save_reduce(_DillType("set"), (list(obj),), obj=obj)
        if isinstance(obj, _DillType):
            return self.save_reduce(GlobalRef("dill._dill", "_load_type"), (obj.name,), obj=obj)
        return super().save(obj, save_persistent_id)

    def _save_global_ref(self, ref: GlobalRef) -> None:
        self.save(ref.module)
        self.save(ref.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(ref)

    def _save_newobj(self, cls_ref: GlobalRef, obj, state) -> None:
        self.save(cls_ref)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        if state is not None:
            self.save(state)
            self.write(pickle.BUILD)

    def _meta(self, rec: Rec) -> dict:
        container = dict if self.torch_gen == 2 else OrderedDict
        state = {"training": False, "_parameters": container(rec.params), "_buffers": container(rec.buffers),
                 "_non_persistent_buffers_set": set()}
        for hook in (HOOKS_TORCH2 if self.torch_gen == 2 else HOOKS_TORCH1):
            state[hook] = None if hook == "_is_full_backward_hook" else OrderedDict()
        state["_modules"] = container(rec.modules)
        state.update(rec.attrs)
        state["_init_args"] = ()
        state["_init_kwargs"] = rec.init_kwargs
        return {"type": "class", "version": 6, "module_src": rec.module_src, "class_name": rec.class_name,
                "state": state}


class DillAttr:
    """dill's ``_get_attr(_import_module(module), name)``: a reference written without importing anything."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):
        raise RuntimeError("fixture-only reference")


class _DillModule:
    def __init__(self, name: str) -> None:
        self.name = name


class _DillType:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args):
        raise RuntimeError("fixture-only reference")


class EasyDict(dict):
    """Pickled as ``dnnlib.util.EasyDict``."""


def dump(obj, path: str | Path, style: str = "numpy2", torch_gen: int = 2) -> Path:
    """Pickle ``obj`` (dicts of :class:`Rec` trees, tensors, ...) in the NVIDIA layout."""
    buf = io.BytesIO()
    _Writer(buf, style, torch_gen).dump(obj)
    Path(path).write_bytes(buf.getvalue())
    return Path(path)

"""Loading a network pickle runs no code from it: module_src is never executed, dangerous globals are refused."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import stylegan_fixtures as sf
import torch
from nvidia_pickle_writer import DillAttr, Foreign, GlobalRef, Rec, dump

from lsi.generator import GeneratorFileError, UnsafePickleError, load_generator
from lsi.generator.nvidia_pickle import read_network_pickle
from lsi.generator.pickle_records import ForeignObject


class Evil:
    """An object whose unpickling calls ``func(arg)``."""

    def __init__(self, func, arg) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _all_records(rec):
    yield rec
    for sub in rec.modules.values():
        if isinstance(sub, Rec):
            yield from _all_records(sub)


def _write_file_code(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('module_src was executed')\n"


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3", "stylegan_xl"])
def test_module_src_of_every_record_is_never_executed(tmp_path, monkeypatch, family):
    marker = tmp_path / "pwned"
    g = {"stylegan2": sf.stylegan2_generator, "stylegan3": sf.stylegan3_generator,
         "stylegan_xl": sf.stylegan_xl_generator}[family]()
    for rec in _all_records(g):
        rec.module_src = _write_file_code(marker) + sf.__doc__.replace("\\", "/")  # valid, harmful if run
    path = dump(sf.snapshot(g, g, None), tmp_path / "net.pkl", style="dill" if family == "stylegan_xl" else "numpy2")

    def refuse(*args, **kwargs):
        raise AssertionError("the loader compiled or executed code")

    load_generator(path)  # first: torch.load's lazy imports legitimately exec their own modules
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", refuse)
    G = load_generator(path)
    monkeypatch.undo()
    assert not marker.exists()
    assert G.kind == family
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    rec = read_network_pickle(path)["G_ema"]
    assert rec.persistent and len(rec.source_sha256) == 64 and not hasattr(rec, "module_src")


@pytest.mark.parametrize("func, arg_of", [
    (os.system, lambda m: f"touch {m}"),
    (builtins.exec, lambda m: f"open({str(m)!r}, 'w')"),
    (builtins.eval, lambda m: f"open({str(m)!r}, 'w')"),
    (subprocess.call, lambda m: ["touch", str(m)]),
    (builtins.getattr, lambda m: str(m)),
])
@pytest.mark.parametrize("where", ["top_level", "inside_g_ema"])
def test_reduce_to_code_execution_raises_and_runs_nothing(tmp_path, func, arg_of, where):
    marker = tmp_path / "pwned"
    g = sf.stylegan2_generator()
    evil = Evil(func, arg_of(marker))
    if where == "top_level":
        data = {"G_ema": g, "D": evil}
    else:
        g.modules["synthesis"].attrs["cache"] = evil
        data = {"G_ema": g}
    path = dump(data, tmp_path / "evil.pkl")
    with pytest.raises(UnsafePickleError, match="would execute code or touch the system") as info:
        load_generator(path)
    assert not marker.exists()
    assert func.__name__ in str(info.value)


def test_dill_module_references_to_code_execution_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    system = DillAttr("os", "system")  # dill's _get_attr(_import_module('os'), 'system')
    path = dump({"G_ema": sf.stylegan2_generator(), "D": Evil(system, f"touch {marker}")}, tmp_path / "evil.pkl",
                style="dill")
    with pytest.raises(UnsafePickleError, match="os.system"):
        load_generator(path)
    assert not marker.exists()


def test_a_mere_reference_to_a_dangerous_global_is_inert_data(tmp_path):
    # dill can store references such as builtins.getattr inside D; they are refused only when called
    path = dump({"G_ema": sf.stylegan2_generator(), "D": {"fn": os.system, "get": builtins.getattr}},
                tmp_path / "ref.pkl")
    refs = read_network_pickle(path)["D"]
    assert repr(refs["fn"]) == "<refused global posix.system>" and not callable(refs["fn"])
    assert load_generator(path).kind == "stylegan2"


def test_plain_pickle_protocol_2_builtin_names_are_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil(builtins.eval, "1+1")}, protocol=2))  # writes __builtin__.eval
    with pytest.raises(UnsafePickleError, match="eval"):
        load_generator(path)


def test_unknown_globals_outside_g_ema_become_inert_stand_ins(tmp_path):
    marker = tmp_path / "pwned"
    g = sf.stylegan2_generator()
    side_effect = Evil(GlobalRef("some_plugin.helpers", "write_file"), str(marker))  # unknown function: never run
    d = Foreign("timm.models.vision_transformer", "VisionTransformer", {"_modules": {"x": side_effect}})
    path = dump({"G_ema": g, "D": d}, tmp_path / "net.pkl")
    data = read_network_pickle(path)
    assert isinstance(data["D"], ForeignObject)
    assert data["D"].qualname == "timm.models.vision_transformer.VisionTransformer"
    assert load_generator(path).kind == "stylegan2"
    assert not marker.exists() and "some_plugin" not in sys.modules


def test_an_unknown_class_inside_g_ema_is_a_clear_error(tmp_path):
    g = sf.stylegan2_generator()
    g.modules["synthesis"].modules["b8"].modules["conv0"] = Foreign("timm.layers", "StdConv2d", {"w": 1})
    path = dump({"G_ema": g}, tmp_path / "net.pkl")
    with pytest.raises(GeneratorFileError, match="conv0.*timm.layers.StdConv2d"):
        load_generator(path)


def test_numpy_object_arrays_and_persistent_ids_are_refused(tmp_path):
    path = dump({"G_ema": sf.stylegan2_generator(), "x": np.array([1, "a"], dtype=object)}, tmp_path / "obj.pkl")
    with pytest.raises(UnsafePickleError, match="object"):
        read_network_pickle(path)

    class WithPersistentIds(pickle.Pickler):
        def persistent_id(self, obj):
            return "storage-0" if isinstance(obj, list) else None

    buf = io.BytesIO()
    WithPersistentIds(buf).dump({"G_ema": [1, 2]})
    (tmp_path / "pid.pkl").write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError, match="persistent id"):
        read_network_pickle(tmp_path / "pid.pkl")


def test_wrong_files_are_named_in_the_error(tmp_path, network_pickles):
    torch.save({"G_ema": torch.zeros(1)}, tmp_path / "zip.pkl")
    with pytest.raises(GeneratorFileError, match="zip.pkl.*torch.save zip"):
        load_generator(tmp_path / "zip.pkl")
    data = network_pickles["stylegan2"].read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(GeneratorFileError, match="cut.pkl is not a readable network pickle"):
        load_generator(tmp_path / "cut.pkl")
    dump({"G": sf.stylegan2_generator(), "D": None}, tmp_path / "no_ema.pkl")
    with pytest.raises(GeneratorFileError, match=r"no 'G_ema' entry \(found \['D', 'G'\]\)"):
        load_generator(tmp_path / "no_ema.pkl")
    with pytest.raises(GeneratorFileError, match="does not exist"):
        load_generator(tmp_path / "missing.pkl")
    (tmp_path / "net.ckpt").write_bytes(b"x")
    with pytest.raises(GeneratorFileError, match="unknown generator file type"):
        load_generator(tmp_path / "net.ckpt")


def test_trust_pickle_without_the_official_code_says_what_to_do(network_pickles):
    with pytest.raises(GeneratorFileError, match="trust_pickle=True needs the official code.*PYTHONPATH"):
        load_generator(network_pickles["stylegan2"], trust_pickle=True)

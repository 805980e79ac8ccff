#!/usr/bin/env python
"""Build ``Testing/data/slicer_api_v5.10.0.json``: the Slicer-side API the extension's Slicer files
may use, read straight from git mirrors of Slicer (tag v5.10.0; ``slicer.packaging`` from v5.12.0,
where it first appeared) and SlicerPyTorch (its HEAD). ``Testing/test_slicer_api_usage.py`` checks
every use in the Slicer files against this table, without Slicer, git or a network.

    .venv/bin/python scripts/build_slicer_api_table.py --slicer-git /work/.mirror/Slicer+Slicer/repo \\
        --pytorch-git /work/.mirror/fepegar+SlicerPyTorch/repo --out Testing/data/slicer_api_v5.10.0.json

Every entry carries ``at`` = "path:line" in its repository, so a finding can point at Slicer's source.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

SLICER_TAG, PACKAGING_TAG, PYTORCH_REF = "v5.10.0", "v5.12.0", "HEAD"
EFFECTS = "Modules/Loadable/Segmentations/EditorEffects"
EFFECT_HEADERS = {"qSlicerSegmentEditorAbstractEffect": f"{EFFECTS}/qSlicerSegmentEditorAbstractEffect.h",
                  "qSlicerSegmentEditorScriptedEffect": f"{EFFECTS}/qSlicerSegmentEditorScriptedEffect.h"}
ABSTRACT_EFFECT = f"{EFFECTS}/Python/SegmentEditorEffects/AbstractScriptedSegmentEditorEffect.py"
UTIL, PACKAGING, SLM = "Base/Python/slicer/util.py", "Base/Python/slicer/packaging.py", "Base/Python/slicer/ScriptedLoadableModule.py"
PNW = "Base/Python/slicer/parameterNodeWrapper"
SLICERQT = "Base/Python/slicer/slicerqt.py"
PYTORCH_UTILS = "PyTorchUtils/PyTorchUtils.py"


class Git:
    """Read-only access to one bare mirror at fixed refs (no work tree needed)."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    def _run(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.git_dir), *args], capture_output=True, text=True, check=True).stdout

    def commit(self, ref: str) -> str:
        return self._run("rev-parse", f"{ref}^{{commit}}").strip()

    def show(self, ref: str, path: str) -> str:
        return self._run("show", f"{ref}:{path}")

    def exists(self, ref: str, path: str) -> bool:
        return bool(self._run("ls-tree", "--name-only", ref, path).strip())


# -- C++ headers: what PythonQt exposes of a QObject -------------------------------------------
def _blank(text: str, pattern: str, flags: int = re.S) -> str:
    """Replace matches with spaces but keep newlines, so offsets still give the right line numbers."""
    return re.sub(pattern, lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=flags)


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c in "<([" and 1 or (c in ">)]" and -1 or 0)
        if c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _cpp_param(text: str) -> tuple[str, str]:
    """("QPoint", "QPoint xy") for "QPoint xy"; array sizes move to the type: "const int[6]"."""
    decl, _, default = text.partition("=")
    decl = re.sub(r"\s*([*&])\s*", r"\1 ", " ".join(decl.split())).strip()
    m = re.fullmatch(r"(.*?[\w*&>])\s+(\w+)\s*((?:\[\d*\])*)", decl)
    ctype, name = (m.group(1) + m.group(3), m.group(2)) if m else (decl, "")
    shown = f"{m.group(1)} {name}{m.group(3)}" if m else decl
    return ctype.replace(" [", "["), shown + (f" = {default.strip()}" if default else "")


def _declarations(body: str) -> Iterator[tuple[str, str, int]]:
    """(access, declaration text, offset) of each top-level declaration of a class body."""
    access, depth, start, i = "private", 0, 0, 0
    specifier = re.compile(r"\s*(public|protected|private|signals|Q_SIGNALS)\s*(slots|Q_SLOTS)?\s*:(?!:)")
    while i < len(body):
        if depth == 0 and i == start and (m := specifier.match(body, i)):
            access = m.group(1).replace("Q_SIGNALS", "signals") + (" slots" if m.group(2) else "")
            i = start = m.end()
            continue
        c = body[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and not body[start:i].lstrip().startswith(("enum", "struct", "class", "union")):
                yield access, body[start:i + 1], start  # a function with an inline body ends here
                start = i + 1
        elif c == ";" and depth == 0:
            yield access, body[start:i], start
            start = i + 1
        i += 1


def parse_qobject_header(text: str, cls: str, path: str) -> dict[str, Any]:
    """Methods (Q_INVOKABLE, public slots, signals), Q_PROPERTYs and enums of class ``cls``."""
    text = _blank(text, r'//[^\n]*|/\*.*?\*/')
    m = re.search(rf"class\s+(?:\w+\s+)?{cls}\s*:\s*([^{{]*)\{{", text)
    assert m, f"class {cls} not found in {path}"
    line_of = lambda offset: text.count("\n", 0, offset) + 1  # noqa: E731
    begin, depth, end = m.end(), 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        end += 1
    body = text[begin:end - 1]
    out: dict[str, Any] = {"at": f"{path}:{line_of(m.start())}",
                           "bases": [b.split()[-1] for b in _split_top(m.group(1))],
                           "methods": {}, "notExposed": {}, "properties": {}, "enums": {}}
    registered = set(re.findall(r"Q_ENUMS?\(\s*(\w+)\s*\)", body))
    for p in re.finditer(r"Q_PROPERTY\(([^()]*)\)", body):
        words = p.group(1).split()
        out["properties"][words[1]] = {"at": f"{path}:{line_of(begin + p.start())}", "type": words[0],
                                       **{k.lower(): words[words.index(k) + 1] for k in ("READ", "WRITE") if k in words}}
    body = _blank(body, r"\bQ_OBJECT\b|\bQ_GADGET\b|\bQ_\w+\s*\([^()]*\)\s*;?")
    for access, decl, offset in _declarations(body):
        at = f"{path}:{line_of(begin + offset + len(decl) - len(decl.lstrip()))}"
        decl = " ".join(decl.split())
        if e := re.fullmatch(r"enum\s+(\w+)\s*\{(.*)\}", decl):
            values = [v.split("=")[0].strip() for v in _split_top(e.group(2))]
            out["enums"][e.group(1)] = {"at": at, "registered": e.group(1) in registered, "values": values}
            continue
        decl = decl.split("{")[0].strip()
        f = re.fullmatch(r"(?P<pre>[\w\s:*&<>,]*?)\b(?P<name>~?\w+)\s*\((?P<params>.*)\)\s*(?P<post>(?:const|override|final|\s)*)"
                         r"(?:=\s*(?:0|default|delete))?", decl)
        if not f or f["name"] in (cls, "~" + cls) or f["pre"].split()[:1] in (["typedef"], ["friend"], ["using"]):
            continue
        pre = f["pre"].split()
        via = "Q_INVOKABLE" if "Q_INVOKABLE" in pre else {"public slots": "slot", "signals": "signal"}.get(access)
        if access not in ("public", "public slots", "signals"):
            continue  # protected and private members are not reachable from Python at all
        params = [_cpp_param(p) for p in _split_top(f["params"])]
        shown = " ".join(w for w in pre if w not in ("Q_INVOKABLE", "virtual"))
        const = " const" if "const" in f["post"].split() else ""
        entry = {"at": at, "params": [p[0] for p in params],
                 "sig": f"{shown} {f['name']}({', '.join(p[1] for p in params)}){const}".strip()}
        out["methods" if via else "notExposed"].setdefault(f["name"], []).append({**entry, **({"via": via} if via else {})})
    return out


def merge_effect_api(classes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The names Python sees on a qSlicerSegmentEditorScriptedEffect: its own and its base's."""
    merged: dict[str, Any] = {"classes": {}, "methods": {}, "notExposed": {}, "properties": {}, "enums": {}}
    for cls, api in classes.items():
        merged["classes"][cls] = {"at": api["at"], "bases": api["bases"]}
        for key in ("methods", "notExposed"):
            for name, overloads in api[key].items():
                merged[key].setdefault(name, []).extend({"class": cls, **o} for o in overloads)
        merged["properties"].update({k: {"class": cls, **v} for k, v in api["properties"].items()})
        merged["enums"].update({k: {"class": cls, **v} for k, v in api["enums"].items()})
    return merged  # a name in notExposed may still be reachable: through an exposed overload or a property


# -- Python sources --------------------------------------------------------------------------------
def py_function(node: ast.FunctionDef | ast.AsyncFunctionDef, path: str, method: bool = False) -> dict[str, Any]:
    """Parameter names as Python callers see them (self / cls dropped for methods)."""
    a = node.args
    decorators = [ast.unparse(d) for d in node.decorator_list]
    posonly, names = [x.arg for x in a.posonlyargs], [x.arg for x in a.args]
    if method and "staticmethod" not in decorators:
        (posonly if posonly else names).pop(0)  # self / cls: bound, never passed by the caller
    entry: dict[str, Any] = {"at": f"{path}:{node.lineno}", "args": names, "sig": f"({ast.unparse(a)})",
                             "posonly": posonly, "kwonly": [x.arg for x in a.kwonlyargs],
                             "vararg": a.vararg and a.vararg.arg, "kwarg": a.kwarg and a.kwarg.arg,
                             "decorators": decorators}
    return {k: v for k, v in entry.items() if v or k == "args"}  # keep the table small: no empty keys


def py_class(node: ast.ClassDef, path: str) -> dict[str, Any]:
    methods = {n.name: py_function(n, path, method=True) for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    attributes = {t.attr for n in ast.walk(node) for t in getattr(n, "targets", [getattr(n, "target", None)])
                  if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
    attributes |= {t.id for n in node.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                   for t in getattr(n, "targets", [getattr(n, "target", None)]) if isinstance(t, ast.Name)}
    return {"at": f"{path}:{node.lineno}", "bases": [ast.unparse(b) for b in node.bases], "methods": methods,
            "attributes": sorted(attributes - set(methods))}


def py_module(text: str, path: str, public_only: bool = False) -> dict[str, Any]:
    """Top-level functions, classes and constants of a module."""
    tree, out = ast.parse(text), {"source": path, "functions": {}, "classes": {}, "constants": {}}
    for node in tree.body:
        name = getattr(node, "name", "")
        if public_only and name.startswith("_"):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out["functions"][name] = py_function(node, path)
        elif isinstance(node, ast.ClassDef):
            out["classes"][name] = py_class(node, path)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in getattr(node, "targets", [getattr(node, "target", None)]):
                if isinstance(t, ast.Name) and not t.id.startswith("_"):
                    out["constants"][t.id] = f"{path}:{node.lineno}"
    return out


def parameter_node_wrapper_exports(git: Git) -> dict[str, str]:
    """Names ``from slicer.parameterNodeWrapper import X`` can give: each star-imported submodule's __all__."""
    init = f"{PNW}/__init__.py"
    exports: dict[str, str] = {}
    for node in ast.parse(git.show(SLICER_TAG, init)).body:
        if not (isinstance(node, ast.ImportFrom) and node.level == 1):
            continue
        sub = f"{PNW}/{node.module}.py"
        if node.names[0].name != "*":
            exports.update({a.asname or a.name: f"{init}:{node.lineno}" for a in node.names})
            continue
        for stmt in ast.parse(git.show(SLICER_TAG, sub)).body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets):
                exports.update({name: f"{sub}:{stmt.lineno}" for name in ast.literal_eval(stmt.value)})
    return exports


def slicer_modules(git: Git) -> dict[str, Any]:
    """``slicer.modules.<name>``: Slicer sets ``moduleName.lower()`` for every module it loads
    (slicerqt.py); the built-in modules are those the three Modules/*/CMakeLists.txt list."""
    setter = git.show(SLICER_TAG, SLICERQT).split("\n")
    rule = next(i for i, line in enumerate(setter, 1) if "setattr(slicer.modules, moduleName.lower()" in line)
    modules: dict[str, Any] = {}
    for kind, folder in (("loadable", "Modules/Loadable"), ("scripted", "Modules/Scripted"), ("cli", "Modules/CLI")):
        listing = _blank(git.show(SLICER_TAG, f"{folder}/CMakeLists.txt"), r"#[^\n]*")
        names = [w for block in re.findall(r"(?:set\(\w*modules|list\(APPEND \w*modules)\s+([^)]*)\)", listing)
                 for w in block.split() if not w.startswith("$")]
        for d in names:
            cmake = git.show(SLICER_TAG, f"{folder}/{d}/CMakeLists.txt")
            m = re.search(r'set\(MODULE_NAME\s+"?(\w+)"?\)', cmake)
            if not m or (kind == "scripted" and not git.exists(SLICER_TAG, f"{folder}/{d}/{m.group(1)}.py")):
                continue  # e.g. DICOMLib: a library folder, no module class
            line = cmake.count("\n", 0, m.start()) + 1
            modules[m.group(1).lower()] = {"at": f"{folder}/{d}/CMakeLists.txt:{line}", "kind": kind, "moduleName": m.group(1)}
    return {"rule": f"{SLICERQT}:{rule}", "modules": modules}


def _line(entries: list[dict[str, Any]], via: str) -> str:
    return next(o["at"] for o in entries if o.get("via") == via)


def forbidden(effect: dict[str, Any], abstract: dict[str, Any]) -> dict[str, Any]:
    """Known traps, hand-written; the line numbers are looked up so they stay right."""
    out: dict[str, Any] = {}
    for name, qtype in (("xyToRas", "QPoint"), ("xyzToRas", "QVector3D"), ("rasToXy", "QVector3D"),
                        ("xyToIjk", "QPoint"), ("xyzToIjk", "QVector3D")):
        helper = abstract["methods"][name]
        out[f"scriptedEffect.{name}"] = {
            "reason": f"the only overload Python reaches takes a {qtype} and returns a Qt value; PythonQt does not turn a "
                      f"tuple or list (e.g. interactor.GetEventPosition()) into a {qtype} (PythonQtConv::PyObjToQVariant "
                      f"makes built-in value types only from wrapped Qt objects). Slicer's own Python helper converts "
                      f"first and returns a list",
            "evidence": [_line(effect["methods"][name], "Q_INVOKABLE"), helper["at"]],
            "instead": f"self.{name}{helper['sig'].replace('(self, ', '(')}"}
    deprecated = effect["methods"]["masterVolumeImageData"][0]
    out["scriptedEffect.masterVolumeImageData"] = {"reason": "deprecated in Slicer's header", "evidence": [deprecated["at"]],
                                                   "instead": "self.scriptedEffect.sourceVolumeImageData()"}
    return out


def build(slicer: Git, pytorch: Git) -> dict[str, Any]:
    slicer_ref = f"slicer@{SLICER_TAG}"
    effect = merge_effect_api({cls: parse_qobject_header(slicer.show(SLICER_TAG, path), cls, path)
                               for cls, path in EFFECT_HEADERS.items()})
    abstract_tree = ast.parse(slicer.show(SLICER_TAG, ABSTRACT_EFFECT))
    abstract = py_class(next(n for n in abstract_tree.body if isinstance(n, ast.ClassDef)), ABSTRACT_EFFECT)
    slm = py_module(slicer.show(SLICER_TAG, SLM), SLM)
    torch_tree = ast.parse(pytorch.show(PYTORCH_REF, PYTORCH_UTILS))
    torch_logic = py_class(next(n for n in torch_tree.body if isinstance(n, ast.ClassDef) and n.name == "PyTorchUtilsLogic"), PYTORCH_UTILS)
    torch_cmake = pytorch.show(PYTORCH_REF, "PyTorchUtils/CMakeLists.txt")
    torch_module = re.search(r"set\(MODULE_NAME\s+(\w+)\)", torch_cmake)
    assert torch_module, "PyTorchUtils/CMakeLists.txt sets no MODULE_NAME"
    return {
        "generatedBy": "scripts/build_slicer_api_table.py",
        "repos": {"slicer": {"url": "https://github.com/Slicer/Slicer",
                             "refs": {SLICER_TAG: slicer.commit(SLICER_TAG), PACKAGING_TAG: slicer.commit(PACKAGING_TAG)}},
                  "pytorch": {"url": "https://github.com/fepegar/SlicerPyTorch", "refs": {PYTORCH_REF: pytorch.commit(PYTORCH_REF)}}},
        "scriptedEffect": {"ref": slicer_ref, **effect},
        "AbstractScriptedSegmentEditorEffect": {"ref": slicer_ref, **abstract},
        "slicer.util": {"ref": slicer_ref, **py_module(slicer.show(SLICER_TAG, UTIL), UTIL)},
        "slicer.packaging": {"ref": f"slicer@{PACKAGING_TAG}",
                             **py_module(slicer.show(PACKAGING_TAG, PACKAGING), PACKAGING, public_only=True)},
        "ScriptedLoadableModule": {"ref": slicer_ref, "source": SLM, "classes": slm["classes"]},
        "slicer.parameterNodeWrapper": {"ref": slicer_ref, "exports": parameter_node_wrapper_exports(slicer)},
        "slicer.modules": {"ref": slicer_ref, **slicer_modules(slicer)},
        "PyTorchUtilsLogic": {"ref": f"pytorch@{PYTORCH_REF}", **torch_logic,
                              "module": {"name": torch_module.group(1).lower(),
                                         "at": f"PyTorchUtils/CMakeLists.txt:{torch_cmake.count(chr(10), 0, torch_module.start()) + 1}"}},
        "forbidden": forbidden(effect, abstract),
    }


def dump(obj: Any, depth: int = 0) -> str:
    """Sorted JSON, one entry per line below the section level, so a regenerated table diffs readably."""
    inline = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    nested = isinstance(obj, dict) and any(isinstance(v, (dict, list)) and v for v in obj.values())
    if depth >= 3 or not (nested or (isinstance(obj, list) and any(isinstance(v, dict) for v in obj))):
        return inline
    pad = " " * (depth + 1)
    if isinstance(obj, list):
        return "[\n" + ",\n".join(pad + dump(v, depth + 1) for v in obj) + "\n" + " " * depth + "]"
    items = [f"{pad}{json.dumps(k)}: {dump(obj[k], depth + 1)}" for k in sorted(obj)]
    return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slicer-git", type=Path, required=True, help="git directory of a Slicer/Slicer mirror")
    parser.add_argument("--pytorch-git", type=Path, required=True, help="git directory of a fepegar/SlicerPyTorch mirror")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "Testing/data/slicer_api_v5.10.0.json")
    args = parser.parse_args()
    table = build(Git(args.slicer_git), Git(args.pytorch_git))
    args.out.write_text(dump(table) + "\n")
    counts = {k: len(v.get("methods") or v.get("functions") or v.get("modules") or v.get("exports") or v.get("classes") or v)
              for k, v in table.items() if isinstance(v, dict) and k != "repos"}
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()

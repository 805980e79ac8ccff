"""Every use of Slicer's API in the extension's Slicer files, checked against a table read from
Slicer's own source (``Testing/data/slicer_api_v5.10.0.json``, made by
``scripts/build_slicer_api_table.py`` from Slicer v5.10.0, ``slicer.packaging`` of v5.12.0 and
SlicerPyTorch). Slicer cannot run here, and a misspelt ``slicer.util`` function or a C++ method
PythonQt cannot call only fails when a user clicks; so the files are parsed (never imported) and
each name is looked up in the table:

- attributes of the scripted effect (``self.scriptedEffect``, ``scriptedEffect``, or any
  ``qSlicerSegmentEditorScriptedEffect(...)``): the C++ Q_INVOKABLEs, slots, properties and enums;
  assignments must hit a writable property; the table's ``forbidden`` traps fail with the reason;
- ``slicer.util.X``, ``slicer.packaging.X`` (also through ``import ... as``, ``from slicer import``
  and ``getattr(slicer, "packaging", None)``), ``slicer.modules.X``, and the names imported from
  ``slicer.util``, ``slicer.packaging``, ``slicer.parameterNodeWrapper``, ``slicer.ScriptedLoadableModule``;
- methods used on a ``PyTorchUtils.PyTorchUtilsLogic()`` instance;
- ``self.X(...)`` in a class deriving from Slicer's Python base classes that the class does not
  define itself: X must come from the base class;
- keyword (and surplus positional) arguments of calls to the Python functions above.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "WaveSegSlicer"
TABLE_PATH = ROOT / "Testing" / "data" / "slicer_api_v5.10.0.json"
TABLE: dict[str, Any] = json.loads(TABLE_PATH.read_text())
EFFECT, TORCH_LOGIC, EFFECT_SELF = "<scriptedEffect>", "<PyTorchUtilsLogic>", "<scriptedEffect.self()>"
EFFECT_CLASSES = ("qSlicerSegmentEditorScriptedEffect", "qSlicerSegmentEditorAbstractEffect")


def slicer_files() -> list[Path]:
    """The module file and every file of its ``*Lib`` packages: the effect may sit in
    WaveSegSlicerLib/ or SegmentEditorWaveSegLib/, so glob rather than list."""
    libs = sorted(p for lib in MODULE.glob("*Lib") if lib.is_dir() for p in lib.rglob("*.py"))
    return [MODULE / "WaveSegSlicer.py", *libs]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name}: {self.message}"


def _offer(name: str, choices: list[str] | set[str]) -> str:
    """What the table offers instead: the closest names, else a few of them."""
    close = difflib.get_close_matches(name, sorted(choices), n=5, cutoff=0.6)
    return f"closest: {', '.join(close)}" if close else f"it has {len(choices)} names, e.g. {', '.join(sorted(choices)[:8])}"


def _effect_names() -> set[str]:
    api = TABLE["scriptedEffect"]
    values = {v for enum in api["enums"].values() for v in enum["values"]}
    return set(api["methods"]) | set(api["properties"]) | set(api["enums"]) | values


def _python_class(qualified: str) -> dict[str, Any] | None:
    """A Slicer Python class of the table by the name a file imports it as."""
    short = qualified.rsplit(".", 1)[-1]
    if short == "AbstractScriptedSegmentEditorEffect":
        return TABLE["AbstractScriptedSegmentEditorEffect"]
    if qualified.startswith("slicer.ScriptedLoadableModule.") or qualified in TABLE["ScriptedLoadableModule"]["classes"]:
        return TABLE["ScriptedLoadableModule"]["classes"].get(short)
    if qualified.startswith("slicer.util."):
        return TABLE["slicer.util"]["classes"].get(short)
    return None


def _class_names(cls: dict[str, Any]) -> set[str] | None:
    """Methods and attributes of a table class and its bases; None if a base is not known here."""
    names = set(cls["methods"]) | set(cls["attributes"])
    for base in cls["bases"]:
        if base == "unittest.TestCase":
            names |= set(dir(unittest.TestCase))  # ScriptedLoadableModuleTest's base: the standard library's
        elif (known := _python_class(base)) is not None and (more := _class_names(known)) is not None:
            names |= more
        else:
            return None
    return names


TORCH_NAMES = (_class_names({**TABLE["PyTorchUtilsLogic"], "bases": []})
               | _class_names(TABLE["ScriptedLoadableModule"]["classes"]["ScriptedLoadableModuleLogic"]))


class UsageChecker(ast.NodeVisitor):
    """One file's uses of the tabled API. Names are tracked per scope (module, class, function),
    assignment by assignment, which is enough for the plain code of a Slicer module."""

    def __init__(self, path: str, own_modules: Iterable[str] = (), own_effect_names: Iterable[str] = ()) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self.scopes: list[dict[str, str | None]] = [{"scriptedEffect": EFFECT}]  # Slicer's name for the effect, by convention
        self.class_scopes: list[dict[str, str | None]] = []
        self.modules = set(TABLE["slicer.modules"]["modules"]) | {TABLE["PyTorchUtilsLogic"]["module"]["name"]} | set(own_modules)
        self.effect_self_names = set(_class_names(TABLE["AbstractScriptedSegmentEditorEffect"]) or ()) | set(own_effect_names)

    # -- bookkeeping -------------------------------------------------------------------------
    def report(self, node: ast.AST, name: str, message: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), name, message))

    def bind(self, name: str, target: str | None) -> None:
        self.scopes[-1][name] = target

    def lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def resolve(self, node: ast.AST) -> str | None:
        """What an expression stands for: a dotted Slicer name, or one of the instance markers."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr == "scriptedEffect":
                    return EFFECT
                return next((s[node.attr] for s in reversed(self.class_scopes) if node.attr in s), None)
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base and not base.startswith("<") else None
        if isinstance(node, ast.Call):
            func = self.resolve(node.func)
            if isinstance(node.func, ast.Attribute) and node.func.attr == "qSlicerSegmentEditorScriptedEffect":
                return EFFECT  # effects.qSlicerSegmentEditorScriptedEffect(None): a new C++ effect
            if func == "PyTorchUtils.PyTorchUtilsLogic":
                return TORCH_LOGIC
            if isinstance(node.func, ast.Attribute) and node.func.attr == "self" and self.resolve(node.func.value) == EFFECT:
                return EFFECT_SELF  # scriptedEffect.self(): the Python effect object
            if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                    and (base := self.resolve(node.args[0])) and not base.startswith("<")):
                return f"{base}.{node.args[1].value}"  # getattr(slicer, "packaging", None): probing for 5.12
        return None

    def resolve_base(self, node: ast.expr) -> str | None:
        return self.resolve(node.value) if isinstance(node, ast.Attribute) else None

    # -- imports and assignments -----------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.bind(alias.asname, alias.name)
            else:
                top = alias.name.split(".")[0]
                self.bind(top, top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        offered = {"slicer.util": lambda: {**TABLE["slicer.util"]["functions"], **TABLE["slicer.util"]["classes"],
                                           **TABLE["slicer.util"]["constants"]},
                   "slicer.packaging": lambda: {**TABLE["slicer.packaging"]["functions"], **TABLE["slicer.packaging"]["classes"]},
                   "slicer.parameterNodeWrapper": lambda: TABLE["slicer.parameterNodeWrapper"]["exports"],
                   "slicer.ScriptedLoadableModule": lambda: TABLE["ScriptedLoadableModule"]["classes"]}.get(module)
        for alias in node.names:
            if offered is not None and alias.name != "*" and alias.name not in (names := offered()):
                self.report(node, f"{module}.{alias.name}", f"not in {module} of the table; {_offer(alias.name, set(names))}")
            self.bind(alias.asname or alias.name, f"{module}.{alias.name}")

    def _assign(self, target: ast.expr, value: ast.expr | None) -> None:
        meaning = self.resolve(value) if value is not None else None
        if isinstance(target, ast.Name):
            self.bind(target.id, meaning)
        elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
              and target.attr != "scriptedEffect" and self.class_scopes):
            self.class_scopes[-1][target.attr] = meaning  # self.logic = PyTorchUtilsLogic() is tracked too

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            self._assign(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        self._assign(node.target, node.value)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        for expr in [*node.decorator_list, *args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(expr)  # evaluated in the enclosing scope
        scope = {a.arg: (EFFECT if a.arg == "scriptedEffect" else None)
                 for a in args.posonlyargs + args.args + args.kwonlyargs + [x for x in (args.vararg, args.kwarg) if x]}
        self.scopes.append(scope)
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()
        self.bind(node.name, None)

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.bases + node.decorator_list:
            self.visit(expr)
        self._check_self_calls(node)
        self.scopes.append({})
        self.class_scopes.append({})
        for stmt in node.body:
            self.visit(stmt)
        self.class_scopes.pop()
        self.scopes.pop()
        self.bind(node.name, None)

    # -- the checks ----------------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        base, name = self.resolve_base(node), node.attr
        if isinstance(node.value, ast.Name) and node.value.id == "self" and name == "scriptedEffect":
            return
        if base == EFFECT:
            self._check_effect_attribute(node)
        elif base == "slicer.util":
            util = TABLE["slicer.util"]
            choices = set(util["functions"]) | set(util["classes"]) | set(util["constants"])
            if name not in choices:
                self.report(node, f"slicer.util.{name}", f"not in slicer.util ({util['ref']}); {_offer(name, choices)}")
        elif base == "slicer.packaging":
            pkg = TABLE["slicer.packaging"]
            choices = set(pkg["functions"]) | set(pkg["classes"])
            if name not in choices:
                self.report(node, f"slicer.packaging.{name}", f"not in slicer.packaging ({pkg['ref']}); {_offer(name, choices)}")
        elif base == "slicer.modules":
            if name not in self.modules:
                rule = TABLE["slicer.modules"]["rule"]
                self.report(node, f"slicer.modules.{name}",
                            f"no module sets this ({rule} sets moduleName.lower()); {_offer(name, self.modules)}")
        elif base in (TORCH_LOGIC, "PyTorchUtils.PyTorchUtilsLogic"):
            if name not in TORCH_NAMES:
                ref = TABLE["PyTorchUtilsLogic"]["ref"]
                self.report(node, f"PyTorchUtilsLogic.{name}",
                            f"not a method or attribute of PyTorchUtilsLogic ({ref}); {_offer(name, TORCH_NAMES)}")
        elif base in {f"slicer.{c}" for c in EFFECT_CLASSES}:
            if name not in _effect_names():
                self.report(node, f"{base}.{name}", f"not a method, property or enum of the effect; {_offer(name, _effect_names())}")
        elif base == EFFECT_SELF:
            if name not in self.effect_self_names:
                self.report(node, f"scriptedEffect.self().{name}", "neither AbstractScriptedSegmentEditorEffect nor the extension's "
                                                                    f"effect has it; {_offer(name, self.effect_self_names)}")

    def _check_effect_attribute(self, node: ast.Attribute) -> None:
        api, name = TABLE["scriptedEffect"], node.attr
        if (trap := TABLE["forbidden"].get(f"scriptedEffect.{name}")) is not None:
            self.report(node, f"scriptedEffect.{name}",
                        f"forbidden: {trap['reason']}; use {trap['instead']} (Slicer: {', '.join(trap['evidence'])})")
        elif isinstance(node.ctx, ast.Store):
            prop = api["properties"].get(name)
            if prop is None or "write" not in prop:
                self.report(node, f"scriptedEffect.{name}",
                            f"assigned, but not a writable Q_PROPERTY; properties: {', '.join(sorted(api['properties']))}")
        elif name not in _effect_names():
            hidden = api["notExposed"].get(name)
            why = (f"C++ only, PythonQt does not expose it ({hidden[0]['sig']}, {hidden[0]['at']})" if hidden
                   else "not a Q_INVOKABLE, slot, property or enum of qSlicerSegmentEditorScriptedEffect")
            self.report(node, f"scriptedEffect.{name}", f"{why}; {_offer(name, _effect_names())}")

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        func = node.func
        if not isinstance(func, ast.Attribute):
            target = self.resolve(func)
            if target and target.count(".") == 2 and target.startswith(("slicer.util.", "slicer.packaging.")):
                self._check_python_call(node, target, *target.rsplit(".", 1))  # from slicer.util import X; X(...)
            return
        base, name = self.resolve_base(func), func.attr
        if base in ("slicer.util", "slicer.packaging"):
            self._check_python_call(node, f"{base}.{name}", base, name)
        elif base == TORCH_LOGIC and (method := TABLE["PyTorchUtilsLogic"]["methods"].get(name)):
            self._check_arguments(node, f"PyTorchUtilsLogic.{name}", method)

    def _check_python_call(self, node: ast.Call, label: str, module: str, name: str) -> None:
        api = TABLE[module]
        if name in api["functions"]:
            self._check_arguments(node, label, api["functions"][name])
        elif name in api["classes"] and (init := api["classes"][name]["methods"].get("__init__")):
            self._check_arguments(node, label, init)

    def _check_arguments(self, node: ast.Call, label: str, sig: dict[str, Any]) -> None:
        """Keywords must be parameter names; positional arguments must not outnumber the parameters."""
        positional = sig.get("posonly", []) + sig["args"]
        if not sig.get("vararg") and not any(isinstance(a, ast.Starred) for a in node.args) and len(node.args) > len(positional):
            self.report(node, label, f"{len(node.args)} positional arguments, but it takes at most {len(positional)}: "
                                     f"{sig['sig']} ({sig['at']})")
        for keyword in node.keywords:
            if keyword.arg is None or sig.get("kwarg"):
                continue
            if keyword.arg not in sig["args"] + sig.get("kwonly", []):
                self.report(keyword, label, f"no keyword parameter {keyword.arg!r}: {sig['sig']} ({sig['at']})")

    def _check_self_calls(self, node: ast.ClassDef) -> None:
        """``self.X(...)`` in a class built on Slicer's Python classes: X is the class's own or the base's."""
        bases = [_python_class(q) for b in node.bases if (q := self.resolve(b) or ast.unparse(b))]
        if not bases or any(b is None for b in bases):
            return  # no base from the table, or one we know nothing about: cannot tell what self has
        inherited: set[str] = set()
        for base in bases:
            if (names := _class_names(base)) is None:
                return
            inherited |= names
        own = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for sub in ast.walk(node):
            for target in getattr(sub, "targets", [getattr(sub, "target", None)]):
                if isinstance(target, ast.Name) and sub in node.body:
                    own.add(target.id)
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    own.add(target.attr)
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name)
                    and sub.func.value.id == "self" and sub.func.attr not in own):
                name = sub.func.attr
                if name not in inherited:
                    self.report(sub, f"self.{name}", f"{node.name} does not define it and its Slicer base class does not have it; "
                                                     f"{_offer(name, inherited)}")
                elif (sig := next((b["methods"][name] for b in bases if name in b["methods"]), None)) is not None:
                    self._check_arguments(sub, f"self.{name}", sig)


def _context(trees: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """Names the extension itself adds: its modules (slicer.modules.<lower name>) and what its
    effect class defines (reachable through scriptedEffect.self())."""
    modules, effect_names = set(), set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if "ScriptedLoadableModule" in bases:
                    modules.add(node.name.lower())
                if "AbstractScriptedSegmentEditorEffect" in bases:
                    effect_names |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return modules, effect_names


def check_source(source: str, path: str = "<snippet>", context: tuple[set[str], set[str]] | None = None) -> list[Finding]:
    tree = ast.parse(source, filename=path)
    modules, effect_names = context if context is not None else _context({path: tree})
    checker = UsageChecker(path, modules, effect_names)
    checker.visit(tree)
    return sorted(set(checker.findings), key=lambda f: (f.line, f.name, f.message))


FILES = slicer_files()
TREES = {str(p.relative_to(ROOT)): ast.parse(p.read_text(), filename=str(p)) for p in FILES}
CONTEXT = _context(TREES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MODULE)))
def test_slicer_file_uses_only_tabled_api(path):
    findings = check_source(path.read_text(), str(path.relative_to(ROOT)), CONTEXT)
    assert not findings, "uses of Slicer's API that Slicer v5.10.0 does not offer:\n" + "\n".join(map(str, findings))


def test_the_effect_is_among_the_checked_files():
    # the effect is the main user of scriptedEffect; if a move made the glob miss it, the checks above would pass vacuously
    assert any("AbstractScriptedSegmentEditorEffect" in ast.unparse(b) for tree in TREES.values()
               for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for b in node.bases), sorted(TREES)


BAD_SNIPPET = '''
import slicer
import slicer.packaging as pk
from slicer import util as u
from slicer.util import notImported
import PyTorchUtils
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

class Effect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "x"
        scriptedEffect.helpText = "x"
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)

    def onClick(self, w):
        self.scriptedEffect.xyToRas((1, 2), w)
        self.scriptedEffect.setupOptionsFrame()
        slicer.util.notAFunction()
        u.tryWithErrorDisplay("x", waitcursor=True)
        pk.pip_ensur([])
        slicer.modules.segmenteditr.widgetRepresentation()
        self.notInheritedHelper()
        logic = PyTorchUtils.PyTorchUtilsLogic()
        logic.installTorch(askConfirmation=True, version=">=2")
        logic.torchIsInstalled()
'''


def test_checker_reports_each_kind_of_misuse():
    # guards against a checker that passes vacuously: each bad line must be reported, by name
    expected = {("import notImported", "slicer.util.notImported"), ('helpText = "x"', "scriptedEffect.helpText"),
                ("xyToRas((1, 2)", "scriptedEffect.xyToRas"), ("setupOptionsFrame()", "scriptedEffect.setupOptionsFrame"),
                ("notAFunction()", "slicer.util.notAFunction"), ("waitcursor=True", "slicer.util.tryWithErrorDisplay"),
                ("pip_ensur(", "slicer.packaging.pip_ensur"), ("segmenteditr", "slicer.modules.segmenteditr"),
                ("notInheritedHelper()", "self.notInheritedHelper"), ('version=">=2"', "PyTorchUtilsLogic.installTorch"),
                ("torchIsInstalled()", "PyTorchUtilsLogic.torchIsInstalled")}
    lines = BAD_SNIPPET.split("\n")
    expected_at = {(next(n for n, line in enumerate(lines, 1) if fragment in line), name) for fragment, name in expected}
    found = {(f.line, f.name) for f in check_source(BAD_SNIPPET)}
    assert expected_at <= found, sorted(expected_at - found)
    assert found <= expected_at, f"reported what is fine: {sorted(found - expected_at)}"


def test_checker_reports_the_xy_to_ras_trap_and_an_unknown_util_function():
    findings = check_source("import slicer\n"
                            "class E:\n"
                            "    def f(self, w):\n"
                            "        self.scriptedEffect.xyToRas((1,2), w)\n"
                            "        slicer.util.notAFunction()\n")
    messages = {f.name: f.message for f in findings}
    assert "self.xyToRas(xy, viewWidget)" in messages["scriptedEffect.xyToRas"]  # says what to use instead
    assert "slicer.util.notAFunction" in messages


GOOD_SNIPPET = '''
import qt
import slicer
from slicer import packaging as pk
from slicer.util import VTKObservationMixin
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect
import PyTorchUtils

class Effect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.perSegment = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)

    def onClick(self, w, xy):
        ras = self.xyToRas(xy, w)
        self.scriptedEffect.addOptionsWidget(qt.QLabel())
        self.scriptedEffect.modifySelectedSegmentByLabelmap(None, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
        with slicer.util.tryWithErrorDisplay("failed", waitCursor=True):
            slicer.util.createProgressDialog(labelText="x", maximum=100)
        packaging = getattr(slicer, "packaging", None)
        packaging.pip_ensure(packaging.load_requirements("r.txt"), requester="WaveSeg")
        pk.pip_check([])
        slicer.modules.segmenteditor.widgetRepresentation()
        logic = PyTorchUtils.PyTorchUtilsLogic()
        logic.installTorch(askConfirmation=True, torchVersionRequirement=">=2")
        return ras, logic.torchInstalled()

class Widget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.setup)
        self.resourcePath("UI/x.ui")
'''


def test_checker_accepts_correct_uses():
    # the other half of the guard: idiomatic uses of every tracked kind must not be reported
    assert check_source(GOOD_SNIPPET) == []


def test_table_records_the_commits_it_was_read_from():
    refs = {repo: info["refs"] for repo, info in TABLE["repos"].items()}
    assert set(refs["slicer"]) == {"v5.10.0", "v5.12.0"} and set(refs["pytorch"]) == {"HEAD"}
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for r in refs.values() for commit in r.values()), refs
    # every section names the repository and ref it came from, and each of its entries a path:line there
    sections = [k for k in TABLE if k not in ("repos", "generatedBy", "forbidden")]
    for key in sections:
        repo, _, ref = TABLE[key]["ref"].partition("@")
        assert ref in refs[repo], key
    assert re.fullmatch(r".+\.h:\d+", TABLE["scriptedEffect"]["methods"]["xyToRas"][0]["at"])
    assert TABLE["scriptedEffect"]["methods"]["xyToRas"][0]["params"] == ["QPoint", "qMRMLSliceWidget*"]
    assert all(re.fullmatch(r".+:\d+", e) for trap in TABLE["forbidden"].values() for e in trap["evidence"])

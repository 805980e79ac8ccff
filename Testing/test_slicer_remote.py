"""The Segment Editor effect in remote mode, on a Slicer without torch: the server URL and token
file set in the effect's panel (kept in Slicer's user settings), the model on a ``waveseg serve``
process, and the same golden masks as the local self-test (Slicer's side: ``slicer_harness``)."""

from __future__ import annotations

import importlib

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test extra")
pytest.importorskip("fastapi", reason="the server tests need the [server] extra")

from server_harness import ProcessServer  # noqa: E402
from test_slicer_effect import Editor, ModuleLogic  # noqa: E402
from WaveSegSlicerLib import remote_settings  # noqa: E402
from WaveSegSlicerLib.selftest_cases import MODEL, PROMPT_CASES, golden_mask, run_case_in_view  # noqa: E402
from waveseg.metrics import dice  # noqa: E402

TOKEN = "slicer-test-token-0123456789"


class RemoteModuleLogic(ModuleLogic):
    """The test's module logic with ``WaveSegSlicerLogic``'s remote-mode methods (the same calls into
    ``WaveSegSlicerLib.remote_settings``; settings in the harness's ``qt.QSettings``)."""

    def serverSettings(self):
        import qt

        return remote_settings.read(qt.QSettings())

    def setServerSettings(self, url, tokenFile=""):
        import qt

        remote_settings.write(qt.QSettings(), url, tokenFile)
        remote_settings.REMOTE_SEGMENTERS.forget()

    def ensureDependencies(self):
        return True if self.serverSettings()[0] else super().ensureDependencies()

    def settings(self):
        url, token_file = self.serverSettings()
        return (*super().settings(), (url, token_file) if url else None)

    def segmenter(self, model="default", profile=None, device="cpu", server=None):
        if server:
            return remote_settings.REMOTE_SEGMENTERS.get(server[0], server[1], model, profile)
        return super().segmenter(model, profile, device)

    def modelNames(self):
        from waveseg.errors import WaveSegError

        url, token_file = self.serverSettings()
        if not url:
            return super().modelNames()
        try:
            return remote_settings.model_names(url, token_file)
        except WaveSegError:  # e.g. the URL typed before the token file: listed again once both are set
            return ["default"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer-server")
    tokens = folder / "tokens.txt"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    srv = ProcessServer("--token-file", str(tokens), "--model", MODEL, "--device", "cpu", "--session-cache-mb", "32")
    yield srv, tokens
    srv.stop()


@pytest.mark.parametrize("case", PROMPT_CASES[:2], ids=lambda c: c.name)
def test_remote_effect_without_torch_gives_the_golden_masks(monkeypatch, server, case):
    srv, tokens = server
    editor = Editor(monkeypatch)
    editor.module_logic = RemoteModuleLogic()
    monkeypatch.setattr(editor.effect, "moduleLogic", lambda: editor.module_logic)
    for name in [n for n in importlib.sys.modules if n == "torch" or n.startswith(("torch.", "waveseg.volume", "WaveSegSlicerLib.volume_logic"))]:
        monkeypatch.delitem(importlib.sys.modules, name)
    monkeypatch.setitem(importlib.sys.modules, "torch", None)  # a Slicer without the PyTorch extension's torch
    editor.effect.serverLineEdit.type(srv.url)
    editor.effect.tokenFileLineEdit.type(str(tokens))
    assert editor.module_logic.serverSettings() == (srv.url, str(tokens))
    assert editor.effect.modelComboBox.findText(MODEL) >= 0  # the server's models are listed
    editor.effect.modelComboBox.choose(MODEL)
    try:
        run_case_in_view(case, editor.effect, editor.interactor, editor.view, editor.volume)
        assert "failed" not in editor.effect.statusLabel.text, editor.effect.statusLabel.text
        assert not editor.effect.serverLineEdit.enabled  # the session belongs to that server
        assert editor.key("Return")
        assert "Applied to 'a'" in editor.effect.statusLabel.text
        # the local suite's criterion (test_slicer_effect.test_prompt_table_in_a_slice_view_then_apply)
        assert dice(editor.segment_on_volume_grid(editor.segment_a), golden_mask(case)) >= 0.99
        assert importlib.sys.modules["torch"] is None  # nothing on this side needed torch
    finally:
        editor.effect.deactivate()


def test_a_wrong_token_is_reported_in_the_panel(monkeypatch, server, tmp_path):
    srv, _tokens = server
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not-the-token-0123456789\n")
    editor = Editor(monkeypatch)
    editor.module_logic = RemoteModuleLogic()
    monkeypatch.setattr(editor.effect, "moduleLogic", lambda: editor.module_logic)
    editor.module_logic.setServerSettings(srv.url, str(wrong))
    try:
        editor.box()
        assert "wrong token" in editor.effect.statusLabel.text and editor.effect.logic is None
    finally:
        editor.effect.deactivate()

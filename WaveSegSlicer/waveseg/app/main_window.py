"""The app's main window: three linked slice views, a 3D view, segments, tools and adaptation."""

from __future__ import annotations

import os
from typing import Callable

from Qt import QtCore, QtGui, QtWidgets

from waveseg.adaptation.profiles import list_profiles
from waveseg.adaptation.scope import ScopedSegmenters
from waveseg.app.adaptation_dock import AdaptationDock
from waveseg.app.document import Document
from waveseg.app.proposals import ProposalActions
from waveseg.app.runner import ModelRunner
from waveseg.app.slice_view import SliceView, slice_to_voxel, window_for
from waveseg.app.stroke_tools import HELP_ROWS as STROKE_HELP, add_stroke_tools, on_stroke

HELP = """<h3>WaveSeg</h3>
<table>
<tr><td><b>click</b></td><td>positive point on the active segment</td></tr>
<tr><td><b>Ctrl+click</b>, <b>right-click</b></td><td>negative point</td></tr>
<tr><td><b>drag</b></td><td>box around the structure</td></tr>
""" + STROKE_HELP + """
<tr><td><b>P</b></td><td>propagate the last prompted slice through the volume</td></tr>
<tr><td><b>A</b></td><td>accept the last prompted slice (propagation will not change it)</td></tr>
<tr><td><b>E</b>, <b>Shift+E</b></td><td>propose the segment on this slice / on all slices, from its annotated slices</td></tr>
<tr><td><b>Shift+Del</b></td><td>clear the active segment</td></tr>
<tr><td><b>Ctrl+Z</b> / <b>Ctrl+Y</b></td><td>undo / redo</td></tr>
<tr><td><b>Ctrl+N</b></td><td>new segment</td></tr>
<tr><td><b>Ctrl+O</b> / <b>Ctrl+D</b> / <b>Ctrl+S</b></td><td>open an image / a DICOM folder / save the segments</td></tr>
<tr><td><b>wheel</b>, <b>Ctrl+wheel</b></td><td>next slice, zoom</td></tr>
<tr><td><b>Shift+drag</b>, <b>middle-drag</b></td><td>window/level, pan</td></tr>
</table>
<p>Model work runs on a worker thread; the status bar shows the last prompt's latency.</p>"""
SAVE_FILTER = "3D Slicer segmentation (*.seg.nrrd);;NIfTI label map (*.nii.gz);;NRRD label map (*.nrrd)"


class MainWindow(ProposalActions, QtWidgets.QMainWindow):
    """Arguments: ``load_segmenter(profile)`` returns a ``waveseg.Segmenter`` (profile None or a
    name) or, with ``server`` (its URL), a ``waveseg.remote.RemoteSegmenter``; ``with_3d`` adds
    the VTK surface view (it needs a display); ``prefetch`` lets sessions encode neighbouring
    slices in the background."""

    def __init__(self, load_segmenter: Callable[[str | None], object], with_3d: bool = True, prefetch: bool = True,
                 model_name: str = "default", profile: str | None = None, server: str | None = None) -> None:
        super().__init__()
        self.server = server
        self.setWindowTitle("WaveSeg" + (f" - server {server}" if server else ""))
        self.load_segmenter = load_segmenter
        self.segmenter = None
        self.profile = profile
        # segments get the profile made for their structure (by name); --profile NAME forces one for all
        self.segmenters = ScopedSegmenters(load_segmenter, lambda: [] if server else list_profiles(), choice=profile)
        self.prefetch = prefetch
        self.document: Document | None = None
        self.last_slice: tuple[int, int] | None = None
        self.runner = ModelRunner(self)
        self.views = [SliceView(axis) for axis in range(3)]
        grid = QtWidgets.QWidget()
        layout = QtWidgets.QGridLayout(grid)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        for n, view in enumerate(self.views):
            layout.addWidget(view, n // 2, n % 2)
            view.pointPrompted.connect(self.on_point)
            view.boxPrompted.connect(self.on_box)
            view.strokePrompted.connect(lambda *stroke: on_stroke(self, *stroke))
            view.indexChanged.connect(lambda *_: self.update_crosshairs())
        self.surface = None
        if with_3d:
            from waveseg.app.surface_view import SurfaceView

            self.surface = SurfaceView()
            layout.addWidget(self.surface, 1, 1)
        for n in range(2):  # four equal quarters whatever the widgets' size hints
            layout.setRowStretch(n, 1)
            layout.setColumnStretch(n, 1)
        self.setCentralWidget(grid)
        self._surface_timer = QtCore.QTimer(self, singleShot=True, interval=250)
        self._surface_timer.timeout.connect(self.update_surfaces)
        self._build_segments_dock()
        self.adaptation = AdaptationDock(self.training_data, model_name, self)
        self.adaptation.profileChosen.connect(self.switch_profile)
        self.addDockWidget(QtCore.Qt.RightDockWidgetArea, self.adaptation)
        if server:  # the dock adapts a local model; a server's profiles are chosen with --profile
            self.adaptation.setEnabled(False)
            self.adaptation.setToolTip(f"Adaptation runs on the server ({server}) in remote mode; start the app with "
                                       "--profile NAME to use one of its profiles")
        self._build_actions()
        self.latency = QtWidgets.QLabel("", objectName="latencyLabel")
        self.statusBar().addPermanentWidget(self.latency)
        self.runner.busyChanged.connect(lambda busy: self.statusBar().showMessage("working ..." if busy else "", 0))
        self.resize(1200, 820)

    # -- building ---------------------------------------------------------------------------------------
    def _action(self, text: str, shortcut: str, slot, menu: QtWidgets.QMenu, toolbar: QtWidgets.QToolBar | None = None):
        action = QtGui.QAction(text, self)
        action.setObjectName(text.lower().replace(" ", "_").replace(".", ""))
        action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setToolTip(f"{text} ({QtGui.QKeySequence(shortcut).toString()})")
        action.triggered.connect(slot)
        menu.addAction(action)
        if toolbar is not None:
            toolbar.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        tools = self.addToolBar("Tools")
        tools.setObjectName("toolsToolbar")
        file_menu, edit_menu, help_menu = bar.addMenu("&File"), bar.addMenu("&Edit"), bar.addMenu("&Help")
        self._action("Open...", "Ctrl+O", self.open_dialog, file_menu)
        self._action("Open DICOM folder...", "Ctrl+D", self.open_folder_dialog, file_menu)
        self._action("Open sample", "Ctrl+Shift+O", self.open_sample, file_menu)
        self._action("Save...", "Ctrl+S", self.save_dialog, file_menu, tools)
        self.propagate_action = self._action("Propagate", "P", self.propagate, edit_menu, tools)
        self._action("Accept", "A", self.accept_slice, edit_menu, tools)
        self._action("Clear", "Shift+Del", self.clear_segment, edit_menu, tools)
        self.undo_action = self._action("Undo", "Ctrl+Z", self.undo, edit_menu, tools)
        self.redo_action = self._action("Redo", "Ctrl+Y", self.redo, edit_menu, tools)
        self._action("New segment", "Ctrl+N", self.new_segment, edit_menu, tools)
        self.tool_actions = add_stroke_tools(self, edit_menu, tools)
        self.propose_action = self._action("Propose", "E", self.propose_slice, edit_menu, tools)
        self._action("Propose through volume", "Shift+E", self.propose_through_volume, edit_menu)
        self._action("Help", "F1", self.show_help, help_menu)

    def _build_segments_dock(self) -> None:
        dock = QtWidgets.QDockWidget("Segments", self)
        dock.setObjectName("segmentsDock")
        self.segment_list = QtWidgets.QListWidget(objectName="segmentList")
        self.segment_list.setToolTip("Segments: the selected one receives the prompts; double-click to rename")
        self.segment_list.currentRowChanged.connect(self.select_segment)
        self.segment_list.itemChanged.connect(self.rename_segment)
        dock.setWidget(self.segment_list)
        self.addDockWidget(QtCore.Qt.RightDockWidgetArea, dock)

    # -- files --------------------------------------------------------------------------------------------
    def open_image(self, path: str | os.PathLike) -> None:
        """Read the image (and, the first time, load the model) on the worker thread: a DICOM
        series or the first model load takes seconds, and the window keeps responding meanwhile."""
        from waveseg.io import read_image

        segmenter = self.segmenter

        def load() -> Document:
            image = read_image(path)
            return Document(image, segmenter or self.load_segmenter(None), prefetch=self.prefetch, segmenters=self.segmenters)

        def failed(exc: Exception) -> None:  # a bad file: tell the user, keep the current image
            self.statusBar().clearMessage()
            QtWidgets.QMessageBox.warning(self, "WaveSeg", f"Cannot open {path}:\n{exc}")

        if self.runner.submit(load, lambda document: self._show_document(document, path), failed):
            self.statusBar().showMessage(f"opening {os.path.basename(str(path))} ...")
        else:
            self.statusBar().showMessage("still working on the previous request", 3000)

    def _show_document(self, document: Document, path: str | os.PathLike) -> None:
        self.statusBar().clearMessage()
        self.segmenter = document.segmenter
        image = document.image
        if self.document is not None:
            self.document.close()
        self.document = document
        window = window_for(image.array)
        for view in self.views:
            view.set_volume(image.array, document.spacing, window)
        if self.surface is not None:
            self.surface.reset_camera()
        self.new_segment()
        self.setWindowTitle(f"WaveSeg - {os.path.basename(str(path))}" + (f" - server {self.server}" if self.server else ""))

    def open_sample(self) -> None:
        from waveseg.sample_data import SAMPLE_T1

        self.open_image(SAMPLE_T1)

    def open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.nii *.nii.gz *.nrrd *.mha *.dcm);;All files (*)")
        if path:
            self.open_image(path)

    def open_folder_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a folder holding one DICOM series")
        if path:
            self.open_image(path)

    def save(self, path: str | os.PathLike) -> None:
        self.document.save(path)
        self.statusBar().showMessage(f"saved {path}", 5000)

    def save_dialog(self) -> None:
        if self.document is None:
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save segments", "segments.seg.nrrd", SAVE_FILTER)
        if path:
            try:
                self.save(path)
            except Exception as exc:
                QtWidgets.QMessageBox.warning(self, "WaveSeg", f"Cannot save {path}:\n{exc}")

    # -- segments ---------------------------------------------------------------------------------------
    def new_segment(self) -> None:
        if self.document is None:
            return
        segment = self.document.add_segment()
        item = QtWidgets.QListWidgetItem(segment.name)
        item.setFlags(item.flags() | QtCore.Qt.ItemIsEditable)
        item.setIcon(self._swatch(segment.color))
        self.segment_list.addItem(item)
        self.segment_list.setCurrentRow(self.document.active)
        self.refresh()

    @staticmethod
    def _swatch(color) -> QtGui.QIcon:
        pixmap = QtGui.QPixmap(14, 14)
        pixmap.fill(QtGui.QColor.fromRgbF(*color))
        return QtGui.QIcon(pixmap)

    def select_segment(self, row: int) -> None:
        if self.document is not None and 0 <= row < len(self.document.segments):
            self.document.active = row
            self.last_slice = None
            self.refresh()

    def rename_segment(self, item: QtWidgets.QListWidgetItem) -> None:
        row = self.segment_list.row(item)
        if self.document is not None and 0 <= row < len(self.document.segments):
            self.document.segments[row].name = item.text().strip() or self.document.segments[row].name
            self.rescope()  # the new name may be a profile's structure, or no longer be

    # -- prompts and tools (model calls go to the runner) --------------------------------------------------
    def _run(self, label: str, function, slice_key: tuple[int, int] | None = None) -> None:
        def done(_result) -> None:
            if slice_key is not None:
                self.last_slice = slice_key
            self.latency.setText(f"{label}: {1000 * self.runner.last_seconds:.0f} ms")
            self.refresh()

        def failed(error: Exception) -> None:
            self.statusBar().showMessage(f"{label} failed: {error}", 8000)

        if not self.runner.submit(function, done, failed):
            self.statusBar().showMessage("still working on the previous request", 3000)

    def on_point(self, axis: int, index: int, x: float, y: float, positive: bool) -> None:
        session = self.document.segment.session
        ijk = slice_to_voxel(axis, index, x, y)
        self._run("click", lambda: session.click(ijk, positive=positive, axis=axis, repropagate=False), (axis, index))
        self._follow(ijk)

    def on_box(self, axis: int, index: int, x0: float, y0: float, x1: float, y1: float) -> None:
        session = self.document.segment.session
        self._run("box", lambda: session.segment_slice(axis, index, box=(x0, y0, x1, y1)), (axis, index))
        self._follow(slice_to_voxel(axis, index, (x0 + x1) / 2, (y0 + y1) / 2))

    def _follow(self, ijk) -> None:
        """Linked views: the other views move to the prompted voxel's slices."""
        for view in self.views:
            view.set_index(int(round(ijk[2 - view.axis])))
        self.update_crosshairs()

    def propagate(self) -> None:
        if self.document is None or self.last_slice is None:
            self.statusBar().showMessage("prompt a slice first, then propagate it", 4000)
            return
        session, (axis, index) = self.document.segment.session, self.last_slice
        self._run("propagation", lambda: session.propagate(axis, index))

    def accept_slice(self) -> None:
        if self.document is not None and self.last_slice is not None:  # via the runner: never beside a running call
            session, key = self.document.segment.session, self.last_slice
            self._run("accept", lambda: session.accept(*key))

    def clear_segment(self) -> None:
        if self.document is not None:
            self._run("clear", self.document.segment.session.clear)

    def undo(self) -> None:
        if self.document is not None:
            self._run("undo", self.document.segment.session.undo)

    def redo(self) -> None:
        if self.document is not None:
            self._run("redo", self.document.segment.session.redo)

    def switch_profile(self, choice: str) -> None:
        """``choice``: "" (automatic: each segment by its name), "-" (no profile) or a profile for all segments."""
        self.segmenters.choice, self.profile = choice, choice or None
        self.segmenters.forget()  # a profile may have been re-made under the same name
        self.rescope()

    def rescope(self) -> None:
        """Give each segment the model its name and the profile choice call for (on the worker: a profile loads in seconds)."""
        if self.document is None:
            return
        document = self.document

        def rescope() -> list[tuple[str, str | None]]:
            document.rescope()
            return [(s.name, s.profile) for s in document.segments]

        def done(scoped) -> None:
            used = ", ".join(f"{profile} for '{name}'" for name, profile in scoped if profile)
            self.statusBar().showMessage(f"adaptation profile: {used or 'none (base model)'}", 5000)

        if not self.runner.submit(rescope, done, lambda e: self.statusBar().showMessage(f"cannot load profile: {e}", 8000)):
            self.statusBar().showMessage("still working on the previous request", 3000)

    def training_data(self):
        """(volume, mask, structure name, window) of the active segment, for the adaptation dock."""
        if self.document is None:
            raise ValueError("open an image and annotate a segment first")
        segment = self.document.segment
        return self.document.image.array, segment.mask, segment.name, self.document.window

    # -- display ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        if self.document is None:
            return
        overlays = [(s.mask, s.color) for s in self.document.segments]
        for view in self.views:
            view.set_overlays(overlays)
        session = self.document.segment.session
        self.undo_action.setEnabled(session.can_undo)
        self.redo_action.setEnabled(session.can_redo)
        self._surface_timer.start()

    def update_crosshairs(self) -> None:
        index = {view.axis: view.index for view in self.views}
        for view in self.views:  # each view marks where the other two cut it
            view.cross = {0: (index[2], index[1]), 1: (index[2], index[0]), 2: (index[1], index[0])}[view.axis]
            view.update()

    def flush_surfaces(self) -> None:
        """Run a pending debounced 3D update now. Scripts and tests call it (``demo_state.settle``)
        to know the 3D view is current: its timer fires late on a loaded machine, so no fixed wait is safe."""
        if self._surface_timer.isActive():
            self._surface_timer.stop()
            self.update_surfaces()

    def update_surfaces(self) -> None:
        if self.surface is not None and self.document is not None:
            self.surface.set_segments([(s.mask, s.color) for s in self.document.segments], self.document.spacing)

    def show_help(self) -> None:
        QtWidgets.QMessageBox.about(self, "WaveSeg help", HELP)

    def closeEvent(self, event) -> None:
        self._surface_timer.stop()  # no render after the 3D view is released
        if self.surface is not None:
            self.surface.release()
        self.adaptation.cancel()
        if self.document is not None:
            self.document.close()
        self.runner.shutdown()
        super().closeEvent(event)


def main(image: str | None = None, model: str = "default", device: str = "cpu", profile: str | None = None,
         server: str | None = None, token_file: str | None = None) -> int:
    """Start the app (``waveseg app``; ``--server URL`` runs the model on a WaveSeg server); returns the Qt exit code."""
    import sys

    if server:
        from waveseg.remote import RemoteSegmenter

        def load(name):
            return RemoteSegmenter(server, model=model, profile=name, token_file=token_file)
    else:
        def load(name):
            from waveseg.predictor import Segmenter

            return Segmenter.from_pretrained(model, device=device, profile=name)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = MainWindow(load, model_name=model, profile=profile, server=server)
    window.show()
    if image:
        window.open_image(image)
    return app.exec()

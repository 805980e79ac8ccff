"""The app's adaptation dock: adapt the model to the active segment's annotated slices in a
background process (progress bar, Cancel), and switch / delete profiles."""

from __future__ import annotations

from typing import Callable

from Qt import QtCore, QtWidgets

from waveseg.adaptation import METHODS
from waveseg.adaptation.background import AdaptationProcess, annotated_slices
from waveseg.adaptation.scope import AUTOMATIC, NO_PROFILE


class AdaptationDock(QtWidgets.QDockWidget):
    """``profileChosen(choice)`` ("" automatic by segment name, "-" none, or a profile name) asks the
    window to give its segments the models that choice calls for."""

    profileChosen = QtCore.Signal(str)

    def __init__(self, get_training_data: Callable[[], tuple], model_name: str = "default", parent=None) -> None:
        super().__init__("Adaptation", parent)
        self.setObjectName("adaptationDock")
        self._get_training_data = get_training_data
        self.model_name = model_name
        self.process: AdaptationProcess | None = None
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        self.nameEdit = QtWidgets.QLineEdit(objectName="profileNameEdit", placeholderText="e.g. site-liver")
        self.nameEdit.setToolTip("Name of the profile to save (letters, digits, - and _)")
        self.methodCombo = QtWidgets.QComboBox(objectName="methodCombo")
        self.methodCombo.addItems(list(METHODS))
        self.budgetSpin = QtWidgets.QSpinBox(objectName="budgetSpin", minimum=10, maximum=600, value=30, suffix=" s")
        self.adaptButton = QtWidgets.QPushButton("Adapt", objectName="adaptButton")
        self.adaptButton.setToolTip("Adapt the model to the annotated axial slices of the active segment (2-20 slices)")
        self.cancelButton = QtWidgets.QPushButton("Cancel", objectName="cancelAdaptButton", enabled=False)
        self.progress = QtWidgets.QProgressBar(objectName="adaptProgress", value=0)
        self.status = QtWidgets.QLabel("", objectName="adaptStatus", wordWrap=True)
        self.profileCombo = QtWidgets.QComboBox(objectName="profileCombo")
        self.profileCombo.setToolTip("Adaptation profile: automatic gives each segment the profile made for the structure "
                                     "it is named for (the base model when there is none); a chosen profile applies to every segment")
        self.deleteButton = QtWidgets.QPushButton("Delete profile", objectName="deleteProfileButton")
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.adaptButton)
        buttons.addWidget(self.cancelButton)
        form.addRow("Profile name:", self.nameEdit)
        form.addRow("Method:", self.methodCombo)
        form.addRow("Time budget:", self.budgetSpin)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.status)
        form.addRow("Active profile:", self.profileCombo)
        form.addRow(self.deleteButton)
        self.setWidget(body)
        self.timer = QtCore.QTimer(self, interval=200)
        self.timer.timeout.connect(self.poll)
        self.adaptButton.clicked.connect(self.start)
        self.cancelButton.clicked.connect(self.cancel)
        self.deleteButton.clicked.connect(self.delete_profile)
        self.profileCombo.activated.connect(lambda _: self.profileChosen.emit(self.profileCombo.currentData() or ""))
        self.refresh_profiles()

    def refresh_profiles(self, select: str | None = None) -> None:
        from waveseg.adaptation.profiles import list_profiles

        current = select if select is not None else (self.profileCombo.currentData() or "")
        self.profileCombo.clear()
        self.profileCombo.addItem("(automatic)", AUTOMATIC)  # by segment name: the tooltip says so
        self.profileCombo.addItem("(none)", NO_PROFILE)
        for profile in list_profiles():
            self.profileCombo.addItem(f"{profile['name']} ({profile.get('structure', '?')})", profile["name"])
        self.profileCombo.setCurrentIndex(max(self.profileCombo.findData(current), 0))

    def start(self) -> None:
        name = self.nameEdit.text().strip()
        if not name:
            self.status.setText("Type a profile name first.")
            return
        try:
            volume, mask, structure, window = self._get_training_data()
            images, masks, indices = annotated_slices(volume, mask)
            if len(indices) < 2:
                raise ValueError(f"adaptation needs at least 2 annotated axial slices of the segment; found {len(indices)}")
            self.process = AdaptationProcess(images[:20], masks[:20], name=name, model=self.model_name, structure=structure,
                                             method=self.methodCombo.currentText(), time_budget_s=self.budgetSpin.value(),
                                             window=window)
        except Exception as exc:  # bad input: say what is wrong, keep the UI usable
            self.status.setText(f"Cannot adapt: {exc}")
            return
        self.progress.setValue(0)
        self.status.setText(f"Adapting on {min(len(indices), 20)} slices ...")
        self.adaptButton.setEnabled(False)
        self.cancelButton.setEnabled(True)
        self.timer.start()

    def poll(self) -> None:
        if self.process is None:
            return
        for message in self.process.poll():
            if message["event"] == "progress":
                self.progress.setValue(min(100, int(100 * message.get("fraction", 0))))
                self.status.setText(f"step {message['step']} ({message.get('phase', '')}), loss {message['loss']:.3f}")
            elif message["event"] == "done":
                self.progress.setValue(100)
                self.status.setText(message["message"])  # the gate's sentence, with its numbers
                if not message["kept"]:
                    continue  # no profile was written: the base model stays
                self.refresh_profiles()  # automatic (the default) gives the new profile to the segment it was made from
                self.profileChosen.emit(self.profileCombo.currentData() or AUTOMATIC)
            else:
                self.status.setText(f"Adaptation stopped: {message.get('message')}")
        if self.process.result is not None:
            self.process = None
            self.timer.stop()
            self.adaptButton.setEnabled(True)
            self.cancelButton.setEnabled(False)

    def cancel(self) -> None:
        if self.process is not None:
            self.process.cancel()
            self.status.setText("Cancelling ...")

    def delete_profile(self) -> None:
        from waveseg.adaptation.profiles import delete_profile

        name = self.profileCombo.currentData()
        if name and name != NO_PROFILE:
            delete_profile(name)
            self.refresh_profiles(select=AUTOMATIC)
            self.profileChosen.emit(AUTOMATIC)

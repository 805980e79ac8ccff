"""The standalone WaveSeg desktop app (optional extra ``[app]``: Qt.py over PySide6, and VTK).

    waveseg app [IMAGE]

Three linked slice views and a 3D surface view of the segments; clicks and boxes prompt the
active segment's ``VolumeSession``; model work runs on one worker thread (``runner``);
adaptation runs as a background process (``waveseg.adaptation.background``). The core package
never imports this subpackage, so ``import waveseg`` stays free of Qt.
"""

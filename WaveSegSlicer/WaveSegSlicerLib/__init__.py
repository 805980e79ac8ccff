"""Slicer glue for WaveSeg: MRML conversions, the editor's grid as numpy, the volume prompt logic,
the model worker thread and the dependency installer (the Segment Editor effect itself lives alone
in ``SegmentEditorWaveSegLib``; the background adaptation process is the core's
``waveseg.adaptation.background``, shared with the desktop app).

Nothing here holds model logic (that is ``waveseg``), and nothing here imports Qt or needs the
Slicer application at import time, so the MRML parts are tested with PyPI's ``slicer-core``.
"""

"""Slicer glue for WaveSeg: MRML conversions, the volume prompt logic, the model worker thread,
the dependency installer and the Segment Editor effect (the background adaptation process is the
core's ``waveseg.adaptation.background``, shared with the desktop app).

Nothing here holds model logic (that is ``waveseg``); modules that need Qt or the Slicer
application (``executor`` pumping, ``dependencies``, ``SegmentEditorEffect``) import them
inside functions so the MRML parts can be tested with PyPI's ``slicer-core`` alone.
"""

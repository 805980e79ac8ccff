"""The app's "Propose" actions: the active segment proposed from its annotated slices.

"Propose" (E) proposes on the slice shown in the view of the last prompt (axial at first);
"Propose through volume" (Shift+E) on every slice not yet annotated. The examples are the
segment's locked slices across that view's axis (prompted, painted or accepted:
``waveseg.examples.volume_proposals.session_examples``); the work runs on the model runner and is
one undo step; the usual clicks then refine a proposed slice. A remote session has no proposals.
"""

from __future__ import annotations

from waveseg.volume_geometry import take_slice


class ProposalActions:
    """Mixin of ``MainWindow``: needs ``document``, ``views``, ``last_slice``, ``runner``, ``latency``, ``refresh``."""

    def _proposal_target(self):
        if self.document is None:
            return None
        session = self.document.segment.session
        if not hasattr(session, "locked") or not hasattr(session, "_cache"):
            self.statusBar().showMessage("proposals from examples need a local model (not a server)", 5000)
            return None
        axis = self.last_slice[0] if self.last_slice is not None else 0
        if not any(a == axis and take_slice(session.mask, a, i).any() for a, i in session.locked):
            self.statusBar().showMessage("annotate the segment on a slice first (prompt it, or accept it with A)", 5000)
            return None
        return session, axis

    def propose_slice(self) -> None:
        """Propose the active segment on the current slice of the last prompted view."""
        target = self._proposal_target()
        if target is None:
            return
        session, axis = target
        index = self.views[axis].index
        if (axis, index) in session.locked:
            self.statusBar().showMessage(f"slice {index} is annotated already; click to refine it", 5000)
            return
        self._run_proposal(session, axis, [index])

    def propose_through_volume(self) -> None:
        """Propose the active segment on every slice across the last prompted view's axis that is not annotated."""
        target = self._proposal_target()
        if target is not None:
            self._run_proposal(*target, None)

    def _run_proposal(self, session, axis: int, slices) -> None:
        from waveseg.examples.volume_proposals import propose_other_slices

        name = self.document.segment.name

        def done(report) -> None:  # on the GUI thread
            shown = f"proposed on {len(report.written)} slice(s)" if report.written else "no confident proposal"
            flagged = f"; {len(report.low_confidence)} slice(s) look free of it (left as they were)" if report.low_confidence else ""
            self.latency.setText(f"proposal: {1000 * self.runner.last_seconds:.0f} ms")
            self.statusBar().showMessage(shown + flagged, 8000)
            self.refresh()

        def failed(error: Exception) -> None:
            self.statusBar().showMessage(f"proposal failed: {error}", 8000)

        # one slice: proposed there alone; through the volume, slices beyond the annotated ones are propagated to
        beyond = "propose" if slices is not None else "propagate"
        if not self.runner.submit(lambda: propose_other_slices(session, axis, slices=slices, structure=name, beyond=beyond),
                                  done, failed):
            self.statusBar().showMessage("still working on the previous request", 3000)

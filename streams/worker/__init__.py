"""The worker: the Faust app and its agents around the pure pipeline (``app``), its keyed state (``state``),
its health (``health``) and the process that runs it and fails closed (``runner``)."""

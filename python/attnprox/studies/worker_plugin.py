"""The Dask worker plugin that loads a study's model when a worker starts (imported only when Dask is used)."""
import hashlib

from distributed.diagnostics.plugin import WorkerPlugin

from .scoring import Scoring, model_for


class ModelPlugin(WorkerPlugin):
    """Loads a study's model on every worker of the cluster, and on every worker that joins later, so that each
    worker process loads it once and keeps it for all its batches (`scoring.model_for`)."""

    def __init__(self, scoring: Scoring):
        self.scoring = scoring
        self.name = "attnprox-model-" + hashlib.sha256(repr(scoring).encode()).hexdigest()[:16]

    def setup(self, worker=None):
        model_for(self.scoring)

"""Running a study's batches: in this process, or spread over Dask workers (a local cluster of worker processes,
one per core or one per GPU, or an existing cluster at a scheduler's address). Either way each finished batch's
rows come back to this process, which hands them to `on_batch` (the store) at once, and a progress bar (stderr)
counts texts with their rate and the time left.

Local clusters: each worker is a process with one task thread; its libtorch and BLAS run `threads` threads
(default: the cores divided among the workers; in this process, libtorch's default); with `device="cuda"` each
worker sees only its own GPU (CUDA_VISIBLE_DEVICES) and loads the model there. Every worker loads the model once,
when it starts (`worker_plugin.ModelPlugin`), and keeps it for all its batches.
"""
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from ..errors import ComputeError, InvalidArgumentError, UnsupportedError
from .scoring import Batch, Scoring, model_for, score_batch

OnBatch = Callable[[Batch, List[dict]], None]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def visible_gpus() -> List[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else as many as torch counts."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


class Plan:
    """Where the batches run: `workers` (0: in this process, without Dask; 1 or more: a local Dask cluster of that
    many worker processes), `threads` per worker, the GPU each worker is pinned to
    (`gpus`, local clusters with device="cuda": `workers_per_gpu` workers on each visible GPU), or an existing
    cluster's `scheduler` address."""

    def __init__(self, device: str = "cpu", workers: Optional[int] = None, threads: Optional[int] = None,
                 scheduler: Optional[str] = None, workers_per_gpu: int = 1):
        self.scheduler = scheduler
        self.device = device
        self.gpus: List[str] = []          # per worker: the GPU it sees
        pinned = device == "cuda" and scheduler is None
        if workers_per_gpu < 1:
            raise InvalidArgumentError(f"workers per GPU {workers_per_gpu}: expected 1 or more")
        if workers_per_gpu != 1 and not pinned:
            raise InvalidArgumentError("workers per GPU apply to --device cuda on a local cluster")
        visible = visible_gpus() if pinned else []
        if pinned and not visible:
            raise UnsupportedError("--device cuda: no GPU is visible to this process")
        if workers is None:
            workers = len(visible) * workers_per_gpu if pinned else cores() if cores() > 1 else 0
        if workers < 0:
            raise InvalidArgumentError(f"workers {workers}: expected 0 (in this process) or more")
        if pinned and workers > len(visible) * workers_per_gpu:
            raise InvalidArgumentError(f"{workers} workers asked with --device cuda, but {len(visible)} GPU(s) are "
                                       f"visible and {workers_per_gpu} worker(s) share one")
        self.gpus = [visible[i // workers_per_gpu] for i in range(max(1, workers))] if pinned else []
        self.workers = workers if scheduler is None else None
        self.in_process = scheduler is None and workers == 0
        if threads is None:
            # In this process and on someone else's cluster, libtorch's own default; a local cluster shares the
            # cores among its workers.
            threads = 0 if scheduler is not None or self.in_process else max(1, cores() // workers)
        if threads < 0:
            raise InvalidArgumentError(f"threads {threads}: expected a positive number (0: libtorch's default)")
        self.threads = threads

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"Dask cluster at {self.scheduler}"
        if self.in_process:
            return f"in-process, {self.threads or 'default'} thread(s)"
        where = f", GPUs {','.join(self.gpus)}" if self.gpus else ""
        return (f"{self.workers} Dask worker process{'es' if self.workers > 1 else ''} × {self.threads} "
                f"thread(s){where}")


@dataclass
class Timing:
    """Where a study's time went: starting (the cluster and every worker's model load, or this process's model
    load) and scoring the batches (from the first submitted to the last stored)."""

    start_seconds: float = 0.0
    scoring_seconds: float = 0.0
    texts: int = 0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.scoring_seconds if self.scoring_seconds > 0 else float("nan")


def run_batches(scoring: Scoring, batches: Sequence[Batch], plan: Plan, on_batch: OnBatch,
                progress: bool = True, done_before: int = 0) -> Timing:
    """Scores every batch and hands each one's rows to on_batch as soon as it is done."""
    from tqdm import tqdm

    total = sum(len(b.texts) for b in batches)
    timing = Timing(texts=total)
    if not batches:
        return timing
    with tqdm(total=total, unit="text", desc="scoring", file=sys.stderr, disable=not progress,
              dynamic_ncols=True, smoothing=0.1,
              postfix=f"{done_before} done before" if done_before else None) as bar:
        started = time.perf_counter()
        if plan.in_process:
            model_for(scoring)
            timing.start_seconds = time.perf_counter() - started
            bar.reset(total=total)   # the rate and the time left count from here
            for batch in batches:
                on_batch(batch, score_batch(scoring, batch))
                bar.update(len(batch.texts))
        else:
            _run_on_dask(scoring, batches, plan, on_batch, bar, timing)
        timing.scoring_seconds = time.perf_counter() - started - timing.start_seconds
    return timing


def _cost(batch: Batch) -> int:
    """Roughly the work of a batch: attention is quadratic in the length."""
    return len(batch.tokens) * max(batch.tokens) ** 2


def _run_on_dask(scoring: Scoring, batches: Sequence[Batch], plan: Plan, on_batch: OnBatch, bar,
                 timing: Timing) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UnsupportedError("several workers need Dask distributed (Debian: python3-distributed); "
                               "--workers 0 runs in this process") from None
    from .worker_plugin import ModelPlugin

    started = time.perf_counter()
    with contextlib.ExitStack() as config:
        if plan.scheduler is None:  # a local cluster
            config.enter_context(local_dask_config())
        cluster = None
        try:
            if plan.scheduler is not None:
                client = Client(plan.scheduler, timeout="30s")
            else:
                cluster = local_cluster(plan)
                client = Client(cluster)
        except (OSError, RuntimeError) as e:  # RuntimeError: "Cluster failed to start: ..."
            if cluster is not None:
                cluster.close()
            raise ComputeError(f"cannot start or reach the Dask cluster: {e}") from None
        try:
            plugin = ModelPlugin(scoring)
            try:
                client.register_worker_plugin(plugin, name=plugin.name)
            except Exception as e:  # a worker could not load the model: say which and why
                raise ComputeError(f"a Dask worker could not load the model: {type(e).__name__}: {e}") from None
            timing.start_seconds = time.perf_counter() - started
            bar.reset(total=bar.total)   # the rate and the time left count from here
            # The most expensive batches first, so that no worker is left with a long one at the end.
            order = sorted(range(len(batches)), key=lambda i: -_cost(batches[i]))
            futures = {}
            for rank, index in enumerate(order):
                future = client.submit(score_batch, scoring, batches[index], pure=False, priority=len(order) - rank)
                futures[future] = batches[index]
            for future in as_completed(list(futures)):
                batch = futures.pop(future)
                try:
                    rows = future.result()
                except Exception as e:
                    for other in futures:
                        other.cancel()
                    raise ComputeError(f"a Dask task failed on texts {', '.join(batch.ids[:3])}"
                                       f"{'…' if len(batch.ids) > 3 else ''}: {type(e).__name__}: {e}") from None
                on_batch(batch, rows)
                bar.update(len(batch.texts))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def worker_environments(plan: Plan) -> List[dict]:
    """The environment of each local worker process: libtorch and BLAS limited to `plan.threads` threads (OpenMP
    threads waiting passively unless OMP_WAIT_POLICY says otherwise), and its GPU when the plan has GPUs."""
    threads = str(max(1, plan.threads))
    environments = []
    for index in range(plan.workers):
        env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               # OpenMP threads that sleep while they wait: spinning ones slow a shared machine down several-fold
               # (measured: 2 threads, 7x slower under a load of 5 on 2 cores; sleeping ones 20 % faster than 1)
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        if plan.gpus:
            env["CUDA_VISIBLE_DEVICES"] = plan.gpus[index]
        env.update(_QUIET_DASK_ENV)
        environments.append(env)
    return environments


# Dask's GPU monitoring (NVML) is of no use to a study and breaks older distributed releases (2022.12, Debian 12's)
# on machines with a newer pynvml, whose functions return str where those releases call .decode(): the cluster then
# fails to start with "'str' object has no attribute 'decode'". Local clusters run without it: in the scheduler
# (this process, for the cluster's lifetime: `local_dask_config`) and in every worker process (their environment).
_QUIET_DASK_ENV = {"DASK_DISTRIBUTED__DIAGNOSTICS__NVML": "False"}


def local_dask_config():
    """The Dask configuration a local cluster runs under, for as long as it runs (restored afterwards)."""
    import dask

    return dask.config.set({"distributed.diagnostics.nvml": False})


def local_cluster(plan: Plan):
    """A local Dask cluster of `plan.workers` processes, one task thread each, in `worker_environments(plan)`.
    Start and use it inside `local_dask_config()`."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {f"attnprox-{index}": {"cls": Nanny, "options": {"nthreads": 1, "env": env, "host": "127.0.0.1",
                                                               "dashboard": False, "silence_logs": logging.ERROR}}
               for index, env in enumerate(worker_environments(plan))}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR, name="attnprox-study")



"""Streaming stages: work items in, Parquet partitions out, written where the rows are computed.

A stage maps each work item (a small dict: one raw video, or one row group of clips) through a
class-based UDF. The UDF returns a *transport block*: one Arrow table whose `kind` column names the
output table of each row and whose struct column of that name holds the row (`transport_block`).
`PartSink` splits blocks by kind and appends them, one row group per block, to part files in a
hidden staging folder per output; when the stage has finished, the driver moves each staging folder
into place (`media.tables.publish_folder`), so a failed stage leaves the previous tables whole.

With `backend="ray"` this is one Ray Data pipeline per stage: `from_items` → `map_batches` on an
actor pool (one UDF instance per actor: the model stages load MobileNetV2 / the scorers once; GPUs
are requested when the cluster has any) → `write_datasink(PartSink)` on the workers. The driver
holds the work items and per-write-task counts only: no `take_all`, no `to_pandas`. The in-process
backend (`backend="local"`, for tests) runs the same UDF and the same sink in this process. The one
step that must see every clip at once (dedup, then tiers) runs as a single task on the cluster
(`run_task`), reading and writing the tables itself, so it needs a worker with the memory for the
batch's embeddings (about 3 GiB at 10⁶ clips), not the driver.

Progress: a UDF may add one `video` row per source video it finished (`VIDEO_SCHEMA`: path, rows
of the stage's main output, quarantined rows). The sink writes no table of them; it hands them to the stage's progress
callback as the part writes complete (in-process directly; on Ray through a small counter actor that
a driver thread drains), so the driver sees one small record per video, never a clip row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.datasource.datasink import WriteResult

from curation.config import ExecutionConfig
from media.tables import part_files, publish_folder, staging_folder
from media.threads import cpu_threads

T = TypeVar("T")
Row = tuple[str, dict[str, Any]]  # (output kind, row)
NODE_METADATA_KEY = "videofoundry.node"
MAX_ITEMS_PER_CALL = 16
StageUdf = Callable[[pa.Table], pa.Table]
VIDEO_KIND = "video"
VIDEO_SCHEMA = pa.schema(
    [pa.field("path", pa.string()), pa.field("clips", pa.int64()), pa.field("quarantined", pa.int64())]
)
"""Per-video progress rows a UDF may emit (kind `video`): counted, never written to a table.
`clips` counts the stage's main output rows of the video (clips, or signal rows)."""


@dataclasses.dataclass(frozen=True)
class VideoDone:
    """One source video stage `stage` finished: its `clips` output rows and quarantine rows written."""

    stage: str
    path: str
    clips: int
    quarantined: int


ProgressFn = Callable[[VideoDone], None]


@dataclasses.dataclass(frozen=True)
class StageOutput:
    """One table partition a stage writes.

    `shared`: other stages write to the same partition too (the quarantine of a batch); only this
    stage's part files (named `<stage>-…`) are replaced, the others are carried over.
    """

    path: Path
    schema: pa.Schema
    shared: bool = False


@dataclasses.dataclass
class StageSummary:
    """What a stage wrote: rows per output kind, items processed, Ray node ids of the write tasks."""

    rows: dict[str, int]
    items: int
    nodes: set[str]
    paths: dict[str, Path]


def transport_schema(schemas: dict[str, pa.Schema]) -> pa.Schema:
    """`kind` plus one nullable struct column per output kind (fields nullable: other kinds' rows)."""
    return pa.schema(
        [pa.field("kind", pa.string())]
        + [
            pa.field(kind, pa.struct([f.with_nullable(True) for f in schema]))
            for kind, schema in schemas.items()
        ]
    )


def transport_block(schemas: dict[str, pa.Schema], rows: Iterable[Row]) -> pa.Table:
    """The transport block of `rows` (each `(kind, row dict)`)."""
    return pa.Table.from_pylist(
        [{"kind": kind, kind: row} for kind, row in rows], schema=transport_schema(schemas)
    )


def rows_of(block: pa.Table, kind: str, schema: pa.Schema) -> pa.Table:
    """The rows of `kind` in a transport block, as a table of `schema`."""
    chosen = block.filter(pc.equal(block.column("kind"), kind)).column(kind)
    if chosen.num_chunks == 0 or len(chosen) == 0:
        return schema.empty_table()
    batches = [pa.RecordBatch.from_struct_array(chunk) for chunk in chosen.chunks if len(chunk)]
    return pa.Table.from_batches(batches).select(schema.names).cast(schema)


def limit_threads() -> None:
    """One BLAS/OpenCV/torch thread for the rest of a process of its own (a Ray actor: Ray runs one
    per CPU already). Work in a shared process uses `media.threads.cpu_threads`, which restores."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


class PartSink(Datasink[dict[str, Any]]):
    """Writes transport blocks to part files `<stage>-<key>.parquet` in per-kind staging folders.

    Each `write` call (one Ray write task, or one block in-process) writes one part file per kind,
    each block's rows as one row group, so a work item's rows (its videos' clips) stay in one row
    group. `<key>` is a digest of the part's first row: a write task that Ray retries (a worker
    killed for memory, a lost node) rewrites the same file instead of adding a copy, and a part is
    written under a hidden temporary name and renamed when complete, so a killed writer leaves
    nothing a reader sees. The file's metadata names the Ray node that wrote it
    (`videofoundry.node`, `inprocess` without Ray). `write` returns `{"rows": {kind: n}, "node": id}`.
    """

    def __init__(
        self,
        stage: str,
        staging: dict[str, tuple[Path, pa.Schema]],
        on_ray: bool = False,
        progress: Any = None,
    ) -> None:
        self.stage = stage
        self.staging = staging
        self.on_ray = on_ray  # the in-process backend says `inprocess` even when the driver runs Ray
        # Where `video` rows go once their parts are written: a `ProgressLog` (in-process) or the
        # handle of one running as a Ray actor.
        self.progress = progress
        self.returns: list[dict[str, Any]] = []

    def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, Any]:
        node = _node_id() if self.on_ray else "inprocess"
        writers: dict[str, tuple[pq.ParquetWriter, Path, Path]] = {}
        counts: Counter[str] = Counter()
        videos: list[dict[str, Any]] = []
        try:
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
                if VIDEO_KIND in table.column_names:
                    videos += rows_of(table, VIDEO_KIND, VIDEO_SCHEMA).to_pylist()
                for kind, (folder, schema) in self.staging.items():
                    rows = rows_of(table, kind, schema)
                    if rows.num_rows == 0:
                        continue
                    if kind not in writers:
                        key = hashlib.sha256(repr(rows.slice(0, 1).to_pylist()).encode()).hexdigest()[:24]
                        final = folder / f"{self.stage}-{key}.parquet"
                        tmp = folder / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
                        folder.mkdir(parents=True, exist_ok=True)  # a worker that sees the volume only
                        tagged = schema.with_metadata({NODE_METADATA_KEY: node})
                        writers[kind] = (pq.ParquetWriter(tmp, tagged), tmp, final)
                    writers[kind][0].write_table(rows.replace_schema_metadata({NODE_METADATA_KEY: node}))
                    counts[kind] += rows.num_rows
        except BaseException:
            for writer, tmp, _ in writers.values():
                writer.close()
                tmp.unlink(missing_ok=True)
            raise
        for writer, tmp, final in writers.values():
            writer.close()
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        if self.progress is not None and videos:
            if self.on_ray:
                import ray

                ray.get(self.progress.add.remote(videos))
            else:
                self.progress.add(videos)
        return {"rows": dict(counts), "node": node}

    def on_write_complete(self, write_result: WriteResult[dict[str, Any]]) -> None:
        self.returns = list(write_result.write_returns)


class ProgressLog:
    """Finished-video records between the sink that reports them and the driver that shows them.

    In-process, `add` calls `callback` at once; as a Ray actor (no callback) it queues the records
    until the driver `drain`s them.
    """

    def __init__(self, stage: str, callback: ProgressFn | None = None) -> None:
        self.stage = stage
        self.callback = callback
        self.pending: list[dict[str, Any]] = []

    def add(self, videos: list[dict[str, Any]]) -> None:
        if self.callback is None:
            self.pending += videos
            return
        for video in videos:
            self.callback(VideoDone(self.stage, **video))

    def drain(self) -> list[dict[str, Any]]:
        drained, self.pending = self.pending, []
        return drained


def once_per_video(callback: ProgressFn) -> ProgressFn:
    """`callback` for the first record of each path only (a retried write task reports its videos again)."""
    seen: set[str] = set()

    def report(video: VideoDone) -> None:
        if video.path not in seen:
            seen.add(video.path)
            callback(video)

    return report


def written_by(part: Path) -> str:
    """The Ray node id that wrote a part file (`inprocess` without Ray)."""
    metadata = pq.read_schema(part).metadata or {}
    return metadata.get(NODE_METADATA_KEY.encode(), b"").decode()


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "inprocess"


def run_stage(
    stage: str,
    items: list[dict[str, Any]],
    udf: type,
    udf_kwargs: dict[str, Any],
    outputs: dict[str, StageOutput],
    config: ExecutionConfig,
    progress: ProgressFn | None = None,
) -> StageSummary:
    """Map every item through `udf(**udf_kwargs)` and publish each output's partition.

    `udf` is a class whose instances take a one-item batch (Arrow table) and return a transport
    block of the kinds in `outputs` (plus `video` progress rows, which go to `progress`, once per
    path, as their parts are written). Every output is published, with an empty part file when the
    stage produced no row of its kind, so readers always find its schema.
    """
    staging = {kind: (staging_folder(out.path), out.schema) for kind, out in outputs.items()}
    report = once_per_video(progress) if progress is not None else None
    sink = PartSink(stage, staging, on_ray=config.backend != "local")
    try:
        if config.backend == "local":
            sink.progress = ProgressLog(stage, report) if report is not None else None
            with cpu_threads(1):  # as on Ray, one thread per call; the process's own count after
                instance = udf(**udf_kwargs)
                for item in items:
                    sink.returns.append(sink.write([instance(pa.Table.from_pylist([item]))], None))
        elif items:
            _run_on_ray(stage, items, udf, udf_kwargs, sink, config, report)
        for kind, out in outputs.items():
            folder, schema = staging[kind]
            for leftover in folder.glob(".*"):  # temporary files of writers killed and retried
                leftover.unlink()
            if not any(folder.iterdir()):
                pq.write_table(schema.empty_table(), folder / f"{stage}-empty.parquet")
                os.chmod(folder / f"{stage}-empty.parquet", 0o644)
            if out.shared:
                _carry_other_stages(out.path, folder, stage)
            publish_folder(folder, out.path)
    except BaseException:
        for folder, _ in staging.values():
            if folder.exists():
                for part in folder.iterdir():
                    part.unlink()
                folder.rmdir()
        raise
    rows: Counter[str] = Counter()
    for result in sink.returns:
        rows.update(result["rows"])
    return StageSummary(
        rows={kind: rows.get(kind, 0) for kind in outputs},
        items=len(items),
        nodes={result["node"] for result in sink.returns},
        paths={kind: out.path for kind, out in outputs.items()},
    )


def run_task(name: str, fn: Callable[..., T], config: ExecutionConfig, *args: Any) -> T:
    """Run one whole-batch step (`fn(*args)`) where the stages run: in this process with the local
    backend, else as one Ray task on the cluster, so the driver holds only what `fn` returns.

    For steps that must see every row at once (dedup compares every clip with every other): they
    read their inputs from the tables and write their outputs there themselves, and return counts.
    """
    if config.backend == "local":
        return fn(*args)
    import ray

    from media.ray_cluster import ensure_ray

    ensure_ray(config.ray_address, config.num_cpus)
    task: Any = ray.remote(num_cpus=1, max_retries=0)(fn).options(name=name)
    return ray.get(task.remote(*args))  # type: ignore[no-any-return]


def _carry_other_stages(path: Path, staged: Path, stage: str) -> None:
    """Hard-link the part files of other stages from the published partition into the staging folder."""
    if not path.is_dir():
        return
    for part in part_files(path):
        if not part.name.startswith(f"{stage}-"):
            os.link(part, staged / part.name)


def _run_on_ray(
    stage: str,
    items: list[dict[str, Any]],
    udf: type,
    udf_kwargs: dict[str, Any],
    sink: PartSink,
    config: ExecutionConfig,
    report: ProgressFn | None,
) -> None:
    import ray

    from media.ray_cluster import ensure_ray

    ensure_ray(config.ray_address, config.num_cpus)
    context = ray.data.DataContext.get_current()
    # Ray Data logs a progress block every 10 s by default; our own tables say enough.
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    resources = ray.cluster_resources()
    actors = max(1, int(resources.get("CPU", 1) // max(config.cpus_per_task, 1e-3)))
    remote: dict[str, Any] = {"num_cpus": config.cpus_per_task}
    if config.gpus_per_task and resources.get("GPU", 0) > 0:
        remote["num_gpus"] = config.gpus_per_task
        actors = max(1, min(actors, int(resources["GPU"] // config.gpus_per_task)))
    # Several items per call amortise the per-block cost of Ray Data (scheduling, one write task
    # per block), while at least four blocks per actor keep every actor busy.
    per_call = max(1, min(MAX_ITEMS_PER_CALL, len(items) // (4 * actors)))
    dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // per_call))
    mapped = dataset.map_batches(
        _ThreadLimited,
        fn_constructor_kwargs={"udf": udf, "udf_kwargs": udf_kwargs},
        batch_size=per_call,
        batch_format="pyarrow",
        # A fixed pool, one actor per CPU of the cluster: the work spreads over every node at once.
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(items))),
        **remote,
    )
    # Write tasks ask for no CPU: the actor pool holds every CPU, and a write that waited for one
    # would wait for the whole map to end, holding all its output in the object store meanwhile.
    if report is None:
        mapped.write_datasink(sink, ray_remote_args={"num_cpus": 0})
        return
    log: Any = ray.remote(num_cpus=0)(ProgressLog).remote(
        stage
    )  # an actor handle (Ray's stubs type it loosely)
    sink.progress = log
    done = threading.Event()

    def pump() -> None:
        while not done.wait(0.5):
            for video in ray.get(log.drain.remote()):
                report(VideoDone(stage, **video))

    pumping = threading.Thread(target=pump, name="curation-progress", daemon=True)
    pumping.start()
    try:
        mapped.write_datasink(sink, ray_remote_args={"num_cpus": 0})
    finally:
        done.set()
        pumping.join()
        for video in ray.get(log.drain.remote()):
            report(VideoDone(stage, **video))
        ray.kill(log)
        sink.progress = None


class _ThreadLimited:
    """Builds the UDF once per actor with one compute thread, then forwards every batch to it."""

    def __init__(self, udf: type, udf_kwargs: dict[str, Any]) -> None:
        limit_threads()
        self.udf = udf(**udf_kwargs)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.udf(batch)

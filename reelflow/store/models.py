"""SQLAlchemy tables: pipelines, runs, steps, outputs, events, run owners."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from reelflow.store.columns import MicroUsd


def utcnow() -> datetime:
    return datetime.now(UTC)


def attributes(table: Any, row: Any) -> dict[str, Any]:
    """A row read from ``select(table)`` by the models' attribute names (a column may be named otherwise in SQL:
    ``cost_usd`` is kept as ``cost_micro_usd``)."""
    return {column.key: row[column] for column in table.c}


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Pipeline(Base):
    """A saved, reusable pipeline: a graph definition (``definition``, its latest ``version``) or, for one saved
    before pipelines were graphs, a one-video spec (``spec``; read as a one-step pipeline)."""

    __tablename__ = "pipelines"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]]
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PipelineVersion(Base):
    """Every stored version of a pipeline's definition, so a run can name the exact one it ran."""

    __tablename__ = "pipeline_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One run: a single video (``kind`` "video", ``spec`` a one-video spec) or a pipeline run (``kind``
    "pipeline", ``spec`` the resolved definition, ``inputs`` the values given for its inputs)."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), index=True)
    pipeline_id: Mapped[str | None] = mapped_column(ForeignKey("pipelines.id", ondelete="SET NULL"))
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    model_id: Mapped[str] = mapped_column(String(100), index=True)
    backend: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    spec: Mapped[dict[str, Any]]
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    cost_usd: Mapped[Decimal | None] = mapped_column("cost_micro_usd", MicroUsd, key="cost_usd")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(120), index=True)  # RunOwner.id of the process working on it
    kind: Mapped[str] = mapped_column(String(20), default="video", server_default="video")
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pipeline_version: Mapped[int | None] = mapped_column(Integer)

    steps: Mapped[list[Step]] = relationship(back_populates="run", order_by="Step.id")
    outputs: Mapped[list[Output]] = relationship(back_populates="run", order_by="Output.id")


class Step(Base):
    """One task of a run: which backend, which provider job, how it went."""

    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))  # the task's name; a pipeline step's id (``shots[1]``)
    backend: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str | None] = mapped_column(String(30))  # a pipeline step's kind (``image_to_video``, ``approve``)
    pipeline_step: Mapped[str | None] = mapped_column(String(100))  # the definition's step id, without the index
    fan_index: Mapped[int | None] = mapped_column(Integer)  # which item of a fan-out
    depends_on: Mapped[list[str] | None] = mapped_column(JSON)  # the step names whose outputs it takes
    idempotency_key: Mapped[str | None] = mapped_column(String(64), index=True)  # its resolved inputs + model + params
    provider_job_id: Mapped[str | None] = mapped_column(String(200), index=True)
    provider_endpoint: Mapped[str | None] = mapped_column(String(500))
    prefect_task_run_id: Mapped[str | None] = mapped_column(String(36))
    slot_limit: Mapped[str | None] = mapped_column(String(100))  # the concurrency slot held while running
    slot_lease_id: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    cost_usd: Mapped[Decimal | None] = mapped_column("cost_micro_usd", MicroUsd, key="cost_usd")
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="steps")


class Output(Base):
    __tablename__ = "outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("steps.id", ondelete="SET NULL"))
    role: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(500))
    path: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    frames: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="outputs")


class Event(Base):
    """Progress and status history of a run; the panel streams these over SSE."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[str | None] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunOwner(Base):
    """A process that queued or runs runs (``host:pid:start-time``), with its heartbeat; see ``store/owners.py``."""

    __tablename__ = "run_owners"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)

"""What a pipeline run would cost before anything is paid: each step's price × how many items it makes.

Money is exact (``Decimal`` from the catalog's list prices); a price that cannot be known in advance is None
("unknown"), never zero. GPU steps cost GPU seconds × the instance's $/hour, known only when both are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reelflow.core.catalog import ModelEntry
from reelflow.core.pipeline.check import model_entry, resolve_inputs
from reelflow.core.pipeline.definition import PipelineDefinition, StepDef
from reelflow.core.pipeline.graph import fan_out_size

FREE = Decimal(0)


@dataclass(frozen=True)
class StepEstimate:
    """One step: how many jobs it makes (``count``: fan-out items, variants, extend's times) and their price."""

    step: str
    kind: str
    model: str | None
    count: int
    usd: Decimal | None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind, "model": self.model, "count": self.count,
                "usd": None if self.usd is None else str(self.usd), "note": self.note}


@dataclass(frozen=True)
class PipelineEstimate:
    steps: list[StepEstimate] = field(default_factory=list)

    @property
    def total_usd(self) -> Decimal | None:
        """The sum, or None when any step's price is unknown."""
        prices = [s.usd for s in self.steps]
        return None if any(p is None for p in prices) else sum((p for p in prices if p is not None), FREE)

    @property
    def unknown(self) -> list[str]:
        return [s.step for s in self.steps if s.usd is None]

    def as_json(self) -> dict[str, Any]:
        """Money as decimal text (``"0.0030"``), exact; null when unknown."""
        total = self.total_usd
        return {"steps": [s.as_json() for s in self.steps], "total_usd": None if total is None else str(total),
                "unknown": self.unknown}


def estimate(definition: PipelineDefinition, inputs: Mapping[str, Any], *, gpu_usd_per_hour: float | None = None,
             gpu_seconds: float | None = None) -> PipelineEstimate:
    """The price of each step of a checked definition with these inputs (converted and defaulted here);
    ``gpu_usd_per_hour`` × ``gpu_seconds`` (per GPU job) prices GPU steps when both are known."""
    resolved = resolve_inputs(definition, inputs)
    return PipelineEstimate([_step(definition, step, resolved, gpu_usd_per_hour, gpu_seconds)
                             for step in definition.steps])


def _count(definition: PipelineDefinition, step: StepDef, inputs: Mapping[str, Any]) -> int:
    if step.kind == "approve":
        return 1
    size = fan_out_size(definition, step.id, inputs)
    return 1 if size is None else size


def _step(definition: PipelineDefinition, step: StepDef, inputs: Mapping[str, Any], rate: float | None,
          gpu_seconds: float | None) -> StepEstimate:
    count = _count(definition, step, inputs)
    if step.kind == "concat":
        return StepEstimate(step.id, step.kind, None, count, FREE, "joined here with PyAV")
    if step.kind == "approve":
        return StepEstimate(step.id, step.kind, None, count, FREE,
                            f"a person's answer (a redo renders {step.target} again)")
    model = model_entry(step)
    assert model is not None  # every other kind has a model
    one = _one_job(model, step, rate, gpu_seconds)
    note = model.price.text()
    if one is None:
        note = ("GPU seconds × $/hour: give both to price it" if model.price.unit == "gpu_hour"
                else note if "unknown" in note else f"{note}: not known in advance")
    return StepEstimate(step.id, step.kind, model.id, count, None if one is None else one * count, note)


def _one_job(model: ModelEntry, step: StepDef, rate: float | None, gpu_seconds: float | None) -> Decimal | None:
    params = step.params
    duration = params.get("duration")
    frames = params.get("frames")
    if frames is not None:
        duration = frames / (params.get("fps") or model.inputs.default_fps or 24)
    usd = model.estimate_usd(duration=duration, resolution=params.get("resolution"), gpu_usd_per_hour=rate,
                             gpu_seconds=gpu_seconds, audio=bool(params.get("audio")))
    return None if usd is None else dollars(usd)


def dollars(usd: Decimal) -> Decimal:
    """A catalog estimate (to the micro-dollar) without trailing zeros."""
    return usd.quantize(Decimal(1)) if usd == usd.to_integral_value() else usd.normalize()

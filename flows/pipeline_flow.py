"""``pipeline_run``: one flow run executes a recorded pipeline run; each step (each fan-out item) is a task run.

Every step starts as soon as the steps it takes outputs from are done, so independent steps run concurrently;
what really runs at once is bounded by the provider limits the jobs take (Prefect global concurrency limits).
Each item has an idempotency key (kind, model, resolved params and texts, the sha256 of its input media): a
completed step with that key, in this run or (unless ``force``) in any earlier one, is reused without calling a
provider. So resuming a run redoes only what did not complete, a suspended run re-executed from the top skips
its finished steps, and an edited definition re-renders only what changed. A failed step fails only the steps
that need it; the run then ends failed naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prefect import flow
from prefect.exceptions import Pause
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from flows.fallback import run_i2v
from flows.run_outcome import executing
from flows.video_pipeline import CANCELLED_NOTE, I2V_TASKS, _media_of
from reelflow.core.catalog import ModelEntry
from reelflow.core.catalog.models import parse_size
from reelflow.core.domain import ImageParams, MediaRef, ProviderOutput
from reelflow.core.money import total_usd
from reelflow.core.pipeline.check import model_entry
from reelflow.core.pipeline.definition import PipelineDefinition, StepDef, is_reference, literal_text, parse_ref
from reelflow.core.pipeline.graph import step_dependencies
from reelflow.core.spec import MAX_SEED, PipelineSpec, check_spec, frame_size
from reelflow.errors import PipelineDefinitionError, SpecError
from reelflow.jobs.step import PIPELINE_STEP
from reelflow.runs import events
from reelflow.store import pipeline_steps as store
from reelflow.store import repo
from reelflow.store.views import OutputView, RunView
from tasks.cache_r2 import cache_r2

STORAGE = "auto"


class UpstreamFailed(Exception):
    """A step did not run because a step it takes outputs from failed (or was not approved)."""


@dataclass
class StepResult:
    """What a step made: one output dict per item (one item unless it fans out)."""

    fan_out: bool
    items: list[dict[str, Any]] = field(default_factory=list)

    def value(self, output: str, index: int | None) -> Any:
        if index is not None:
            return self.items[index][output]
        if self.fan_out:
            return [item[output] for item in self.items]
        return self.items[0][output]


def item_name(step_id: str, index: int | None) -> str:
    """The store step and task run name of one item: ``keyframe``, ``shots[1]``."""
    return step_id if index is None else f"{step_id}[{index}]"


def _key(material: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _digest(value: Any) -> Any:
    """Media by the sha256 of its bytes, texts as text: what an idempotency key is made of."""
    if isinstance(value, OutputView):
        return {"sha256": value.sha256}
    if isinstance(value, list):
        return [_digest(v) for v in value]
    return value


class _NamedI2v(Mapping[str, Any]):
    """The i2v tasks by backend, their task runs named after the pipeline step item."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, backend: str) -> Any:
        return I2V_TASKS[backend].with_options(task_run_name=self.name)

    def __iter__(self) -> Iterator[str]:
        return iter(I2V_TASKS)

    def __len__(self) -> int:
        return len(I2V_TASKS)


class Engine:
    def __init__(self, run: RunView, definition: PipelineDefinition, inputs: dict[str, Any], force: bool) -> None:
        self.run_id = run.run_id
        self.definition = definition
        self.inputs = inputs
        self.force = force
        self.deps = step_dependencies(definition)
        self.results: dict[str, asyncio.Task[StepResult]] = {}
        self.failed: dict[str, str] = {}
        self.stopped: str | None = None  # why a person stopped the run (rejected, no answer in time)
        self.input_media = {o.sha256: o for o in run.outputs if o.role == "input"}

    async def run(self) -> None:
        for step in self.definition.steps:  # in file order; each task awaits its own dependencies
            self.results[step.id] = asyncio.create_task(self._step(step), name=step.id)
        await asyncio.gather(*self.results.values(), return_exceptions=True)
        for task in self.results.values():  # a suspended approval ends this execution; it runs again once answered
            if not task.cancelled() and isinstance(task.exception(), Pause):
                raise task.exception()  # type: ignore[misc]
        if self.stopped is None and any(task.cancelled() for task in self.results.values()):
            raise asyncio.CancelledError

    async def _step(self, step: StepDef) -> StepResult:
        needed: dict[str, StepResult] = {}
        for dep in sorted(self.deps[step.id]):
            try:
                needed[dep] = await self.results[dep]
            except Exception as exc:
                note = f"not run: it needs '{dep}', which " + ("was not run" if isinstance(exc, UpstreamFailed)
                                                               else "failed")
                store.plan_step(self.run_id, step.id, kind=step.kind, pipeline_step=step.id, fan_index=None,
                                depends_on=sorted(self.deps[step.id]), backend="pipeline")
                store.mark_step(self.run_id, step.id, "skipped", error=note)
                raise UpstreamFailed(note) from None
        try:
            return await self._execute(step, needed)
        except UpstreamFailed:
            raise
        except Exception as exc:
            self.failed[step.id] = str(exc) or type(exc).__name__
            raise

    # -- resolving references ---------------------------------------------------------------------------------
    def _resolve(self, value: Any, needed: Mapping[str, StepResult], item: Any = None, index: int | None = None,
                 *, field: str) -> Any:
        if isinstance(value, list):
            return [self._resolve(v, needed, item, index, field=field) for v in value]
        if not is_reference(value):
            return literal_text(value) if isinstance(value, str) else value
        ref = parse_ref(value)
        if ref is None:
            raise PipelineDefinitionError(None, field, f"'{value}' is not a reference")
        if ref.source == "input":
            found = self.inputs.get(ref.name or "")
            if isinstance(found, dict) and "sha256" in found:  # an image input: its stored copy
                return self.input_media[found["sha256"]]
            return found
        if ref.source == "item":
            return item
        if ref.source == "index":
            return index
        assert ref.name is not None and ref.output is not None
        return needed[ref.name].value(ref.output, ref.index)

    def _text(self, value: Any, needed: Mapping[str, StepResult], item: Any, index: int | None, *,
              field: str) -> str | None:
        if value is None:
            return None
        parts = value if isinstance(value, list) else [value]
        return "".join(str(self._resolve(p, needed, item, index, field=field)) for p in parts)

    def _items(self, step: StepDef, needed: Mapping[str, StepResult]) -> tuple[bool, list[tuple[Any, int | None]]]:
        if step.for_each is not None:
            values = self._resolve(step.for_each, needed, field="for_each")
            if not isinstance(values, list):
                raise PipelineDefinitionError(step.id, "for_each", "is not a list")
            return True, [(v, i) for i, v in enumerate(values)]
        if step.variants is not None:
            return True, [(i, i) for i in range(step.variants)]
        return step.kind == "extend", [(None, None)]

    # -- running one step -------------------------------------------------------------------------------------
    async def _execute(self, step: StepDef, needed: Mapping[str, StepResult]) -> StepResult:
        if step.kind == "approve":
            return await self._approve(step, needed)
        fan_out, items = self._items(step, needed)
        model = self._model(step)
        if step.kind == "extend":
            return StepResult(fan_out=True, items=await self._extend(step, model, needed))
        made = await asyncio.gather(*(self._item(step, model, needed, item, index if fan_out else None)
                                      for item, index in items), return_exceptions=True)
        errors = [m for m in made if isinstance(m, BaseException)]
        if errors:
            raise errors[0]
        return StepResult(fan_out=fan_out, items=list(made))  # type: ignore[arg-type]

    async def _approve(self, step: StepDef, needed: Mapping[str, StepResult]) -> StepResult:
        """Ask a person about the target's output; approved, it is passed on. A redo renders the target again (the
        answer's prompt or seed; neither: a new seed) and asks again; a rejection or no answer in time stops the
        run (cancelled), and nothing after the approval starts. An approval of exactly these bytes answered before
        in this run (resume, a suspended run executed again) is not asked again."""
        from reelflow.runs.approvals import await_approval

        assert step.target is not None
        target, result, redo = self.definition.step(step.target), needed[step.target], 0
        while True:
            subject = next((v for v in result.items[0].values() if isinstance(v, OutputView)), None)
            key = _key({"kind": "approve", "step": step.id, "subject": _digest([
                v for item in result.items for v in item.values()])})
            if store.find_done(key, run_id=self.run_id, any_run=False) is not None:
                return result
            store.plan_step(self.run_id, step.id, kind="approve", pipeline_step=step.id, fan_index=None,
                            depends_on=[target.id], backend="person")
            answer = await await_approval(self.run_id, step.id, self._media(subject) if subject else None,
                                          subject.url if subject else None, timeout_s=step.timeout,
                                          on_timeout=step.on_timeout)
            if answer.decision == "approve":
                store.finish_step(self.run_id, step.id, key=key, outputs={}, facts={})
                return result
            if answer.decision != "redo":
                self.stopped = f"approval '{step.id}': {answer.decision}"
                for other in self.results.values():
                    if other is not asyncio.current_task():
                        other.cancel()
                raise UpstreamFailed(self.stopped)
            redo += 1
            params = dict(target.params)
            if answer.seed is not None or answer.prompt is None:
                params["seed"] = answer.seed if answer.seed is not None else int(
                    _key({"redo": redo, "step": target.id, "subject": _digest(subject)})[:8], 16)
            target = target.model_copy(update={"params": params, **({"prompt": answer.prompt}
                                                                     if answer.prompt is not None else {})})
            target_needed = {dep: await self.results[dep] for dep in sorted(self.deps[target.id])}
            result = await self._execute(target, target_needed)

    def _model(self, step: StepDef) -> ModelEntry | None:
        return model_entry(step)

    async def _item(self, step: StepDef, model: ModelEntry | None, needed: Mapping[str, StepResult], item: Any,
                    index: int | None, *, name: str | None = None, source_video: OutputView | None = None,
                    position: int | None = None) -> dict[str, Any]:
        name = name or item_name(step.id, index)
        call = self._prepare(step, model, needed, item, index, source_video)
        key = _key({"kind": step.kind, "model": model.id if model else None, "position": position,
                    **call.material})
        found = store.find_done(key, run_id=self.run_id, any_run=not self.force)
        if found is not None and found.run_id == self.run_id and found.name == name:
            return found.outputs  # done before this flow run (resume, or a suspended run executed again)
        store.plan_step(self.run_id, name, kind=step.kind, pipeline_step=step.id,
                        fan_index=index if position is None else position, depends_on=sorted(self.deps[step.id]),
                        backend=model.backend if model else "local")
        if found is not None:
            outputs = {k: store.link_output(self.run_id, name, v) if isinstance(v, OutputView) else v
                       for k, v in found.outputs.items()}
            store.finish_step(self.run_id, name, key=key, outputs=outputs, facts=call.facts, reused_from=found)
            events.emit(self.run_id, "step", f"{name} reused from run {found.run_id} ({found.name}); no provider call",
                        step=name)
            return outputs
        token = PIPELINE_STEP.set(name)
        try:
            produced = await call.run(name)
            outputs: dict[str, Any] = {}
            for output_name, value in produced.items():
                if isinstance(value, ProviderOutput):
                    value = await cache_r2.with_options(task_run_name=f"{name}:cache_r2")(
                        self.run_id, value, STORAGE)
                outputs[output_name] = value
        finally:
            PIPELINE_STEP.reset(token)
        store.finish_step(self.run_id, name, key=key, outputs=outputs, facts=call.facts)
        return outputs

    async def _extend(self, step: StepDef, model: ModelEntry | None,
                      needed: Mapping[str, StepResult]) -> list[dict[str, Any]]:
        video = self._resolve(step.video, needed, field="video")
        clips: list[dict[str, Any]] = []
        for position in range(step.times or 1):
            name = item_name(step.id, position)
            frame = await self._last_frame(step, name, video)
            made = await self._item(step, model, needed, None, None, name=name, source_video=frame,
                                    position=position)
            clips.append(made)
            video = made["video"]
        return clips

    async def _last_frame(self, step: StepDef, name: str, video: OutputView) -> OutputView:
        from tasks.pipeline_steps import last_frame

        frame_name = f"{name}:last_frame"
        key = _key({"kind": "last_frame", "video": video.sha256})
        found = store.find_done(key, run_id=self.run_id, any_run=not self.force)
        if found is not None:
            return found.outputs["image"]
        store.plan_step(self.run_id, frame_name, kind="last_frame", pipeline_step=step.id, fan_index=None,
                        depends_on=[], backend="local")
        token = PIPELINE_STEP.set(name)  # the job records into ``<name>:last_frame``
        try:
            image = await last_frame.with_options(task_run_name=frame_name)(self.run_id, self._media(video))
            stored = await cache_r2.with_options(task_run_name=f"{frame_name}:cache_r2")(self.run_id, image, STORAGE)
        finally:
            PIPELINE_STEP.reset(token)
        store.finish_step(self.run_id, frame_name, key=key, outputs={"image": stored}, facts={})
        return stored

    def _media(self, output: OutputView) -> MediaRef:
        return _media_of(output, STORAGE)

    def _prepare(self, step: StepDef, model: ModelEntry | None, needed: Mapping[str, StepResult], item: Any,
                 index: int | None, source_video: OutputView | None) -> _Call:
        prompt = self._text(step.prompt, needed, item, index, field="prompt")
        negative = self._text(step.negative_prompt, needed, item, index, field="negative_prompt")
        params = {k: self._resolve(v, needed, item, index, field=f"params.{k}") for k, v in step.params.items()}
        image = source_video if source_video is not None else (
            self._resolve(step.image, needed, item, index, field="image") if step.image else None)
        videos: list[OutputView] = []
        for ref in step.videos or []:
            got = self._resolve(ref, needed, item, index, field="videos")
            videos.extend(got if isinstance(got, list) else [got])
        material: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "params": params,
                                    "image": _digest(image), "videos": _digest(videos)}
        video_in = self._resolve(step.video, needed, item, index, field="video") if (
            step.kind == "comfyui" and step.video) else None
        if video_in is not None:  # only then: the keys of every other step stay what they were
            material["video"] = _digest(video_in)
        seed = self._seed(step, model, params, material, index)
        material["seed"] = seed
        facts = {"seed": seed} if seed is not None else {}
        run_id = self.run_id
        if step.kind == "generate_image":
            assert model is not None
            image_params = self._image_params(step, model, prompt or "", params, seed or 0)

            async def run(name: str) -> dict[str, Any]:
                if model.backend == "local":
                    from tasks.pipeline_steps import generate_image_local as task
                else:
                    from tasks.generate_image import generate_image as task
                return {"image": await task.with_options(task_run_name=name)(run_id, model.id, image_params)}
            return _Call(material, facts, run)
        if step.kind == "edit_image":
            assert model is not None and isinstance(image, OutputView)
            edit_params = ImageParams(prompt=prompt or "", width=image.width or 1024, height=image.height or 768,
                                      seed=seed or 0)

            async def run(name: str) -> dict[str, Any]:
                from tasks.pipeline_steps import edit_image

                return {"image": await edit_image.with_options(task_run_name=name)(
                    run_id, model.id, model.backend, self._media(image), edit_params)}
            return _Call(material, facts, run)
        if step.kind == "enhance_prompt":
            assert model is not None

            async def run(name: str) -> dict[str, Any]:
                from tasks.pipeline_steps import enhance_prompt

                return {"text": await enhance_prompt.with_options(task_run_name=name)(
                    run_id, model.id, prompt or "", params.get("style"), seed)}
            return _Call(material, facts, run)
        if step.kind == "comfyui" and model is not None and model.kind != "i2v":
            return self._comfyui_media(step, model, image if model.input_kind == "image" else video_in, prompt,
                                       negative, material, facts, seed)
        if step.kind == "comfyui" and (model is None or not isinstance(image, OutputView)):
            raise PipelineDefinitionError(step.id, "image", "an image-to-video workflow needs an image (a reference)")
        if step.kind in ("image_to_video", "extend", "comfyui"):
            assert model is not None and isinstance(image, OutputView)
            spec = self._video_spec(step, model, prompt, negative, params, seed)

            async def run(name: str) -> dict[str, Any]:
                size = (image.width or 16, image.height or 9)
                return {"video": await run_i2v(_NamedI2v(name), run_id, model, self._media(image), spec, size,
                                               seed or 0)}
            return _Call(material, facts, run)
        if step.kind == "concat":
            if not videos:
                raise PipelineDefinitionError(step.id, "videos", "needs at least one video")
            crossfade = float(params.get("crossfade", 0.0))
            size = parse_size(str(params["resolution"])) if params.get("resolution") else None
            fps = float(params["fps"]) if params.get("fps") else None

            async def run(name: str) -> dict[str, Any]:
                from tasks.pipeline_steps import concat

                return {"video": await concat.with_options(task_run_name=name)(
                    run_id, [self._media(v) for v in videos], crossfade, size, fps)}
            return _Call(material, facts, run)
        raise PipelineDefinitionError(step.id, "kind", f"'{step.kind}' steps are not available in this build yet")

    def _comfyui_media(self, step: StepDef, model: ModelEntry, media: Any, prompt: str | None, negative: str | None,
                       material: dict[str, Any], facts: dict[str, Any], seed: int | None) -> _Call:
        """A workflow that is not image-to-video (an upscaler, an interpolator): its input uploaded as it is, its
        output (an image or a video) kept under its kind's name."""
        from reelflow.providers.comfyui import MediaParams

        field = model.input_kind
        if not isinstance(media, OutputView):
            raise PipelineDefinitionError(step.id, field, f"workflow '{model.id}' takes {_a(field)} (a reference)")
        media_params = MediaParams(prompt=prompt if model.inputs.prompt != "unused" else None,
                                   negative_prompt=negative if model.inputs.negative_prompt else None, seed=seed or 0)
        run_id, output = self.run_id, model.output_kind

        async def run(name: str) -> dict[str, Any]:
            from tasks.comfyui_step import comfyui_step

            return {output: await comfyui_step.with_options(task_run_name=name)(
                run_id, model.id, self._media(media), media_params)}
        return _Call(material, facts, run)

    def _seed(self, step: StepDef, model: ModelEntry | None, params: Mapping[str, Any], material: Mapping[str, Any],
              index: int | None) -> int | None:
        """The given seed (``+ i`` for variant i); none given: one derived from the step's inputs, so the same
        inputs make the same seed and a re-run reuses the render (a changed input renders anew)."""
        if model is None or ((model.kind == "i2v" or model.backend == "comfyui") and not model.inputs.seed):
            return None
        offset = index if step.variants is not None and index is not None else 0
        base = params.get("seed")
        if base is None:
            base = int(_key({"step": step.id, **{k: v for k, v in material.items() if k != "params"},
                             "params": {k: v for k, v in params.items() if k != "seed"}})[:8], 16)
        return (int(base) + offset) % (MAX_SEED + 1)

    def _video_spec(self, step: StepDef, model: ModelEntry, prompt: str | None, negative: str | None,
                    params: Mapping[str, Any], seed: int | None) -> PipelineSpec:
        """The step as a one-video spec, checked as ``reelflow run`` checks one."""
        allowed = {"duration", "frames", "fps", "resolution", "seed"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise PipelineDefinitionError(step.id, f"params.{unknown[0]}", "is not a video setting; allowed: "
                                          + ", ".join(sorted(allowed)))
        data = {"model": model.id, "image": "pipeline", "prompt": prompt or "", "negative_prompt": negative,
                **{k: params[k] for k in ("duration", "frames", "fps", "resolution") if k in params},
                "seed": seed if model.inputs.seed else None}
        try:
            spec = PipelineSpec.model_validate({k: v for k, v in data.items() if v is not None}, strict=False)
            check_spec(spec)
        except SpecError as exc:
            raise PipelineDefinitionError(step.id, f"params.{exc.field}" if exc.field in allowed else exc.field,
                                          exc.message) from None
        except ValueError as exc:
            raise PipelineDefinitionError(step.id, "params", str(exc)) from None
        return spec

    def _image_params(self, step: StepDef, model: ModelEntry, prompt: str, params: Mapping[str, Any],
                      seed: int) -> ImageParams:
        if not prompt.strip():
            raise PipelineDefinitionError(step.id, "prompt", "must not be empty")
        size = frame_size(model, params.get("resolution"), (16, 9)) or (1024, 768)
        return ImageParams(prompt=prompt, width=size[0], height=size[1], seed=seed)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


@dataclass
class _Call:
    material: dict[str, Any]
    facts: dict[str, Any]
    run: Callable[[str], Awaitable[dict[str, Any]]]


def run_cost(run_id: str) -> Decimal | None:
    """The run's cost: its completed steps' costs (reused steps cost nothing now); unknown when one is unknown."""
    priced = [s for s in store.pipeline_steps(run_id) if s["status"] == "completed" and ":cache_r2" not in s["name"]]
    return total_usd(s["cost_usd"] for s in priced)


async def execute(run: RunView, force: bool) -> RunView:
    facts = store.run_facts(run.run_id)
    definition = PipelineDefinition.model_validate(run.spec)
    run_id = run.run_id
    engine = Engine(run, definition, facts.inputs, force or facts.forced)
    async with executing(run_id, on_cancel=lambda why: store.close_open_steps(run_id, "cancelled", why)):
        await engine.run()
        if engine.stopped:
            store.close_open_steps(run_id, "cancelled", engine.stopped)
            repo.mark_run(run_id, "cancelled", error=engine.stopped)
        elif engine.failed:
            names = ", ".join(f"{k} ({v})" for k, v in engine.failed.items())
            repo.mark_run(run_id, "failed", error=f"step failed: {names}", cost_usd=run_cost(run_id))
        else:
            repo.mark_run(run_id, "completed", cost_usd=run_cost(run_id))
    return repo.get_run(run_id)


def _run_name() -> str:
    run_id = flow_run.parameters.get("run_id") or "new"
    found = repo.find_run(run_id)
    return f"{found.model if found else 'pipeline'}-{run_id[:12]}"


@flow(name="pipeline-run", flow_run_name=_run_name, log_prints=True)
async def pipeline_run(run_id: str, force: bool = False) -> dict[str, Any] | State:
    """Execute the recorded pipeline run ``run_id`` (``reelflow.runs.pipelines.record_pipeline_run``); steps done
    before (this run's, or with ``force`` unset any run's with the same step key) are reused, not redone."""
    run = repo.get_run(run_id)
    if run.status in ("completed", "cancelled"):
        return Cancelled(message=CANCELLED_NOTE) if run.status == "cancelled" else run.model_dump(mode="json")
    ended = await execute(run, force)
    if ended.status == "cancelled":
        return Cancelled(message=CANCELLED_NOTE)
    return ended.model_dump(mode="json")

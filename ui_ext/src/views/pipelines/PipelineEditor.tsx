// The pipeline builder: a palette of step kinds, the graph (connect an output to an input of the same type), the
// selected step's model and fields, the pipeline's inputs, and the definition's YAML beside it, editable both ways.
// Every change is checked by the server (POST /api/pipelines/check): its errors go on the node and field they name,
// its estimate on each node and in the total.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Connection, Edge } from "@xyflow/react";
import { describeError } from "../../api";
import { navigate } from "../../router";
import {
  pipelinesApi, type Checked, type Definition, type InputDef, type InputType, type Palette, type PaletteModel,
  type Problem, type StepDef, type StepKindInfo, type ValueType,
} from "./api";
import { Graph } from "./Graph";
import { edgesOf, fansOut, INPUT_VALUE, INPUTS_NODE, layout, mismatch, outputsOf } from "./graph";
import { RunForm } from "./RunForm";
import type { Port, StepNodeType } from "./StepNode";
import "./pipelines.css";

const REF_FIELDS = new Set(["for_each", "prompt", "negative_prompt", "image", "end_image", "video", "videos", "target"]);
const ID_PREFIX: Record<string, string> = {
  generate_image: "image", edit_image: "edit", enhance_prompt: "enhance", image_to_video: "clip", extend: "more",
  concat: "film", comfyui: "workflow", approve: "approve",
};
const BLANK: Definition = { name: "new-pipeline", inputs: { idea: { type: "text", default: "a lighthouse on a cliff at dusk" } }, steps: [] };
const MAX_SEED = 2 ** 32 - 1;
const FIELD_LABEL: Record<string, string> = { for_each: "Fan out over (for each)", image: "Image", end_image: "End image", video: "Video" };

function templateName(): string | null {
  return new URLSearchParams(window.location.hash.split("?")[1] ?? "").get("template");
}

function looksLikeDefinition(value: unknown): value is Definition {
  const d = value as Definition | null;
  return !!d && typeof d === "object" && Array.isArray(d.steps) && d.steps.every((s) => s && typeof s.id === "string" && typeof s.kind === "string");
}

function money(usd: string | null, count = 1): string {
  if (usd === null) return "price unknown";
  const n = Number(usd);
  return `${n === 0 ? "free" : `≈ $${n < 0.01 ? n.toFixed(4) : n.toFixed(2)}`}${count > 1 ? ` (${count} jobs)` : ""}`;
}

function withoutEmpty(step: StepDef): StepDef {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(step)) {
    if (value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) continue;
    if (key === "params" && value && typeof value === "object" && Object.keys(value).length === 0) continue;
    out[key] = value;
  }
  return out as unknown as StepDef;
}

interface Source { ref: string; label: string; type: ValueType; many: boolean; step: string | null }

function sourcesOf(definition: Definition, kinds: Record<string, StepKindInfo>, except: string): Source[] {
  const found: Source[] = Object.entries(definition.inputs ?? {}).map(([name, def]) => ({
    ref: `$inputs.${name}`, label: `input ${name}`, type: INPUT_VALUE[def.type], many: def.type === "texts", step: null,
  }));
  for (const step of definition.steps) {
    if (step.id === except) continue;
    for (const [name, type] of Object.entries(outputsOf(definition, step, kinds))) {
      found.push({ ref: `$${step.id}.${name}`, label: `${step.id}.${name}`, type, many: fansOut(definition, step), step: step.id });
    }
  }
  return found;
}

function modelLabel(model: PaletteModel): string {
  return `${model.name} (${model.id})${model.available ? "" : ` — needs setup: ${model.missing[0] ?? "unavailable"}`}`;
}

function FieldError({ id, problems }: { id: string; problems: Problem[] }) {
  if (!problems.length) return null;
  return <span id={id} className="field-error">{problems.map((p) => p.message).join("; ")}</span>;
}

// Another pipeline, or another template, is a new builder (not the state of the one before).
export function PipelineEditor({ pipelineId }: { pipelineId: string | null }) {
  return <Builder key={pipelineId ?? `new:${templateName() ?? ""}`} pipelineId={pipelineId} />;
}

function Builder({ pipelineId: routeId }: { pipelineId: string | null }) {
  const [palette, setPalette] = useState<Palette | null>(null);
  const [definition, setDefinition] = useState<Definition | null>(null);
  const [yamlText, setYamlText] = useState("");
  const [checked, setChecked] = useState<Checked | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [pipelineId, setPipelineId] = useState<string | null>(routeId);
  const [version, setVersion] = useState<number | null>(null);
  const [connectError, setConnectError] = useState("");
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  const timer = useRef<number | null>(null);
  const sequence = useRef(0);

  const kinds = useMemo(() => Object.fromEntries((palette?.kinds ?? []).map((k) => [k.kind, k])), [palette]);
  const models = useMemo(() => Object.fromEntries((palette?.models ?? []).map((m) => [m.id, m])), [palette]);

  const runCheck = useCallback((given: Definition | string, fromYaml: boolean) => {
    if (timer.current) window.clearTimeout(timer.current);
    const mine = ++sequence.current;
    timer.current = window.setTimeout(() => {
      pipelinesApi.check(given).then((result) => {
        if (mine !== sequence.current) return;
        setChecked(result);
        if (fromYaml) {
          if (looksLikeDefinition(result.definition)) setDefinition(result.definition);
        } else if (result.yaml !== null) setYamlText(result.yaml);
      }, (e) => setError(describeError(e)));
    }, fromYaml ? 400 : 150);
  }, []);

  const change = useCallback((next: Definition) => {
    setDefinition(next);
    setMessage("");
    runCheck(next, false);
  }, [runCheck]);
  const changeYaml = useCallback((text: string) => {
    setYamlText(text);
    setMessage("");
    runCheck(text, true);
  }, [runCheck]);

  useEffect(() => {
    document.title = `${routeId ? "Edit pipeline" : "New pipeline"} · reelflow`;
    let gone = false;
    pipelinesApi.palette().then(async (found) => {
      if (gone) return;
      setPalette(found);
      if (routeId) {
        const saved = await pipelinesApi.get(routeId);
        setVersion(saved.version);
        change(saved.definition);
        return;
      }
      const template = found.templates.find((t) => t.name === templateName());
      if (template) {
        setYamlText(template.yaml);
        const result = await pipelinesApi.check(template.yaml);
        setChecked(result);
        if (looksLikeDefinition(result.definition)) setDefinition(result.definition);
      } else change(BLANK);
    }).catch((e) => setError(describeError(e)));
    return () => { gone = true; };
  }, [routeId, change]);
  useEffect(() => () => { if (timer.current) window.clearTimeout(timer.current); }, []);

  const errorsOf = useCallback((step: string | null, field?: string) => (checked?.errors ?? []).filter(
    (e) => e.step === step && (field === undefined || e.field === field || e.field.startsWith(`${field}.`))), [checked]);

  const drawn = useMemo(() => {
    if (!definition || !palette) return null;
    const raw = edgesOf(definition);
    const edges: Edge[] = raw.map((e) => {
      if (e.targetHandle !== "target") return e;
      const source = definition.steps.find((s) => s.id === e.source);
      return { ...e, sourceHandle: source ? Object.keys(outputsOf(definition, source, kinds))[0] ?? "" : "" };
    });
    const positions = layout(definition, raw, (id) => {
      if (id === INPUTS_NODE) return 60 + Object.keys(definition.inputs ?? {}).length * 18;
      const step = definition.steps.find((s) => s.id === id);
      const ports = (kinds[step?.kind ?? ""]?.fields ?? []).filter((f) => REF_FIELDS.has(f.name)).length;
      const problems = (checked?.errors ?? []).filter((e) => e.step === id).length + (checked?.warnings ?? []).filter((w) => w.step === id).length;
      return 90 + ports * 18 + problems * 60;
    });
    const nodes: StepNodeType[] = [];
    const inputs = Object.entries(definition.inputs ?? {});
    if (inputs.length) {
      nodes.push({ id: INPUTS_NODE, type: "step", position: positions[INPUTS_NODE], ariaLabel: "Pipeline inputs",
        data: { title: "Inputs", subtitle: "given at run time", inputs: [],
          outputs: inputs.map(([name, def]) => ({ name, type: INPUT_VALUE[def.type] })),
          errors: (checked?.errors ?? []).filter((e) => e.step === null && e.field.startsWith("inputs")) } });
    }
    for (const step of definition.steps) {
      const info = kinds[step.kind];
      const ports: Port[] = (info?.fields ?? []).filter((f) => REF_FIELDS.has(f.name)).map((f) => ({
        name: f.name, type: f.name === "for_each" ? "list" : f.name === "target" ? "any" : f.type,
      }));
      const estimate = checked?.estimate?.steps.find((s) => s.step === step.id);
      nodes.push({
        id: step.id, type: "step", position: positions[step.id] ?? { x: 0, y: 0 },
        ariaLabel: `Step ${step.id} (${info?.label ?? step.kind})${errorsOf(step.id).length ? ", has errors" : ""}`,
        selected: selected === step.id,
        data: {
          title: step.id, subtitle: `${info?.label ?? step.kind}${step.model ? ` · ${step.model}` : ""}`,
          inputs: ports,
          outputs: Object.entries(outputsOf(definition, step, kinds)).map(([name, type]) => ({ name, type })),
          estimate: estimate ? money(estimate.usd, estimate.count) : undefined,
          errors: errorsOf(step.id),
          warnings: (checked?.warnings ?? []).filter((w) => w.step === step.id),
        },
      });
    }
    return { nodes, edges };
  }, [definition, palette, kinds, checked, selected, errorsOf]);

  const updateStep = (id: string, patch: Partial<StepDef>) => {
    if (!definition) return;
    change({ ...definition, steps: definition.steps.map((s) => (s.id === id ? withoutEmpty({ ...s, ...patch }) : s)) });
  };

  const addStep = (info: StepKindInfo) => {
    if (!definition) return;
    const prefix = ID_PREFIX[info.kind] ?? "step";
    let id = prefix;
    for (let n = 2; definition.steps.some((s) => s.id === id); n++) id = `${prefix}_${n}`;
    const model = info.models.find((m) => models[m]?.available) ?? info.models[0];
    const step: StepDef = info.kind === "approve"
      ? { id, kind: "approve", target: [...definition.steps].reverse().find((s) => s.kind !== "approve")?.id ?? "" }
      : { id, kind: info.kind, ...(model ? { model } : {}) };
    change({ ...definition, steps: [...definition.steps, withoutEmpty(step)] });
    setSelected(id);
  };

  const connect = (c: Connection) => {
    if (!definition || !c.source || !c.target || !c.targetHandle) return;
    const target = definition.steps.find((s) => s.id === c.target);
    if (!target) return;
    const field = c.targetHandle;
    let type: ValueType;
    let many = false;
    let ref: string;
    if (c.source === INPUTS_NODE) {
      const def = definition.inputs?.[c.sourceHandle ?? ""];
      if (!def) return;
      type = INPUT_VALUE[def.type];
      ref = `$inputs.${c.sourceHandle}`;
    } else {
      const source = definition.steps.find((s) => s.id === c.source);
      if (!source) return;
      type = outputsOf(definition, source, kinds)[c.sourceHandle ?? ""];
      many = fansOut(definition, source);
      ref = `$${source.id}.${c.sourceHandle}`;
      if (field === "target") {
        if (source.kind === "approve") {
          setConnectError(`Cannot connect ${source.id} to ${target.id}.target: an approval judges a step that makes something, not another approval`);
          return;
        }
        setConnectError("");
        updateStep(target.id, { target: source.id });
        return;
      }
    }
    const wanted = kinds[target.kind]?.fields.find((f) => f.name === field)?.type ?? null;
    const why = field === "target" ? "an approval judges a step, not a pipeline input" : mismatch(type, many, field, wanted);
    if (why) {
      setConnectError(`Cannot connect ${c.source === INPUTS_NODE ? "input " : ""}${c.source === INPUTS_NODE ? c.sourceHandle : `${c.source}.${c.sourceHandle}`} to ${target.id}.${field}: ${why}`);
      return;
    }
    setConnectError("");
    if (field === "videos") updateStep(target.id, { videos: [...new Set([...(target.videos ?? []), ref])] });
    else updateStep(target.id, { [field]: ref } as Partial<StepDef>);
  };

  const removeEdges = (gone: Edge[]) => {
    if (!definition) return;
    let steps = definition.steps;
    for (const edge of gone) {
      const ref = (edge.data as { ref?: string } | undefined)?.ref;
      steps = steps.map((s) => {
        if (s.id !== edge.target) return s;
        const field = edge.targetHandle as keyof StepDef;
        const value = s[field];
        if (Array.isArray(value)) return withoutEmpty({ ...s, [field]: value.filter((v) => v !== ref) });
        return withoutEmpty({ ...s, [field]: undefined });
      });
    }
    change({ ...definition, steps });
  };

  async function save() {
    if (!definition) return;
    setError("");
    setMessage("");
    try {
      const saved = await pipelinesApi.save(definition, pipelineId);
      setPipelineId(saved.pipeline_id);
      setVersion(saved.version);
      window.history.replaceState(null, "", `#/pipelines/${saved.pipeline_id}`);
      setMessage(`Saved “${saved.name}” as version ${saved.version}.${saved.warnings.length ? ` Warning: ${saved.warnings.map((w) => `${w.step}: ${w.message}`).join("; ")}` : ""}`);
    } catch (e) {
      setError(describeError(e));
    }
  }

  if (error && !palette) return <section className="panel"><h2>Pipeline builder</h2><p className="error" role="alert">{error}</p></section>;
  if (!palette || !definition || !drawn) return <section className="panel" aria-busy="true"><h2>Pipeline builder</h2><p className="muted">Loading the builder…</p></section>;

  const step = definition.steps.find((s) => s.id === selected) ?? null;
  const general = (checked?.errors ?? []).filter((e) => e.step === null && !e.field.startsWith("inputs"));
  const unknownSteps = (checked?.errors ?? []).filter((e) => e.step !== null && !definition.steps.some((s) => s.id === e.step));
  const total = checked?.estimate ? money(checked.estimate.total_usd) : null;

  return (
    <div className="builder">
      <section className="panel builder-head" aria-labelledby="builder-title">
        <h2 id="builder-title">{pipelineId ? "Edit pipeline" : "New pipeline"}</h2>
        <div className="fields">
          <div className="field">
            <label htmlFor="builder-name">Name</label>
            <input id="builder-name" value={definition.name} aria-describedby="builder-name-error"
              onChange={(e) => change({ ...definition, name: e.target.value })} />
            <FieldError id="builder-name-error" problems={general.filter((e) => e.field === "name")} />
          </div>
          <div className="field wide">
            <label htmlFor="builder-description">Description</label>
            <input id="builder-description" value={definition.description ?? ""}
              onChange={(e) => change({ ...definition, description: e.target.value || undefined })} />
          </div>
        </div>
        <p className="estimate-total" data-testid="estimate-total">
          {checked?.valid ? `Estimated total: ${total}${checked.estimate?.unknown.length ? ` (unknown: ${checked.estimate.unknown.join(", ")})` : ""}` : `${checked?.errors.length ?? 0} problem${checked?.errors.length === 1 ? "" : "s"} to fix before it can run`}
        </p>
        {general.filter((e) => e.field !== "name").concat(unknownSteps).map((e) => (
          <p key={`${e.step}:${e.field}:${e.message}`} className="error">{e.step ? `${e.step}.` : ""}{e.field}: {e.message}</p>
        ))}
        <div className="actions wrap">
          <button type="button" className="primary" onClick={save}>{pipelineId ? "Save new version" : "Save pipeline"}</button>
          {version !== null && <span className="muted">version {version}</span>}
          <button type="button" onClick={() => navigate("#/pipelines")}>Back to pipelines</button>
        </div>
        <p role="status">{message}</p>
        <p className="error" role="alert">{error}</p>
      </section>

      <div className="builder-main">
        <section className="panel palette" aria-labelledby="palette-title">
          <h3 id="palette-title">Add a step</h3>
          <ul>
            {palette.kinds.map((k) => (
              <li key={k.kind}>
                <button type="button" onClick={() => addStep(k)} aria-describedby={`kind-${k.kind}`}>Add {k.label}</button>
                <small id={`kind-${k.kind}`}>{k.description}</small>
              </li>
            ))}
          </ul>
        </section>
        <div className="builder-canvas">
          <Graph nodes={drawn.nodes} edges={drawn.edges} label="Pipeline graph" editable
            onNodeClick={(id) => setSelected(id)} onConnect={connect} onEdgesDelete={removeEdges} />
          <p className="error" role="alert" data-testid="connect-error">{connectError}</p>
        </div>
        <div className="builder-step">
        {step ? (
          <StepEditor key={step.id} definition={definition} step={step} kinds={kinds} models={models}
            errorsOf={errorsOf} onChange={(patch) => updateStep(step.id, patch)}
            onRename={(id) => { change(renameStep(definition, step.id, id)); setSelected(id); }}
            onDelete={() => { change({ ...definition, steps: definition.steps.filter((s) => s.id !== step.id) }); setSelected(null); }} />
        ) : (
          <section className="panel"><h3>Step</h3><p className="muted">Select a step in the graph (or add one) to set its model and fields.</p></section>
        )}
        </div>
      </div>

      <div className="builder-side">
        <InputsEditor definition={definition} types={palette.input_types} problems={(checked?.errors ?? []).filter((e) => e.step === null && e.field.startsWith("inputs"))}
          onChange={(inputs) => change({ ...definition, inputs })} />
        <section className="panel" aria-labelledby="yaml-title">
          <h3 id="yaml-title">Definition (YAML)</h3>
          <label htmlFor="builder-yaml" className="muted">Edit the YAML here or the graph: each follows the other.</label>
          <textarea id="builder-yaml" className="yaml" spellCheck={false} rows={18} value={yamlText} onChange={(e) => changeYaml(e.target.value)} />
        </section>
        {pipelineId && (
          <section className="panel" aria-labelledby="builder-run-title">
            <h3 id="builder-run-title">Run it</h3>
            <p className="muted">Runs the saved version{version !== null ? ` (${version})` : ""}; save first to run your changes.</p>
            <RunForm key={`${pipelineId}:${version}`} pipelineId={pipelineId} definition={definition} idPrefix="builder" />
          </section>
        )}
      </div>
    </div>
  );
}

function renameStep(definition: Definition, from: string, to: string): Definition {
  const swap = (text: string) => text.replace(new RegExp(`^\\$${from}(?=[.[])`), `$${to}`);
  const steps = definition.steps.map((s) => {
    const next: Record<string, unknown> = { ...s, id: s.id === from ? to : s.id };
    if (s.target === from) next.target = to;
    for (const field of REF_FIELDS) {
      const value = next[field];
      if (typeof value === "string") next[field] = swap(value);
      else if (Array.isArray(value)) next[field] = value.map((v) => (typeof v === "string" ? swap(v) : v));
    }
    return next as unknown as StepDef;
  });
  const outputs = definition.outputs ? Object.fromEntries(Object.entries(definition.outputs).map(([k, v]) => [k, swap(v)])) : undefined;
  return { ...definition, steps, ...(outputs ? { outputs } : {}) };
}

function StepEditor({ definition, step, kinds, models, errorsOf, onChange, onRename, onDelete }: {
  definition: Definition; step: StepDef; kinds: Record<string, StepKindInfo>; models: Record<string, PaletteModel>;
  errorsOf: (step: string | null, field?: string) => Problem[];
  onChange: (patch: Partial<StepDef>) => void; onRename: (id: string) => void; onDelete: () => void;
}) {
  const info = kinds[step.kind];
  const [id, setId] = useState(step.id);
  const model = step.model ? models[step.model] : undefined;
  const sources = sourcesOf(definition, kinds, step.id);
  const fieldId = (name: string) => `step-${step.id}-${name.replace(/\W/g, "-")}`;
  const described = (name: string) => (errorsOf(step.id, name).length ? `${fieldId(name)}-error` : undefined);
  const params = step.params ?? {};
  const setParam = (name: string, value: unknown) => {
    const next = { ...params };
    if (value === undefined || value === "" || Number.isNaN(value)) delete next[name];
    else next[name] = value;
    onChange({ params: next });
  };
  const numberParam = (name: string, label: string, min?: number, max?: number, step_ = 1) => (
    <div className="field" key={name}>
      <label htmlFor={fieldId(`params.${name}`)}>{label}</label>
      <input id={fieldId(`params.${name}`)} type="number" min={min} max={max} step={step_} value={params[name] === undefined ? "" : String(params[name])}
        aria-invalid={errorsOf(step.id, `params.${name}`).length > 0} aria-describedby={described(`params.${name}`)}
        onChange={(e) => setParam(name, e.target.value === "" ? undefined : Number(e.target.value))} />
      <FieldError id={`${fieldId(`params.${name}`)}-error`} problems={errorsOf(step.id, `params.${name}`)} />
    </div>
  );
  const inputs = model?.inputs;

  return (
    <section className="panel step-editor" aria-labelledby={`${fieldId("title")}`}>
      <h3 id={fieldId("title")}>Step {step.id} <span className="muted">({info?.label ?? step.kind})</span></h3>
      <div className="fields">
        <div className="field">
          <label htmlFor={fieldId("id")}>Step id</label>
          <input id={fieldId("id")} value={id} pattern="[a-z][a-z0-9_]{0,39}" aria-describedby={described("id")} onChange={(e) => setId(e.target.value)}
            onBlur={() => { if (id !== step.id && /^[a-z][a-z0-9_]{0,39}$/.test(id) && !definition.steps.some((s) => s.id === id)) onRename(id); else setId(step.id); }} />
          <FieldError id={`${fieldId("id")}-error`} problems={errorsOf(step.id, "id")} />
        </div>
        {info && info.models.length > 0 && (
          <div className="field wide">
            <label htmlFor={fieldId("model")}>Model</label>
            <select id={fieldId("model")} value={step.model ?? ""} aria-describedby={[described("model"), model && !model.available ? `${fieldId("model")}-warn` : ""].filter(Boolean).join(" ") || undefined}
              onChange={(e) => onChange({ model: e.target.value || undefined })}>
              <option value="">— choose a model —</option>
              {info.models.map((m) => models[m]).filter(Boolean).map((m) => <option key={m.id} value={m.id}>{modelLabel(m)}</option>)}
            </select>
            {model && !model.available && <span id={`${fieldId("model")}-warn`} className="warning">Needs setup: {model.missing.join("; ")}</span>}
            <FieldError id={`${fieldId("model")}-error`} problems={errorsOf(step.id, "model")} />
          </div>
        )}
        {step.kind === "approve" && (
          <>
            <div className="field">
              <label htmlFor={fieldId("target")}>Judges step</label>
              <select id={fieldId("target")} value={step.target ?? ""} aria-describedby={described("target")} onChange={(e) => onChange({ target: e.target.value })}>
                <option value="">— choose —</option>
                {definition.steps.filter((s) => s.kind !== "approve" && s.id !== step.id).map((s) => <option key={s.id}>{s.id}</option>)}
              </select>
              <FieldError id={`${fieldId("target")}-error`} problems={errorsOf(step.id, "target")} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("timeout")}>Timeout (seconds)</label>
              <input id={fieldId("timeout")} type="number" min={1} value={step.timeout ?? ""} aria-describedby={described("timeout")}
                onChange={(e) => onChange({ timeout: e.target.value === "" ? undefined : Number(e.target.value) })} />
              <FieldError id={`${fieldId("timeout")}-error`} problems={errorsOf(step.id, "timeout")} />
            </div>
            <div className="field">
              <label htmlFor={fieldId("on_timeout")}>When no answer comes</label>
              <select id={fieldId("on_timeout")} value={step.on_timeout ?? "cancel"} onChange={(e) => onChange({ on_timeout: e.target.value as "cancel" | "approve" })}>
                <option value="cancel">cancel the run</option>
                <option value="approve">approve</option>
              </select>
            </div>
          </>
        )}
        {(info?.fields ?? []).filter((f) => ["prompt", "negative_prompt"].includes(f.name)).map((f) => {
          const value = step[f.name as "prompt"];
          return (
            <div className="field wide" key={f.name}>
              <label htmlFor={fieldId(f.name)}>{f.name === "prompt" ? (step.kind === "edit_image" ? "Instruction" : "Prompt") : "Negative prompt"}{f.required ? "" : " (optional)"}</label>
              {Array.isArray(value) ? (
                <p id={fieldId(f.name)} className="muted">Built from parts: {value.join("")} (edit the parts in the YAML)</p>
              ) : (
                <input id={fieldId(f.name)} value={value ?? ""} aria-describedby={[described(f.name), `${fieldId(f.name)}-hint`].filter(Boolean).join(" ")}
                  onChange={(e) => onChange({ [f.name]: e.target.value || undefined } as Partial<StepDef>)} />
              )}
              <small id={`${fieldId(f.name)}-hint`}>Text, or a reference such as $inputs.idea.</small>
              <FieldError id={`${fieldId(f.name)}-error`} problems={errorsOf(step.id, f.name)} />
            </div>
          );
        })}
        {(info?.fields ?? []).filter((f) => ["image", "end_image", "video", "for_each"].includes(f.name)).map((f) => {
          const fits = sources.filter((s) => mismatch(s.type, s.many, f.name, f.type) === null);
          const current = step[f.name as "image"] ?? "";
          return (
            <div className="field" key={f.name}>
              <label htmlFor={fieldId(f.name)}>{FIELD_LABEL[f.name] ?? f.name}{f.required ? "" : " (optional)"}</label>
              <select id={fieldId(f.name)} value={current} aria-describedby={described(f.name)} onChange={(e) => onChange({ [f.name]: e.target.value || undefined } as Partial<StepDef>)}>
                <option value="">— none —</option>
                {current && !fits.some((s) => s.ref === current) && <option value={current}>{current}</option>}
                {fits.map((s) => <option key={s.ref} value={s.ref}>{s.label}</option>)}
              </select>
              <FieldError id={`${fieldId(f.name)}-error`} problems={errorsOf(step.id, f.name)} />
            </div>
          );
        })}
        {step.kind === "concat" && (
          <div className="field wide">
            <span className="label">Clips, in order</span>
            <ul className="clip-list">
              {(step.videos ?? []).map((v) => (
                <li key={v}>{v} <button type="button" aria-label={`Remove clip ${v}`} onClick={() => onChange({ videos: (step.videos ?? []).filter((x) => x !== v) })}>Remove</button></li>
              ))}
            </ul>
            <label htmlFor={fieldId("videos")}>Add a clip</label>
            <select id={fieldId("videos")} value="" aria-describedby={described("videos")} onChange={(e) => e.target.value && onChange({ videos: [...new Set([...(step.videos ?? []), e.target.value])] })}>
              <option value="">— choose —</option>
              {sources.filter((s) => s.type === "video").map((s) => <option key={s.ref} value={s.ref}>{s.label}</option>)}
            </select>
            <FieldError id={`${fieldId("videos")}-error`} problems={errorsOf(step.id, "videos")} />
          </div>
        )}
        {(info?.fields ?? []).some((f) => f.name === "variants") && (
          <div className="field">
            <label htmlFor={fieldId("variants")}>Variants (each its own seed)</label>
            <input id={fieldId("variants")} type="number" min={1} max={32} value={step.variants ?? ""} aria-describedby={described("variants")}
              onChange={(e) => onChange({ variants: e.target.value === "" ? undefined : Number(e.target.value) })} />
            <FieldError id={`${fieldId("variants")}-error`} problems={errorsOf(step.id, "variants")} />
          </div>
        )}
        {step.kind === "extend" && (
          <div className="field">
            <label htmlFor={fieldId("times")}>Clips to add</label>
            <input id={fieldId("times")} type="number" min={1} max={32} value={step.times ?? ""} aria-describedby={described("times")}
              onChange={(e) => onChange({ times: e.target.value === "" ? undefined : Number(e.target.value) })} />
            <FieldError id={`${fieldId("times")}-error`} problems={errorsOf(step.id, "times")} />
          </div>
        )}
      </div>
      {(info?.params.length ?? 0) > 0 && (
        <fieldset>
          <legend>Settings</legend>
          <div className="fields">
            {info.params.map((name) => {
              if (name === "duration") {
                if (inputs?.durations?.length) {
                  return (
                    <div className="field" key={name}>
                      <label htmlFor={fieldId("params.duration")}>Duration (s)</label>
                      <select id={fieldId("params.duration")} value={params.duration === undefined ? "" : String(params.duration)} aria-describedby={described("params.duration")}
                        onChange={(e) => setParam("duration", e.target.value === "" ? undefined : Number(e.target.value))}>
                        <option value="">default{inputs.default_duration ? ` (${inputs.default_duration})` : ""}</option>
                        {inputs.durations.map((d) => <option key={d} value={d}>{d}</option>)}
                      </select>
                      <FieldError id={`${fieldId("params.duration")}-error`} problems={errorsOf(step.id, "params.duration")} />
                    </div>
                  );
                }
                return numberParam(name, "Duration (s)", inputs?.duration_range?.[0], inputs?.duration_range?.[1], 0.5);
              }
              if (name === "frames") return numberParam(name, "Frames", 1);
              if (name === "fps") return numberParam(name, "Frames per second", inputs?.fps_range?.[0] ?? 1, inputs?.fps_range?.[1] ?? 120);
              if (name === "seed") return inputs && !inputs.seed && step.kind !== "concat" ? null : numberParam(name, "Seed", 0, MAX_SEED);
              if (name === "crossfade") return numberParam(name, "Crossfade (s)", 0, 10, 0.1);
              if (name === "audio") {
                return inputs?.audio ? (
                  <div className="field" key={name}>
                    <label><input type="checkbox" checked={Boolean(params.audio)} onChange={(e) => setParam("audio", e.target.checked || undefined)} /> Generate audio</label>
                  </div>
                ) : null;
              }
              if (name === "resolution" && inputs?.resolutions?.length) {
                return (
                  <div className="field" key={name}>
                    <label htmlFor={fieldId("params.resolution")}>Resolution</label>
                    <select id={fieldId("params.resolution")} value={String(params.resolution ?? "")} aria-describedby={described("params.resolution")}
                      onChange={(e) => setParam("resolution", e.target.value || undefined)}>
                      <option value="">default{inputs.default_resolution ? ` (${inputs.default_resolution})` : ""}</option>
                      {inputs.resolutions.map((r) => <option key={r}>{r}</option>)}
                    </select>
                    <FieldError id={`${fieldId("params.resolution")}-error`} problems={errorsOf(step.id, "params.resolution")} />
                  </div>
                );
              }
              return (
                <div className="field" key={name}>
                  <label htmlFor={fieldId(`params.${name}`)}>{name === "resolution" ? "Resolution (WIDTHxHEIGHT)" : name}</label>
                  <input id={fieldId(`params.${name}`)} value={params[name] === undefined ? "" : String(params[name])} aria-describedby={described(`params.${name}`)}
                    onChange={(e) => setParam(name, e.target.value || undefined)} />
                  <FieldError id={`${fieldId(`params.${name}`)}-error`} problems={errorsOf(step.id, `params.${name}`)} />
                </div>
              );
            })}
          </div>
          {Object.keys(params).filter((p) => !info.params.includes(p)).map((p) => (
            <p key={p} className="field-error">params.{p}: {errorsOf(step.id, `params.${p}`)[0]?.message ?? "not a setting of this step"}</p>
          ))}
        </fieldset>
      )}
      <div className="actions">
        <button type="button" onClick={onDelete}>Delete step {step.id}</button>
      </div>
    </section>
  );
}

function InputsEditor({ definition, types, problems, onChange }: {
  definition: Definition; types: InputType[]; problems: Problem[]; onChange: (inputs: Record<string, InputDef>) => void;
}) {
  const inputs = definition.inputs ?? {};
  const [name, setName] = useState("");
  const set = (key: string, def: InputDef) => onChange({ ...inputs, [key]: def });
  return (
    <section className="panel" aria-labelledby="inputs-title">
      <h3 id="inputs-title">Pipeline inputs</h3>
      {Object.entries(inputs).map(([key, def]) => {
        const id = `input-${key}`;
        const mine = problems.filter((p) => p.field === `inputs.${key}` || p.field.startsWith(`inputs.${key}.`));
        return (
          <fieldset key={key}>
            <legend>{key}</legend>
            <div className="fields">
              <div className="field">
                <label htmlFor={`${id}-type`}>Type</label>
                <select id={`${id}-type`} value={def.type} onChange={(e) => set(key, { type: e.target.value as InputType, ...(e.target.value === "choice" ? { choices: ["a", "b"] } : {}) })}>
                  {types.map((t) => <option key={t}>{t}</option>)}
                </select>
              </div>
              {def.type !== "image" && (
                <div className="field wide">
                  <label htmlFor={`${id}-default`}>Default{def.type === "texts" ? " (items separated by |)" : ""}</label>
                  <input id={`${id}-default`} value={def.default === undefined || def.default === null ? "" : Array.isArray(def.default) ? def.default.join("|") : String(def.default)}
                    onChange={(e) => {
                      const text = e.target.value;
                      const value = text === "" ? undefined : def.type === "number" ? Number(text) : def.type === "texts" ? text.split("|") : text;
                      const { default: _, ...rest } = def;
                      set(key, value === undefined ? rest : { ...rest, default: value });
                    }} />
                </div>
              )}
              {def.type === "choice" && (
                <div className="field wide">
                  <label htmlFor={`${id}-choices`}>Choices (separated by |)</label>
                  <input id={`${id}-choices`} value={(def.choices ?? []).join("|")} onChange={(e) => set(key, { ...def, choices: e.target.value.split("|") })} />
                </div>
              )}
              {def.type === "number" && (
                <>
                  <div className="field"><label htmlFor={`${id}-min`}>Min</label><input id={`${id}-min`} type="number" value={def.min ?? ""} onChange={(e) => set(key, { ...def, min: e.target.value === "" ? undefined : Number(e.target.value) })} /></div>
                  <div className="field"><label htmlFor={`${id}-max`}>Max</label><input id={`${id}-max`} type="number" value={def.max ?? ""} onChange={(e) => set(key, { ...def, max: e.target.value === "" ? undefined : Number(e.target.value) })} /></div>
                </>
              )}
            </div>
            {mine.map((p) => <p key={p.message} className="field-error">{p.field}: {p.message}</p>)}
            <button type="button" onClick={() => { const { [key]: _, ...rest } = inputs; onChange(rest); }}>Remove input {key}</button>
          </fieldset>
        );
      })}
      <form className="actions" onSubmit={(e) => { e.preventDefault(); if (name && !inputs[name]) { set(name, { type: "text" }); setName(""); } }}>
        <label htmlFor="new-input-name">New input</label>
        <input id="new-input-name" value={name} pattern="[a-z][a-z0-9_]{0,39}" placeholder="e.g. photo" onChange={(e) => setName(e.target.value)} />
        <button type="submit">Add input</button>
      </form>
    </section>
  );
}

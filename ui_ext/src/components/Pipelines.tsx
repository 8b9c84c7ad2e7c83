// Saved pipelines: an optional image-generation step, a video model and its settings; edit or reuse them.
import { useCallback, useEffect, useMemo, useState } from "react";
import { api, describeError } from "../api";
import { navigate } from "../router";
import type { Model, Pipeline, Spec } from "../types";
import { cleanSpec, SpecFields } from "./SpecFields";

const BLANK: Spec = { model: "local-kenburns" };

export function Pipelines() {
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [models, setModels] = useState<Model[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [spec, setSpec] = useState<Spec>(BLANK);
  const [imageStep, setImageStep] = useState(false);
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");

  const load = useCallback(() => {
    api.pipelines().then((page) => setPipelines(page.pipelines), (e) => setError(describeError(e)));
  }, []);
  useEffect(() => {
    load();
    api.models().then(setModels, (e) => setError(describeError(e)));
  }, [load]);

  const videoModels = models.filter((m) => m.kind === "i2v");
  const imageModels = models.filter((m) => m.kind === "t2i");
  const model = useMemo(() => models.find((m) => m.id === spec.model), [models, spec.model]);

  function edit(pipeline: Pipeline | null) {
    setEditing(pipeline?.pipeline_id ?? null);
    setName(pipeline?.name ?? "");
    setSpec(pipeline ? { ...pipeline.spec } : BLANK);
    setImageStep(Boolean(pipeline?.spec.image_prompt));
    setMessage("");
    setError("");
  }

  async function save(event: React.FormEvent) {
    event.preventDefault();
    setError("");
    const body = cleanSpec(imageStep ? spec : { ...spec, image_prompt: undefined, image_model: undefined }, model);
    try {
      const saved = await api.savePipeline(name, body, editing ?? undefined);
      setEditing(saved.pipeline_id);
      setMessage(`Saved “${saved.name}”.`);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  }

  async function remove(pipeline: Pipeline) {
    try {
      await api.deletePipeline(pipeline.pipeline_id);
      if (editing === pipeline.pipeline_id) edit(null);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <section className="panel" aria-labelledby="pipelines-title">
      <h2 id="pipelines-title">Pipelines</h2>
      <ul className="pipelines">
        {pipelines.map((p) => (
          <li key={p.pipeline_id}>
            <strong>{p.name}</strong> <span className="muted">{p.spec.image_prompt ? "image step → " : ""}{p.spec.model}</span>
            <button type="button" onClick={() => navigate(`#/new?pipeline=${p.pipeline_id}`)}>Use</button>
            <button type="button" onClick={() => edit(p)}>Edit</button>
            <button type="button" onClick={() => remove(p)} aria-label={`Delete pipeline ${p.name}`}>Delete</button>
          </li>
        ))}
      </ul>
      <form onSubmit={save} className="editor">
        <h3>{editing ? "Edit pipeline" : "New pipeline"}</h3>
        <div className="field wide">
          <label htmlFor="pipeline-name">Name</label>
          <input id="pipeline-name" required value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <fieldset>
          <legend>Start image</legend>
          <label>
            <input type="checkbox" checked={imageStep} onChange={(e) => setImageStep(e.target.checked)} /> Generate it from a prompt (image step)
          </label>
          {imageStep && (
            <div className="fields">
              <div className="field wide">
                <label htmlFor="pipeline-image-prompt">Image prompt</label>
                <input id="pipeline-image-prompt" value={spec.image_prompt ?? ""} onChange={(e) => setSpec({ ...spec, image_prompt: e.target.value })} />
              </div>
              <div className="field">
                <label htmlFor="pipeline-image-model">Image model</label>
                <select id="pipeline-image-model" value={spec.image_model ?? "flux-schnell"} onChange={(e) => setSpec({ ...spec, image_model: e.target.value })}>
                  {imageModels.map((m) => (
                    <option key={m.id} value={m.id}>{m.name}{m.available ? "" : " (unavailable)"}</option>
                  ))}
                </select>
              </div>
            </div>
          )}
        </fieldset>
        <div className="field">
          <label htmlFor="pipeline-model">Video model</label>
          <select id="pipeline-model" value={spec.model} onChange={(e) => setSpec({ ...spec, model: e.target.value })}>
            {videoModels.map((m) => (
              <option key={m.id} value={m.id}>{m.name}{m.available ? "" : " (unavailable)"}</option>
            ))}
          </select>
        </div>
        <SpecFields idPrefix="pipeline" model={model} spec={spec} onChange={setSpec} />
        <div className="actions">
          <button type="submit" className="primary">Save pipeline</button>
          {editing && <button type="button" onClick={() => edit(null)}>New pipeline</button>}
        </div>
        <p role="status">{message}</p>
        <p className="error" role="alert">{error}</p>
      </form>
    </section>
  );
}

// Make a video: choose a model (or a saved pipeline), give an image (upload or URL), set the spec, submit.
import { useEffect, useMemo, useState } from "react";
import { api, describeError } from "../api";
import { navigate } from "../router";
import type { Model, Pipeline, Spec } from "../types";
import { ModelCards } from "./ModelCards";
import { cleanSpec, SpecFields } from "./SpecFields";

type Source = "upload" | "url";

export function NewRun({ pipelineId }: { pipelineId?: string }) {
  const [models, setModels] = useState<Model[]>([]);
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [pipeline, setPipeline] = useState(pipelineId ?? "");
  const [spec, setSpec] = useState<Spec>({ model: "local-kenburns" });
  const [source, setSource] = useState<Source>("upload");
  const [file, setFile] = useState<File | null>(null);
  const [url, setUrl] = useState("");
  const [endFile, setEndFile] = useState<File | null>(null);
  const [endUrl, setEndUrl] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  useEffect(() => {
    api.pipelines().then((page) => setPipelines(page.pipelines), (e) => setError(describeError(e)));
  }, []);
  const chosen = pipelines.find((p) => p.pipeline_id === pipeline);
  useEffect(() => {
    if (chosen) setSpec({ ...chosen.spec });
  }, [chosen]);
  useEffect(() => {
    // Price estimates follow the duration and resolution being asked for.
    const timer = window.setTimeout(() => {
      api
        .models({ duration: spec.duration, resolution: spec.resolution, audio: spec.audio || undefined })
        .then((all) => setModels(all.filter((m) => m.kind === "i2v" || m.kind === "t2v")), (e) => setError(describeError(e)));
    }, 250);
    return () => window.clearTimeout(timer);
  }, [spec.duration, spec.resolution, spec.audio]);

  const model = useMemo(() => models.find((m) => m.id === spec.model), [models, spec.model]);
  const textOnly = model?.kind === "t2v";
  const generatesImage = Boolean(spec.image_prompt);
  const takesEnd = (model?.inputs.end_image ?? "unused") !== "unused";

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setError("");
    setBusy(true);
    try {
      let image: string | undefined;
      let endImage: string | undefined;
      if (!generatesImage && !textOnly) {
        if (source === "upload") {
          if (!file) throw new Error("choose an image file to upload");
          image = (await api.upload(file)).image;
        } else {
          image = url.trim() || undefined;
        }
      }
      if (takesEnd && !textOnly) {
        if (source === "upload") {
          endImage = endFile ? (await api.upload(endFile)).image : undefined;
        } else {
          endImage = endUrl.trim() || undefined;
        }
        if (!endImage && model?.inputs.end_image === "required") throw new Error("this model needs an end image (the last frame)");
      }
      const spec_ = cleanSpec(textOnly ? { ...spec, image_prompt: undefined } : spec, model);
      const body = { ...spec_, image, end_image: endImage, pipeline_id: pipeline || undefined };
      const run = await api.createRun(body);
      navigate(`#/runs/${run.run_id}`);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel" onSubmit={submit} aria-describedby="new-run-error">
      <h2>Make a video</h2>
      {pipelines.length > 0 && (
        <div className="field">
          <label htmlFor="pipeline">Start from a saved pipeline</label>
          <select id="pipeline" value={pipeline} onChange={(e) => setPipeline(e.target.value)}>
            <option value="">none</option>
            {pipelines.map((p) => (
              <option key={p.pipeline_id} value={p.pipeline_id}>{p.name}</option>
            ))}
          </select>
        </div>
      )}
      <ModelCards models={models} selected={spec.model ?? ""} onSelect={(id) => setSpec({ ...spec, model: id })} />
      {textOnly ? (
        <p className="hint">A text-to-video model: the video is made from the prompt alone, no image.</p>
      ) : generatesImage ? (
        <p className="hint">This pipeline generates its start image from: “{spec.image_prompt}”.</p>
      ) : (
        <fieldset className="source">
          <legend>Input image</legend>
          <label>
            <input type="radio" name="source" checked={source === "upload"} onChange={() => setSource("upload")} /> Upload a file
          </label>
          <label>
            <input type="radio" name="source" checked={source === "url"} onChange={() => setSource("url")} /> From a URL
          </label>
          {source === "upload" ? (
            <div className="field">
              <label htmlFor="image-file">Image file (PNG, JPEG or WebP)</label>
              <input id="image-file" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
            </div>
          ) : (
            <div className="field wide">
              <label htmlFor="image-url">Image URL</label>
              <input id="image-url" type="url" placeholder="https://…" value={url} onChange={(e) => setUrl(e.target.value)} />
            </div>
          )}
          {takesEnd &&
            (source === "upload" ? (
              <div className="field">
                <label htmlFor="end-image-file">End image (last frame){model?.inputs.end_image === "required" ? " (required)" : ""}</label>
                <input id="end-image-file" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => setEndFile(e.target.files?.[0] ?? null)} />
              </div>
            ) : (
              <div className="field wide">
                <label htmlFor="end-image-url">End image URL (last frame){model?.inputs.end_image === "required" ? " (required)" : ""}</label>
                <input id="end-image-url" type="url" placeholder="https://…" value={endUrl} onChange={(e) => setEndUrl(e.target.value)} />
              </div>
            ))}
        </fieldset>
      )}
      <SpecFields idPrefix="run" model={model} spec={spec} onChange={setSpec} />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !model?.available}>
          {busy ? "Starting…" : "Make video"}
        </button>
      </div>
      <p id="new-run-error" className="error" role="alert">{error}</p>
    </form>
  );
}

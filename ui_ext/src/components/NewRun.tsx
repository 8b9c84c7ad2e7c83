// Make a video: choose a model (or a saved pipeline), give an image (upload, drop, paste or URL), set the spec,
// see the price, submit. `from` (#/new?from=<run id>) fills the form from that run with a new random seed.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError } from "../api";
import { usd } from "../format";
import { navigate } from "../router";
import type { Health, Model, Pipeline, Spec } from "../types";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { ErrorMessage } from "../ui/ErrorMessage";
import { Skeleton } from "../ui/Skeleton";
import { checkImage, IMAGE_TYPES, Preview, uploadOnce, useObjectUrl } from "./ImageInput";
import { ModelCards, nextStep } from "./ModelCards";
import { cleanSpec, SpecFields, validateSpec } from "./SpecFields";

type Source = "upload" | "url" | "kept";
type FieldErrors = Partial<Record<keyof Spec, string>>;

const BLANK: Spec = { model: "local-kenburns" };
// A paid run estimated above this (or of unknown price) is confirmed before it is submitted. The CLI's `reelflow
// run` asks no question (it has no threshold setting to share), so the panel keeps this one constant.
export const CONFIRM_ABOVE_USD = 1;
const SPEC_KEYS: (keyof Spec)[] = ["model", "image_prompt", "image_model", "audio", "prompt", "negative_prompt", "duration", "fps", "resolution"];

function newSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

function isFree(model: Model | undefined): boolean {
  return model?.price.estimate_usd === 0 || model?.price.unit === "free";
}

export function NewRun({ pipelineId, from }: { pipelineId?: string; from?: string }) {
  const [models, setModels] = useState<Model[] | null>(null);
  const [modelsError, setModelsError] = useState<unknown>(null);
  const [pricing, setPricing] = useState(0);
  const [health, setHealth] = useState<Health | null>(null);
  const [gpuRate, setGpuRate] = useState<number | undefined>(undefined);
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [pipeline, setPipeline] = useState(pipelineId ?? "");
  const [spec, setSpec] = useState<Spec>(BLANK);
  const [source, setSource] = useState<Source>("upload");
  const [file, setFile] = useState<File | null>(null);
  const [fileError, setFileError] = useState("");
  const [over, setOver] = useState(false);
  const [url, setUrl] = useState("");
  const [endFile, setEndFile] = useState<File | null>(null);
  const [endUrl, setEndUrl] = useState("");
  const [kept, setKept] = useState<{ image?: string; imageUrl?: string | null; endImage?: string; seed?: number; runId: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [confirming, setConfirming] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const preview = useObjectUrl(file);

  useEffect(() => {
    api.pipelines().then((page) => setPipelines(page.pipelines), () => undefined);
    api.health().then(setHealth, () => undefined);
    // GPU models are priced at the selected vast.ai instance's $/hour when it is known.
    api.gpuConfig().then(
      (config) => {
        if (config.gpu_provider === "vastai")
          api.instances().then((list) => setGpuRate(list.instances.find((i) => i.selected)?.dph_total ?? undefined), () => undefined);
      },
      () => undefined,
    );
  }, []);
  useEffect(() => {
    if (!from) return;
    api.run(from).then(
      (run) => {
        const copied: Spec = {};
        for (const key of SPEC_KEYS) if (run.spec[key] !== undefined && run.spec[key] !== null) Object.assign(copied, { [key]: run.spec[key] });
        setSpec({ ...copied, seed: newSeed() });
        setKept({ image: run.spec.image, imageUrl: run.input_url, endImage: run.spec.end_image, seed: run.spec.seed, runId: run.run_id });
        if (run.spec.image) setSource("kept");
      },
      (e) => setError(e),
    );
  }, [from]);
  const chosen = pipelines.find((p) => p.pipeline_id === pipeline);
  useEffect(() => {
    if (pipelineId && chosen) setSpec({ ...chosen.spec });
  }, [pipelineId, chosen]);

  const model = useMemo(() => models?.find((m) => m.id === spec.model), [models, spec.model]);
  const clientErrors = useMemo(() => validateSpec(spec, model), [spec, model]);
  // Only values the chosen model accepts are sent to be priced; the answer follows typing after a pause.
  const priceDuration = clientErrors.duration ? undefined : spec.duration;
  const priceResolution = clientErrors.resolution ? undefined : spec.resolution?.trim() || undefined;
  useEffect(() => {
    const timer = window.setTimeout(() => {
      api.models({ duration: priceDuration, resolution: priceResolution, audio: spec.audio || undefined, gpu_usd_per_hour: gpuRate }).then(
        (all) => {
          setModels(all);
          setModelsError(null);
        },
        (e) => setModelsError(e),
      );
    }, models === null ? 0 : 300);
    return () => window.clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [priceDuration, priceResolution, spec.audio, pricing, gpuRate]);

  const videoModels = useMemo(() => (models ?? []).filter((m) => m.kind === "i2v" || m.kind === "t2v"), [models]);
  const imageModel = spec.image_prompt ? models?.find((m) => m.id === (spec.image_model ?? "flux-schnell")) : undefined;
  const textOnly = model?.kind === "t2v";
  const generatesImage = Boolean(spec.image_prompt);
  const takesEnd = (model?.inputs.end_image ?? "unused") !== "unused";
  const errors: FieldErrors = { ...clientErrors, ...serverErrors };

  const choose = useCallback(
    async (picked: File | null) => {
      setFileError("");
      setServerErrors((current) => ({ ...current, image: undefined }));
      if (!picked) {
        setFile(null);
        return;
      }
      const problem = await checkImage(picked, health);
      if (problem) {
        setFile(null);
        setFileError(problem);
        if (fileInput.current) fileInput.current.value = "";
        return;
      }
      setSource("upload");
      setFile(picked);
    },
    [health],
  );
  useEffect(() => {
    // A pasted image (Ctrl+V anywhere on this view) is taken as the input image.
    const paste = (event: ClipboardEvent) => {
      const pasted = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
      if (pasted) {
        event.preventDefault();
        void choose(pasted);
      }
    };
    window.addEventListener("paste", paste);
    return () => window.removeEventListener("paste", paste);
  }, [choose]);

  function edit(next: Spec) {
    const changed = (Object.keys({ ...spec, ...next }) as (keyof Spec)[]).filter((k) => spec[k] !== next[k]);
    if (changed.length) setServerErrors((current) => Object.fromEntries(Object.entries(current).filter(([k]) => !changed.includes(k as keyof Spec))));
    setSpec(next);
  }

  function pickPipeline(id: string) {
    setPipeline(id);
    setServerErrors({});
    setError(null);
    const found = pipelines.find((p) => p.pipeline_id === id);
    setSpec(found ? { ...found.spec } : BLANK);
  }

  // Why "Make video" cannot be pressed, and what to do, said next to it.
  let blocked = "";
  if (models && !model) blocked = `The model “${spec.model}” is not in the catalog: choose one above.`;
  else if (model && !model.available)
    blocked = `${chosen ? `The pipeline “${chosen.name}” uses` : "The chosen model is"} ${model.name}, which cannot run here (missing: ${model.missing.join("; ")}). ${nextStep(model.missing)} Or choose an available model above.`;
  else if (imageModel && !imageModel.available)
    blocked = `The pipeline's image step uses ${imageModel.name}, which cannot run here (missing: ${imageModel.missing.join("; ")}). ${nextStep(imageModel.missing)}`;

  const estimate = model?.price.estimate_usd ?? null;
  const costLine = !model ? "" : isFree(model) ? "This run is free." : estimate !== null ? `This will cost ≈ ${usd(estimate)}${generatesImage ? " plus the image step" : ""}.` : `Price unknown beforehand: ${model.price.text}.`;

  async function start() {
    setConfirming(false);
    setError(null);
    setBusy(true);
    try {
      let image: string | undefined;
      let endImage: string | undefined;
      if (!generatesImage && !textOnly) {
        if (source === "kept") image = kept?.image;
        else if (source === "upload") {
          if (!file) {
            setFileError("Choose, drop or paste an image file (PNG, JPEG or WebP).");
            return;
          }
          image = (await uploadOnce(file)).image;
        } else image = url.trim() || undefined;
      }
      if (takesEnd && !textOnly) {
        if (source === "upload") endImage = endFile ? (await uploadOnce(endFile)).image : undefined;
        else if (source === "kept") endImage = kept?.endImage;
        else endImage = endUrl.trim() || undefined;
        if (!endImage && model?.inputs.end_image === "required") throw new ApiError(400, "this model needs an end image (the last frame)", "end_image");
      }
      const spec_ = cleanSpec(textOnly ? { ...spec, image_prompt: undefined } : spec, model);
      const run = await api.createRun({ ...spec_, image, end_image: endImage, pipeline_id: pipeline || undefined });
      navigate(`#/runs/${run.run_id}`);
    } catch (e) {
      if (e instanceof ApiError && e.field === "image") setFileError(e.message);
      else if (e instanceof ApiError && e.field && (e.field in spec || SPEC_KEYS.includes(e.field as keyof Spec))) setServerErrors({ [e.field]: e.message });
      else setError(e);
    } finally {
      setBusy(false);
    }
  }

  function submit(event: React.FormEvent) {
    event.preventDefault();
    const invalid = Object.keys(clientErrors)[0];
    if (invalid) {
      document.getElementById(`run-${invalid === "negative_prompt" ? "negative" : invalid}`)?.focus();
      return;
    }
    if (!isFree(model) && (estimate === null || estimate > CONFIRM_ABOVE_USD)) setConfirming(true);
    else void start();
  }

  return (
    <form
      className={`panel${over ? " over" : ""}`}
      onSubmit={submit}
      noValidate
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes("Files")) {
          e.preventDefault();
          setOver(true);
        }
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        const dropped = e.dataTransfer.files[0];
        if (dropped) {
          e.preventDefault();
          setOver(false);
          void choose(dropped);
        }
      }}
    >
      <h2>Make a video</h2>
      {kept && (
        <p className="hint">
          Tweaking run <a href={`#/runs/${kept.runId}`}>{kept.runId.slice(0, 8)}</a>: its settings, with a new random seed.
          {kept.seed !== undefined && kept.seed !== null && spec.seed !== kept.seed && (
            <>
              {" "}
              <button type="button" onClick={() => edit({ ...spec, seed: kept.seed })}>Use its seed ({kept.seed})</button>
            </>
          )}
        </p>
      )}
      {pipelines.length > 0 && (
        <div className="field">
          <label htmlFor="pipeline">Start from a saved pipeline</label>
          <select id="pipeline" value={pipeline} onChange={(e) => pickPipeline(e.target.value)}>
            <option value="">none</option>
            {pipelines.map((p) => (
              <option key={p.pipeline_id} value={p.pipeline_id}>{p.name}</option>
            ))}
          </select>
        </div>
      )}
      {models === null ? (
        modelsError ? <ErrorMessage error={modelsError} onRetry={() => setPricing((n) => n + 1)} /> : <Skeleton label="Loading the models…" lines={4} />
      ) : (
        <>
          <ModelCards models={videoModels} selected={spec.model ?? ""} onSelect={(id) => edit({ ...spec, model: id })} gpuRate={gpuRate} />
          {modelsError !== null && <ErrorMessage error={modelsError} onRetry={() => setPricing((n) => n + 1)} />}
        </>
      )}
      {textOnly ? (
        <p className="hint">A text-to-video model: the video is made from the prompt alone, no image.</p>
      ) : generatesImage ? (
        <p className="hint">This pipeline generates its start image from: “{spec.image_prompt}”.</p>
      ) : (
        <fieldset className={`source dropzone${over ? " over" : ""}`}>
          <legend>Input image</legend>
          {kept?.image && (
            <label>
              <input type="radio" name="source" checked={source === "kept"} onChange={() => setSource("kept")} /> The image of run {kept.runId.slice(0, 8)}
            </label>
          )}
          <label>
            <input type="radio" name="source" checked={source === "upload"} onChange={() => setSource("upload")} /> Upload a file
          </label>
          <label>
            <input type="radio" name="source" checked={source === "url"} onChange={() => setSource("url")} /> From a URL
          </label>
          {source === "kept" && kept?.imageUrl && <Preview src={kept.imageUrl} resolution={spec.resolution} label={`the input image of run ${kept.runId.slice(0, 8)}`} />}
          {source === "upload" && (
            <div className="field">
              <label htmlFor="image-file">Image file (PNG, JPEG or WebP)</label>
              <input
                id="image-file"
                ref={fileInput}
                type="file"
                accept={IMAGE_TYPES.join(",")}
                aria-describedby={`image-file-hint${fileError ? " image-file-error" : ""}`}
                aria-invalid={fileError ? true : undefined}
                onChange={(e) => void choose(e.target.files?.[0] ?? null)}
              />
              <small id="image-file-hint">…or drop an image anywhere on this form, or paste one (Ctrl+V).</small>
              {fileError && <span id="image-file-error" className="field-error">{fileError}</span>}
              {preview && file && <Preview src={preview} resolution={spec.resolution} label={`preview of ${file.name}`} />}
            </div>
          )}
          {source === "url" && (
            <div className="field wide">
              <label htmlFor="image-url">Image URL</label>
              <input id="image-url" type="url" placeholder="https://…" value={url} aria-describedby={fileError ? "image-url-error" : undefined}
                onChange={(e) => { setUrl(e.target.value); setFileError(""); }} />
              {fileError && <span id="image-url-error" className="field-error">{fileError}</span>}
            </div>
          )}
          {takesEnd &&
            (source === "upload" ? (
              <div className="field">
                <label htmlFor="end-image-file">End image (last frame){model?.inputs.end_image === "required" ? " (required)" : ""}</label>
                <input id="end-image-file" type="file" accept={IMAGE_TYPES.join(",")} onChange={(e) => setEndFile(e.target.files?.[0] ?? null)} />
              </div>
            ) : source === "url" ? (
              <div className="field wide">
                <label htmlFor="end-image-url">End image URL (last frame){model?.inputs.end_image === "required" ? " (required)" : ""}</label>
                <input id="end-image-url" type="url" placeholder="https://…" value={endUrl} onChange={(e) => setEndUrl(e.target.value)} />
              </div>
            ) : null)}
        </fieldset>
      )}
      <SpecFields idPrefix="run" model={model} spec={spec} onChange={edit} errors={errors} />
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !model?.available || Boolean(blocked)} aria-describedby="make-video-about">
          {busy ? "Starting…" : "Make video"}
        </button>
        <span id="make-video-about">
          {blocked ? <span className="blocked">{blocked}</span> : <span role="status">{costLine}</span>}
        </span>
      </div>
      <ErrorMessage error={error} />
      <ConfirmDialog
        open={confirming}
        title="Start a paid run?"
        confirmLabel={estimate !== null ? `Pay ≈ ${usd(estimate)} and start` : "Start anyway"}
        onConfirm={() => void start()}
        onCancel={() => setConfirming(false)}
      >
        <p>{costLine}</p>
        <p className="muted">{model?.name}, charged by {model?.backend} to your account.</p>
      </ConfirmDialog>
    </form>
  );
}

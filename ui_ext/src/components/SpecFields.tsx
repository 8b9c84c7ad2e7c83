// Fields of a video spec that depend on the model: prompt, negative prompt, duration, fps, resolution, audio, seed.
// `validateSpec` checks them against the catalog's ranges in the browser, so nothing invalid is sent to be priced;
// `errors` (by field) are shown under their field and tied to it with aria-describedby.
import { usd } from "../format";
import type { Model, Spec } from "../types";

interface Props {
  idPrefix: string;
  model: Model | undefined;
  spec: Spec;
  onChange: (spec: Spec) => void;
  errors?: Partial<Record<keyof Spec, string>>;
}

const PRESETS = ["480p", "720p", "1080p"];

function numberOrUndefined(text: string): number | undefined {
  return text.trim() === "" ? undefined : Number(text);
}

function inRange(value: number, range: [number, number] | undefined): boolean {
  return !range || (value >= range[0] && value <= range[1]);
}

/** What is wrong with each field for this model (empty: nothing), from the catalog's ranges and choices. */
export function validateSpec(spec: Spec, model: Model | undefined): Partial<Record<keyof Spec, string>> {
  const inputs = model?.inputs ?? {};
  const errors: Partial<Record<keyof Spec, string>> = {};
  if (spec.duration !== undefined) {
    const range = inputs.duration_range;
    if (inputs.durations && !inputs.durations.includes(spec.duration)) errors.duration = `Duration must be one of ${inputs.durations.join(", ")} s.`;
    else if (range && !(spec.duration >= range[0] && spec.duration <= range[1])) errors.duration = `Duration must be between ${range[0]} and ${range[1]} s for ${model?.name}.`;
    else if (!Number.isFinite(spec.duration) || spec.duration <= 0) errors.duration = "Duration must be a number of seconds above 0.";
  }
  if (spec.fps !== undefined && inputs.fps_range) {
    const [low, high] = inputs.fps_range;
    if (!Number.isInteger(spec.fps) || spec.fps < low || spec.fps > high) errors.fps = `Frames per second must be a whole number from ${low} to ${high}.`;
  }
  if (spec.resolution) {
    const text = spec.resolution.trim();
    if (inputs.resolutions) {
      if (!inputs.resolutions.includes(text)) errors.resolution = `Resolution must be one of ${inputs.resolutions.join(", ")}.`;
    } else if (!PRESETS.includes(text)) {
      const size = /^(\d+)x(\d+)$/.exec(text);
      const [wLow, wHigh] = inputs.width_range ?? [1, 100_000];
      const [hLow, hHigh] = inputs.height_range ?? inputs.width_range ?? [1, 100_000];
      if (!size) errors.resolution = `Resolution must be ${PRESETS.join(", ")} or WIDTHxHEIGHT (e.g. 640x360).`;
      else if (!inRange(Number(size[1]), [wLow, wHigh]) || !inRange(Number(size[2]), [hLow, hHigh]))
        errors.resolution = `Width must be ${wLow}–${wHigh} and height ${hLow}–${hHigh} pixels.`;
      else if (inputs.size_multiple && inputs.size_multiple > 1 && (Number(size[1]) % inputs.size_multiple || Number(size[2]) % inputs.size_multiple))
        errors.resolution = `Width and height must be multiples of ${inputs.size_multiple}.`;
    }
  }
  if (spec.seed !== undefined && (!Number.isInteger(spec.seed) || spec.seed < 0)) errors.seed = "Seed must be a whole number, 0 or more.";
  if (inputs.prompt_max_chars && (spec.prompt?.length ?? 0) > inputs.prompt_max_chars)
    errors.prompt = `Prompt must be at most ${inputs.prompt_max_chars} characters (it has ${spec.prompt!.length}).`;
  return errors;
}

export function SpecFields({ idPrefix, model, spec, onChange, errors = {} }: Props) {
  const inputs = model?.inputs ?? {};
  const set = (change: Partial<Spec>) => onChange({ ...spec, ...change });
  const id = (name: string) => `${idPrefix}-${name}`;
  // The error's id joins the field's description, and aria-invalid marks it, only while there is an error.
  const described = (name: keyof Spec, hint?: string) => {
    const ids = [hint, errors[name] ? id(`${name}-error`) : undefined].filter(Boolean).join(" ");
    return { "aria-describedby": ids || undefined, "aria-invalid": errors[name] ? true : undefined };
  };
  const problem = (name: keyof Spec) =>
    errors[name] ? <span id={id(`${name}-error`)} className="field-error">{errors[name]}</span> : null;
  return (
    <div className="fields">
      <div className="field wide">
        <label htmlFor={id("prompt")}>Prompt{inputs.prompt === "required" ? " (required)" : ""}</label>
        <textarea id={id("prompt")} rows={3} value={spec.prompt ?? ""} onChange={(e) => set({ prompt: e.target.value })} {...described("prompt")} />
        {problem("prompt")}
      </div>
      {inputs.negative_prompt && (
        <div className="field wide">
          <label htmlFor={id("negative")}>Negative prompt</label>
          <input id={id("negative")} value={spec.negative_prompt ?? ""} onChange={(e) => set({ negative_prompt: e.target.value || undefined })} {...described("negative_prompt")} />
          {problem("negative_prompt")}
        </div>
      )}
      <div className="field">
        <label htmlFor={id("duration")}>Duration (s)</label>
        {inputs.durations ? (
          <select id={id("duration")} value={spec.duration ?? inputs.default_duration ?? ""} onChange={(e) => set({ duration: Number(e.target.value) })} {...described("duration")}>
            {inputs.durations.map((d) => (
              <option key={d} value={d}>{d}</option>
            ))}
          </select>
        ) : (
          <input
            id={id("duration")}
            type="number"
            inputMode="decimal"
            step="0.5"
            min={inputs.duration_range?.[0]}
            max={inputs.duration_range?.[1]}
            placeholder={String(inputs.default_duration ?? "")}
            value={spec.duration ?? ""}
            onChange={(e) => set({ duration: numberOrUndefined(e.target.value) })}
            {...described("duration", inputs.duration_range ? id("duration-hint") : undefined)}
          />
        )}
        {inputs.duration_range && !inputs.durations && (
          <small id={id("duration-hint")}>{inputs.duration_range[0]}–{inputs.duration_range[1]} s</small>
        )}
        {problem("duration")}
      </div>
      {inputs.fps_range && (
        <div className="field">
          <label htmlFor={id("fps")}>Frames per second</label>
          <input
            id={id("fps")}
            type="number"
            inputMode="numeric"
            min={inputs.fps_range[0]}
            max={inputs.fps_range[1]}
            placeholder={String(inputs.default_fps ?? "")}
            value={spec.fps ?? ""}
            onChange={(e) => set({ fps: numberOrUndefined(e.target.value) })}
            {...described("fps")}
          />
          {problem("fps")}
        </div>
      )}
      <div className="field">
        <label htmlFor={id("resolution")}>Resolution</label>
        {inputs.resolutions ? (
          <select id={id("resolution")} value={spec.resolution ?? ""} onChange={(e) => set({ resolution: e.target.value || undefined })} {...described("resolution")}>
            <option value="">default ({inputs.default_resolution})</option>
            {inputs.resolutions.map((r) => (
              <option key={r} value={r}>{r}</option>
            ))}
          </select>
        ) : (
          <>
            <input
              id={id("resolution")}
              list={id("resolutions")}
              placeholder={inputs.default_resolution ?? "480p"}
              value={spec.resolution ?? ""}
              onChange={(e) => set({ resolution: e.target.value || undefined })}
              disabled={!inputs.width_range}
              {...described("resolution")}
            />
            <datalist id={id("resolutions")}>
              {PRESETS.map((r) => (
                <option key={r} value={r} />
              ))}
            </datalist>
          </>
        )}
        {problem("resolution")}
      </div>
      {inputs.audio && (
        <div className="field">
          <label htmlFor={id("audio")}>
            <input id={id("audio")} type="checkbox" checked={Boolean(spec.audio)} onChange={(e) => set({ audio: e.target.checked || undefined })} />{" "}
            Generated audio{model && model.price.estimate_usd !== null ? ` (this video ≈ ${usd(model.price.estimate_usd)} ${spec.audio ? "with" : "without"} it)` : ""}
          </label>
        </div>
      )}
      {inputs.seed && (
        <div className="field">
          <label htmlFor={id("seed")}>Seed</label>
          <input id={id("seed")} type="number" inputMode="numeric" min={0} placeholder="random" value={spec.seed ?? ""} onChange={(e) => set({ seed: numberOrUndefined(e.target.value) })} {...described("seed")} />
          {problem("seed")}
        </div>
      )}
    </div>
  );
}

/** Only the fields the model takes, with empty values left out. */
export function cleanSpec(spec: Spec, model: Model | undefined): Spec {
  const inputs = model?.inputs ?? {};
  const out: Spec = { ...spec };
  if (!inputs.negative_prompt) delete out.negative_prompt;
  if (!inputs.fps_range) delete out.fps;
  if (!inputs.seed) delete out.seed;
  if (!inputs.audio) delete out.audio;
  if ((inputs.end_image ?? "unused") === "unused") delete out.end_image;
  for (const key of Object.keys(out) as (keyof Spec)[]) {
    const value = out[key];
    if (value === undefined || value === "" || (typeof value === "number" && Number.isNaN(value))) delete out[key];
  }
  return out;
}

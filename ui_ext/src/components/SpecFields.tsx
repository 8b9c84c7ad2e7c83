// Fields of a video spec that depend on the model: prompt, negative prompt, duration, fps, resolution, audio, seed.
import { usd } from "../format";
import type { Model, Spec } from "../types";

interface Props {
  idPrefix: string;
  model: Model | undefined;
  spec: Spec;
  onChange: (spec: Spec) => void;
}

const PRESETS = ["480p", "720p", "1080p"];

function numberOrUndefined(text: string): number | undefined {
  return text.trim() === "" ? undefined : Number(text);
}

export function SpecFields({ idPrefix, model, spec, onChange }: Props) {
  const inputs = model?.inputs ?? {};
  const set = (change: Partial<Spec>) => onChange({ ...spec, ...change });
  const id = (name: string) => `${idPrefix}-${name}`;
  return (
    <div className="fields">
      <div className="field wide">
        <label htmlFor={id("prompt")}>Prompt{inputs.prompt === "required" ? " (required)" : ""}</label>
        <textarea id={id("prompt")} rows={3} value={spec.prompt ?? ""} onChange={(e) => set({ prompt: e.target.value })} />
      </div>
      {inputs.negative_prompt && (
        <div className="field wide">
          <label htmlFor={id("negative")}>Negative prompt</label>
          <input id={id("negative")} value={spec.negative_prompt ?? ""} onChange={(e) => set({ negative_prompt: e.target.value || undefined })} />
        </div>
      )}
      <div className="field">
        <label htmlFor={id("duration")}>Duration (s)</label>
        {inputs.durations ? (
          <select id={id("duration")} value={spec.duration ?? inputs.default_duration ?? ""} onChange={(e) => set({ duration: Number(e.target.value) })}>
            {inputs.durations.map((d) => (
              <option key={d} value={d}>{d}</option>
            ))}
          </select>
        ) : (
          <input
            id={id("duration")}
            type="number"
            step="0.5"
            min={inputs.duration_range?.[0]}
            max={inputs.duration_range?.[1]}
            placeholder={String(inputs.default_duration ?? "")}
            value={spec.duration ?? ""}
            onChange={(e) => set({ duration: numberOrUndefined(e.target.value) })}
          />
        )}
      </div>
      {inputs.fps_range && (
        <div className="field">
          <label htmlFor={id("fps")}>Frames per second</label>
          <input
            id={id("fps")}
            type="number"
            min={inputs.fps_range[0]}
            max={inputs.fps_range[1]}
            placeholder={String(inputs.default_fps ?? "")}
            value={spec.fps ?? ""}
            onChange={(e) => set({ fps: numberOrUndefined(e.target.value) })}
          />
        </div>
      )}
      <div className="field">
        <label htmlFor={id("resolution")}>Resolution</label>
        {inputs.resolutions ? (
          <select id={id("resolution")} value={spec.resolution ?? ""} onChange={(e) => set({ resolution: e.target.value || undefined })}>
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
            />
            <datalist id={id("resolutions")}>
              {PRESETS.map((r) => (
                <option key={r} value={r} />
              ))}
            </datalist>
          </>
        )}
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
          <input id={id("seed")} type="number" min={0} placeholder="random" value={spec.seed ?? ""} onChange={(e) => set({ seed: numberOrUndefined(e.target.value) })} />
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

// The video models as cards, grouped by kind and backend: price estimate (with audio when asked), speed hint,
// the inputs a model takes beyond an image (last frame, audio). Models that cannot run here are collapsed under
// "Needs setup", still reachable by keyboard, each saying what is missing. Each card's radio is the control: its
// name is the model's name, the rest of the card its description.
import { usd } from "../format";
import type { Model } from "../types";

interface Props {
  models: Model[];
  selected: string;
  onSelect: (id: string) => void;
  gpuRate?: number;
}

const KINDS: Record<string, string> = { i2v: "Image to video", t2v: "Text to video" };

function groups(models: Model[]): [string, Model[]][] {
  const found = new Map<string, Model[]>();
  for (const model of models) {
    const key = `${KINDS[model.kind] ?? model.kind} · ${model.backend}`;
    found.set(key, [...(found.get(key) ?? []), model]);
  }
  return [...found.entries()];
}

/** What a missing requirement means and what to do about it, in plain words. */
export function nextStep(missing: string[]): string {
  const text = missing.join("; ");
  if (/FAL_KEY/i.test(text)) return "Set FAL_KEY (your fal.ai key) where `reelflow serve` runs, then reload.";
  if (/comfy|swarm|gpu|vast/i.test(text)) return "Open GPU settings to connect a GPU.";
  return "See `reelflow models` for how to set it up.";
}

function Card({ model, selected, onSelect, gpuRate }: { model: Model; selected: boolean; onSelect: (id: string) => void; gpuRate?: number }) {
  const id = `model-${model.id}`;
  return (
    <label className={`card${selected ? " selected" : ""}${model.available ? "" : " unavailable"}`} htmlFor={id}>
      <input
        id={id}
        type="radio"
        name="model"
        value={model.id}
        checked={selected}
        aria-disabled={!model.available || undefined}
        aria-labelledby={`${id}-name`}
        aria-describedby={`${id}-about`}
        onChange={() => model.available && onSelect(model.id)}
      />
      <span id={`${id}-name`} className="card-title">{model.name}</span>
      <span id={`${id}-about`} className="card-about">
        <span className="card-meta">
          <span className="badge">{model.backend}</span>
          {!model.ai && <span className="badge">not AI</span>}
          {model.inputs.end_image === "required" && <span className="badge">first + last frame</span>}
          {model.inputs.end_image === "optional" && <span className="badge">last frame optional</span>}
          {model.inputs.audio && <span className="badge">audio on request</span>}
        </span>{" "}
        <span className="card-price" title={model.price.source ?? undefined}>
          {model.price.estimate_usd !== null
            ? `≈ ${usd(model.price.estimate_usd)} for this video`
            : model.price.unit === "gpu_hour" && gpuRate !== undefined
              ? `GPU time × ${usd(gpuRate)}/hour (your selected instance)`
              : model.price.text}
          {model.price.confirmed === false && " (unconfirmed)"}
        </span>{" "}
        <span className="card-speed">{model.speed_hint}</span>{" "}
        {model.available && model.unchecked.length > 0 ? (
          <span className="card-unchecked">not checked: {model.unchecked.join("; ")}</span>
        ) : model.available ? (
          <span className="card-ok">available</span>
        ) : (
          <span className="card-missing">
            unavailable, missing: {model.missing.join("; ")}. {nextStep(model.missing)}
          </span>
        )}
      </span>
    </label>
  );
}

export function ModelCards({ models, selected, onSelect, gpuRate }: Props) {
  const ready = models.filter((m) => m.available);
  const blocked = models.filter((m) => !m.available);
  const selectedBlocked = blocked.some((m) => m.id === selected);
  return (
    <fieldset className="cards">
      <legend>Video model</legend>
      {groups(ready).map(([title, members]) => (
        <div key={title} className="card-group" role="group" aria-label={title}>
          <h3 className="card-group-title">{title}</h3>
          {members.map((model) => (
            <Card key={model.id} model={model} selected={model.id === selected} onSelect={onSelect} gpuRate={gpuRate} />
          ))}
        </div>
      ))}
      {blocked.length > 0 && (
        <details className="needs-setup" open={selectedBlocked || ready.length === 0}>
          <summary>Needs setup ({blocked.length} models)</summary>
          {groups(blocked).map(([title, members]) => (
            <div key={title} className="card-group" role="group" aria-label={title}>
              <h3 className="card-group-title">{title}</h3>
              {members.map((model) => (
                <Card key={model.id} model={model} selected={model.id === selected} onSelect={onSelect} gpuRate={gpuRate} />
              ))}
            </div>
          ))}
        </details>
      )}
    </fieldset>
  );
}

// The video models as cards, grouped by kind and backend: price estimate (with audio when asked), speed hint,
// the inputs a model takes beyond an image (last frame, audio), and what is missing when unavailable.
import { usd } from "../format";
import type { Model } from "../types";

interface Props {
  models: Model[];
  selected: string;
  onSelect: (id: string) => void;
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

export function ModelCards({ models, selected, onSelect }: Props) {
  return (
    <fieldset className="cards">
      <legend>Video model</legend>
      {groups(models).map(([title, members]) => (
        <div key={title} className="card-group" role="group" aria-label={title}>
          <h3 className="card-group-title">{title}</h3>
          {members.map((model) => (
            <label key={model.id} className={`card${model.id === selected ? " selected" : ""}${model.available ? "" : " unavailable"}`}>
              <input
                type="radio"
                name="model"
                value={model.id}
                checked={model.id === selected}
                disabled={!model.available}
                onChange={() => onSelect(model.id)}
              />
              <span className="card-title">{model.name}</span>
              <span className="card-meta">
                <span className="badge">{model.backend}</span>
                {!model.ai && <span className="badge">not AI</span>}
                {model.inputs.end_image === "required" && <span className="badge">first + last frame</span>}
                {model.inputs.end_image === "optional" && <span className="badge">last frame optional</span>}
                {model.inputs.audio && <span className="badge">audio on request</span>}
              </span>
              <span className="card-price" title={model.price.source ?? undefined}>
                {model.price.estimate_usd !== null ? `≈ ${usd(model.price.estimate_usd)} for this video` : model.price.text}
                {model.price.confirmed === false && " (unconfirmed)"}
              </span>
              <span className="card-speed">{model.speed_hint}</span>
              {model.available && model.unchecked.length > 0 ? (
                <span className="card-unchecked" title={model.unchecked.join("; ")}>not checked: {model.unchecked.join("; ")}</span>
              ) : model.available ? (
                <span className="card-ok">available</span>
              ) : (
                <span className="card-missing">missing: {model.missing.join("; ")}</span>
              )}
            </label>
          ))}
        </div>
      ))}
    </fieldset>
  );
}

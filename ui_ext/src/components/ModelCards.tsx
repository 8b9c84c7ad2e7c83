// The video models as cards: backend, price estimate, speed hint, and what is missing when unavailable.
import { usd } from "../format";
import type { Model } from "../types";

interface Props {
  models: Model[];
  selected: string;
  onSelect: (id: string) => void;
}

export function ModelCards({ models, selected, onSelect }: Props) {
  return (
    <fieldset className="cards">
      <legend>Video model</legend>
      {models.map((model) => (
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
          </span>
          <span className="card-price">
            {model.price.estimate_usd !== null ? `≈ ${usd(model.price.estimate_usd)} for this video` : model.price.text}
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
    </fieldset>
  );
}

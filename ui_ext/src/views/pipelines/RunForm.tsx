// Start a saved pipeline: one field per typed input (an image is uploaded first through /api/uploads), then the run
// page. Used by the pipelines list and the builder.
import { useState } from "react";
import { api, describeError } from "../../api";
import { navigate } from "../../router";
import { pipelinesApi, type Definition, type InputDef } from "./api";

function initial(def: InputDef): string {
  if (def.default === undefined || def.default === null) return def.type === "choice" ? def.choices?.[0] ?? "" : "";
  return Array.isArray(def.default) ? def.default.join("\n") : String(def.default);
}

export function RunForm({ pipelineId, definition, idPrefix, onStarted }: {
  pipelineId: string; definition: Definition; idPrefix: string; onStarted?: (runId: string) => void;
}) {
  const inputs = Object.entries(definition.inputs ?? {});
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(inputs.map(([n, d]) => [n, initial(d)])));
  const [files, setFiles] = useState<Record<string, File | null>>({});
  const [uploaded, setUploaded] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function start(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const given: Record<string, unknown> = {};
      for (const [name, def] of inputs) {
        if (def.type === "image") {
          const file = files[name];
          if (file) {
            const ref = uploaded[name] ?? (await api.upload(file)).image;
            setUploaded((u) => ({ ...u, [name]: ref }));
            given[name] = ref;
          } else if (values[name]) given[name] = values[name];
          continue;
        }
        const value = values[name];
        if (value === "" && def.default !== undefined && def.default !== null) continue;
        given[name] = def.type === "number" ? Number(value) : def.type === "texts" ? value.split("\n").map((s) => s.trim()).filter(Boolean) : value;
      }
      const run = await pipelinesApi.start(pipelineId, given);
      onStarted?.(run.run_id);
      navigate(`#/pipeline-runs/${run.run_id}`);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="run-form" onSubmit={start} aria-label={`Run ${definition.name}`}>
      {inputs.length > 0 && (
        <fieldset>
          <legend>Inputs</legend>
          <div className="fields">
            {inputs.map(([name, def]) => {
              const id = `${idPrefix}-input-${name}`;
              const set = (value: string) => setValues((v) => ({ ...v, [name]: value }));
              return (
                <div key={name} className={`field${def.type === "texts" || def.type === "text" ? " wide" : ""}`}>
                  <label htmlFor={id}>{name}{def.description ? ` — ${def.description}` : ""}</label>
                  {def.type === "image" ? (
                    <input id={id} type="file" accept="image/*" required={def.default === undefined || def.default === null}
                      onChange={(e) => { setFiles((f) => ({ ...f, [name]: e.target.files?.[0] ?? null })); setUploaded((u) => { const { [name]: _, ...rest } = u; return rest; }); }} />
                  ) : def.type === "choice" ? (
                    <select id={id} value={values[name]} onChange={(e) => set(e.target.value)}>
                      {(def.choices ?? []).map((c) => <option key={c}>{c}</option>)}
                    </select>
                  ) : def.type === "texts" ? (
                    <textarea id={id} rows={3} value={values[name]} onChange={(e) => set(e.target.value)} aria-describedby={`${id}-hint`} />
                  ) : (
                    <input id={id} type={def.type === "number" ? "number" : "text"} min={def.min} max={def.max} step="any"
                      required={def.default === undefined || def.default === null} value={values[name]} onChange={(e) => set(e.target.value)} />
                  )}
                  {def.type === "texts" && <small id={`${id}-hint`}>One item per line.</small>}
                </div>
              );
            })}
          </div>
        </fieldset>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>Run pipeline</button>
      </div>
      <p className="error" role="alert">{error}</p>
    </form>
  );
}

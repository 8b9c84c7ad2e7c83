// Saved pipelines: open one in the builder, run it (its inputs form), delete it; a new one from a template. A
// pipeline whose model cannot run here says so beside it.
import { useCallback, useEffect, useState } from "react";
import { describeError } from "../../api";
import { navigate } from "../../router";
import { pipelinesApi, type SavedPipeline } from "./api";
import { RunForm } from "./RunForm";
import "./pipelines.css";

const TEMPLATES = ["story", "edit-then-animate", "long-take"];

export function PipelineList() {
  const [pipelines, setPipelines] = useState<SavedPipeline[] | null>(null);
  const [running, setRunning] = useState<string | null>(null);
  const [error, setError] = useState("");
  const load = useCallback(() => {
    pipelinesApi.list().then((page) => setPipelines(page.pipelines), (e) => setError(describeError(e)));
  }, []);
  useEffect(() => {
    document.title = "Pipelines · reelflow";
    load();
  }, [load]);

  async function remove(p: SavedPipeline) {
    if (!window.confirm(`Delete pipeline “${p.name}”?`)) return;
    try {
      await pipelinesApi.remove(p.pipeline_id);
      load();
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <section className="panel" aria-labelledby="pipelines-title">
      <h2 id="pipelines-title">Pipelines</h2>
      <div className="actions wrap">
        <a className="button primary" href="#/pipelines/new">New pipeline</a>
        <span className="muted">or start from</span>
        {TEMPLATES.map((t) => <a key={t} className="button" href={`#/pipelines/new?template=${t}`}>{t}</a>)}
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {pipelines === null ? <p className="muted" aria-busy="true">Loading pipelines…</p> : pipelines.length === 0 ? (
        <p className="muted">No saved pipelines yet.</p>
      ) : (
        <ul className="pipeline-cards">
          {pipelines.map((p) => (
            <li key={p.pipeline_id} className="pipeline-card">
              <h3>{p.name}</h3>
              <p className="muted">
                version {p.version} · {p.definition.steps.length} step{p.definition.steps.length === 1 ? "" : "s"}: {p.definition.steps.map((s) => s.id).join(" → ")}
              </p>
              {p.warnings.map((w) => (
                <p key={`${w.step}:${w.message}`} className="warning" id={`warn-${p.pipeline_id}`}>Needs setup — {w.step}: {w.message}</p>
              ))}
              <div className="actions wrap">
                <button type="button" onClick={() => navigate(`#/pipelines/${p.pipeline_id}`)} aria-label={`Edit ${p.name}`}>Edit</button>
                <button type="button" aria-expanded={running === p.pipeline_id} aria-label={`Run ${p.name}…`}
                  aria-describedby={p.warnings.length ? `warn-${p.pipeline_id}` : undefined}
                  onClick={() => setRunning(running === p.pipeline_id ? null : p.pipeline_id)}>Run…</button>
                {p.saved_as === "spec" && <button type="button" onClick={() => navigate(`#/new?pipeline=${p.pipeline_id}`)}>Use in Make a video</button>}
                <button type="button" onClick={() => remove(p)} aria-label={`Delete ${p.name}`}>Delete</button>
              </div>
              {running === p.pipeline_id && <RunForm pipelineId={p.pipeline_id} definition={p.definition} idPrefix={`list-${p.pipeline_id}`} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

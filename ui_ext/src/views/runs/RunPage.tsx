// One run as a record: input and output side by side, prompt, seed, settings and elapsed time, steps (live, "from
// cache" when reused), the whole event timeline, Re-run, Tweak & re-run, and the same run as CLI / Python / curl.
import { useCallback, useEffect, useState } from "react";
import { describeError } from "../../api";
import { useEventStream } from "../../events";
import { percent, usd, when } from "../../format";
import { navigate } from "../../router";
import { FINISHED, type RunEvent } from "../../types";
import { runsApi, type RunCard } from "./api";
import { cliCommand, curlCommand, pythonCommand } from "./commands";
import { seconds, size } from "./format";
import "./runs.css";

function Copy({ label, text }: { label: string; text: string }) {
  const [done, setDone] = useState("");
  return (
    <div className="copy">
      <div className="copy-head">
        <h4>{label}</h4>
        <button
          type="button"
          onClick={() => navigator.clipboard?.writeText(text).then(() => setDone("Copied."), () => setDone("Select the text to copy it."))}
        >
          Copy {label}
        </button>
        <span role="status">{done}</span>
      </div>
      <pre data-testid={`copy-${label.toLowerCase()}`}>{text}</pre>
    </div>
  );
}

export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<RunCard | null>(null);
  const [log, setLog] = useState<RunEvent[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(() => {
    runsApi.run(runId).then(setRun, (e) => setError(describeError(e)));
  }, [runId]);
  useEffect(() => {
    setLog([]);
    setRun(null);
    refresh();
  }, [refresh]);

  const onEvent = useCallback(
    (event: RunEvent) => {
      setLog((current) => (current.some((e) => e.id === event.id) ? current : [...current, event]));
      if (event.kind === "status") refresh();
      else if (event.progress !== null) setRun((r) => (r ? { ...r, progress: event.progress ?? r.progress } : r));
    },
    [refresh],
  );
  // Finished runs too: the stream replays every event, then ends.
  useEventStream(`/api/runs/${encodeURIComponent(runId)}/events`, onEvent, refresh);

  async function act(action: () => Promise<{ run_id: string }>) {
    setError("");
    setBusy(true);
    try {
      const next = await action();
      if (next.run_id !== runId) navigate(`#/runs/${next.run_id}`);
      else refresh();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  if (!run) {
    return (
      <section className="panel" aria-labelledby="run-title" aria-busy={!error}>
        <h2 id="run-title">Run {runId.slice(0, 8)}</h2>
        {error ? <p className="error" role="alert">{error}</p> : <p>Loading run…</p>}
      </section>
    );
  }
  const live = !FINISHED.includes(run.status);
  const latest = log[log.length - 1];
  const settings: [string, string][] = [
    ["Model", run.model_name ? `${run.model_name} (${run.model})` : run.model],
    ["Backend", run.backend],
    ["Seed", run.seed === null ? "none (the model takes no seed)" : String(run.seed)],
    ["Video", `${seconds(run.duration_s)} · ${size(run.width, run.height)}${run.spec.fps ? ` · ${run.spec.fps} fps` : ""}`],
    ["Resolution asked", run.spec.resolution ?? "model default"],
    ["Cost", usd(run.cost_usd)],
    ["Elapsed", seconds(run.elapsed_s)],
    ["Created", when(run.created_at)],
  ];
  if (run.spec.negative_prompt) settings.push(["Negative prompt", run.spec.negative_prompt]);
  if (run.batch_id) settings.push(["Batch", run.batch_id]);
  if (run.pipeline_name) settings.push(["Pipeline", run.pipeline_name]);
  const reused = run.steps.some((s) => s.reused_from);
  return (
    <section className="panel run-page" aria-labelledby="run-title">
      <h2 id="run-title">{run.prompt ? run.prompt.slice(0, 80) : `Run ${run.run_id.slice(0, 8)}`}</h2>
      <p>
        <span className={`chip ${run.status}`} data-testid="run-status">{run.status}</span>
        {live && <> <progress max={1} value={run.progress} aria-label="progress" /> {percent(run.progress)}</>}
        {(run.cached || reused) && <span className="badge"> from cache</span>}
        <span className="muted"> · run {run.run_id}</span>
      </p>
      {run.error && <p className="error" role="alert" data-testid="run-error">{run.error}</p>}
      <div className="media-pair">
        <figure>
          <figcaption>Input</figcaption>
          {run.input_url ? <img className="input-image" src={run.input_url} alt="the run's input image" /> : <p className="muted">No input image (text to video).</p>}
        </figure>
        <figure>
          <figcaption>Output</figcaption>
          {run.video_url ? (
            <video data-testid="run-video" src={run.video_url} poster={run.poster_url ?? undefined} controls muted loop playsInline preload="metadata" />
          ) : (
            <p className="muted">{live ? "Rendering…" : "No video."}</p>
          )}
        </figure>
      </div>
      <div className="actions">
        {live && <button type="button" disabled={busy} onClick={() => act(() => runsApi.cancel(runId))}>Cancel run</button>}
        {run.kind === "video" && <button type="button" disabled={busy} onClick={() => act(() => runsApi.rerun(run.spec))}>Re-run</button>}
        {run.kind === "video" && <a className="button" href={`#/new?from=${encodeURIComponent(run.run_id)}`}>Tweak &amp; re-run</a>}
        {run.video_url && <a className="button" href={run.video_url} download>Download video</a>}
        {run.prefect_url && <a href={run.prefect_url} target="_blank" rel="noreferrer">Open in the Prefect UI</a>}
      </div>
      <h3>Prompt</h3>
      <p className="prompt" data-testid="run-prompt">{run.prompt ?? "(none)"}</p>
      <h3>Settings</h3>
      <dl className="facts">
        {settings.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd data-testid={`fact-${name.toLowerCase().replace(/\s+/g, "-")}`}>{value}</dd>
          </div>
        ))}
      </dl>
      <h3>Steps</h3>
      <ul className="steps" data-testid="steps">
        {run.steps.length === 0 && <li className="muted">No step has started yet.</li>}
        {run.steps.map((step, i) => (
          <li key={i}>
            <strong>{step.name}</strong> <span className={`chip ${step.status}`}>{step.status}</span> on {step.backend}
            {step.reused_from ? ` — from cache (run ${step.reused_from.slice(0, 8)})` : ""}
            {step.attempts > 1 ? ` (attempt ${step.attempts})` : ""}
            {step.cost_usd ? `, ${usd(step.cost_usd)}` : ""}
            {step.error ? ` — ${step.error}` : ""}
          </li>
        ))}
      </ul>
      <h3>Timeline</h3>
      <p role="status" className="muted" data-testid="latest-event">{latest ? `Latest: ${latest.message}` : "Reading events…"}</p>
      <ol className="timeline" data-testid="timeline">
        {log.map((e) => (
          <li key={e.id}>
            <time dateTime={e.created_at}>{new Date(e.created_at).toLocaleTimeString()}</time> {e.step ? <strong>{e.step}</strong> : null} {e.message}
          </li>
        ))}
      </ol>
      {run.kind === "video" && (
        <>
          <h3>Copy as</h3>
          <Copy label="CLI" text={cliCommand(run)} />
          <Copy label="Python" text={pythonCommand(run)} />
          <Copy label="curl" text={curlCommand(run, window.location.origin)} />
        </>
      )}
      <details>
        <summary>Spec as JSON</summary>
        <pre>{JSON.stringify(run.spec, null, 2)}</pre>
      </details>
    </section>
  );
}

// One run: live status and progress, the video with its poster, error, cost and the Prefect link.
import { useCallback, useEffect, useState } from "react";
import { api, describeError } from "../api";
import { useEventStream } from "../events";
import { percent, usd, when } from "../format";
import { navigate } from "../router";
import { FINISHED, type Run, type RunEvent } from "../types";

export function RunDetail({ runId }: { runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [log, setLog] = useState<RunEvent[]>([]);
  const [error, setError] = useState("");

  const refresh = useCallback(() => {
    api.run(runId).then(setRun, (e) => setError(describeError(e)));
  }, [runId]);
  useEffect(() => {
    setLog([]);
    refresh();
  }, [refresh]);

  const live = run !== null && !FINISHED.includes(run.status);
  const onEvent = useCallback(
    (event: RunEvent) => {
      setLog((current) => (current.some((e) => e.id === event.id) ? current : [...current, event]));
      if (event.kind === "status") refresh();
      else if (event.progress !== null) setRun((r) => (r ? { ...r, progress: event.progress ?? r.progress } : r));
    },
    [refresh],
  );
  useEventStream(live ? `/api/runs/${encodeURIComponent(runId)}/events` : null, onEvent, refresh);

  async function act(action: "cancel" | "retry") {
    setError("");
    try {
      const next = action === "cancel" ? await api.cancelRun(runId) : await api.retryRun(runId);
      if (next.run_id !== runId) navigate(`#/runs/${next.run_id}`);
      else setRun(next);
    } catch (e) {
      setError(describeError(e));
    }
  }

  if (!run) return <section className="panel"><p className="error" role="alert">{error}</p><p>Loading run…</p></section>;
  return (
    <section className="panel" aria-labelledby="run-title">
      <h2 id="run-title">Run {run.run_id.slice(0, 12)}</h2>
      <dl className="facts">
        <dt>Status</dt>
        <dd><span className={`status ${run.status}`} data-testid="run-status" aria-live="polite">{run.status}</span>{run.cached ? " (from cache)" : ""}</dd>
        <dt>Progress</dt>
        <dd><progress max={1} value={run.progress} aria-label="progress">{percent(run.progress)}</progress> {percent(run.progress)}</dd>
        <dt>Model</dt>
        <dd>{run.model} <span className="badge">{run.backend}</span></dd>
        <dt>Cost</dt>
        <dd data-testid="run-cost">{usd(run.cost_usd)}</dd>
        <dt>Created</dt>
        <dd>{when(run.created_at)}</dd>
        {run.prefect_url && (
          <>
            <dt>Prefect</dt>
            <dd><a href={run.prefect_url} target="_blank" rel="noreferrer">open this run in the Prefect UI</a></dd>
          </>
        )}
      </dl>
      {run.error && <p className="error" role="alert" data-testid="run-error">{run.error}</p>}
      {run.video_url ? (
        <video data-testid="run-video" src={run.video_url} poster={run.poster_url ?? undefined} controls muted loop playsInline preload="auto" />
      ) : (
        run.poster_url && <img className="poster" src={run.poster_url} alt="input image of this run" />
      )}
      <div className="actions">
        {!FINISHED.includes(run.status) && <button type="button" onClick={() => act("cancel")}>Cancel run</button>}
        {(run.status === "failed" || run.status === "cancelled") && <button type="button" onClick={() => act("retry")}>Retry run</button>}
        {run.video_url && <a href={run.video_url} download>Download video</a>}
      </div>
      <p className="error" role="alert">{error}</p>
      <h3>Steps</h3>
      <ul className="steps">
        {run.steps.map((step, i) => (
          <li key={i}>
            <strong>{step.name}</strong> {step.status} on {step.backend}
            {step.attempts > 1 ? ` (attempt ${step.attempts})` : ""}
            {step.cost_usd ? `, ${usd(step.cost_usd)}` : ""}
            {step.error ? ` — ${step.error}` : ""}
          </li>
        ))}
      </ul>
      {log.length > 0 && (
        <>
          <h3>Events</h3>
          <ol className="log" aria-live="polite">
            {log.slice(-12).map((e) => (
              <li key={e.id}>{e.message}</li>
            ))}
          </ol>
        </>
      )}
      <details>
        <summary>Spec</summary>
        <pre>{JSON.stringify(run.spec, null, 2)}</pre>
      </details>
    </section>
  );
}

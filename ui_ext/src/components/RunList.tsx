// Recent runs, kept live by the list-wide event stream.
import { useCallback, useEffect, useState } from "react";
import { api, describeError } from "../api";
import { useEventStream } from "../events";
import { percent, usd, when } from "../format";
import type { Run, RunEvent } from "../types";

const PAGE = 20;

export function RunList() {
  const [runs, setRuns] = useState<Run[]>([]);
  const [total, setTotal] = useState(0);
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState("");

  const load = useCallback(() => {
    api.runs({ limit: PAGE, offset }).then(
      (page) => {
        setRuns(page.runs);
        setTotal(page.total);
      },
      (e) => setError(describeError(e)),
    );
  }, [offset]);
  useEffect(load, [load]);

  const onEvent = useCallback(
    (event: RunEvent) => {
      if (event.kind === "status") {
        api.run(event.run_id).then((run) =>
          setRuns((current) => {
            const known = current.some((r) => r.run_id === run.run_id);
            if (!known && offset === 0) return [run, ...current].slice(0, PAGE);
            return current.map((r) => (r.run_id === run.run_id ? run : r));
          }),
        );
      } else if (event.progress !== null) {
        setRuns((current) => current.map((r) => (r.run_id === event.run_id ? { ...r, progress: event.progress ?? r.progress } : r)));
      }
    },
    [offset],
  );
  useEventStream("/api/events", onEvent);

  return (
    <section className="panel" aria-labelledby="runs-title">
      <h2 id="runs-title">Runs</h2>
      <p className="error" role="alert">{error}</p>
      <table className="runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            <th scope="col">Cost</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.run_id} data-run-id={run.run_id}>
              <td><a href={`#/runs/${run.run_id}`}>{run.run_id.slice(0, 12)}</a></td>
              <td>{run.model}</td>
              <td><span className={`status ${run.status}`}>{run.status}</span></td>
              <td><progress max={1} value={run.progress} aria-label={`progress of run ${run.run_id.slice(0, 12)}`}>{percent(run.progress)}</progress></td>
              <td>{usd(run.cost_usd)}</td>
              <td>{when(run.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.length === 0 && <p>No runs yet. <a href="#/new">Make a video</a>.</p>}
      <div className="actions">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Newer</button>
        <span>{total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : ""}</span>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Older</button>
      </div>
    </section>
  );
}

// The runs gallery: cards with posters that play on hover (or a compact table), search, filters and sort kept in the
// URL, pages that hold while runs arrive, multi-select to compare, download as a zip, or cancel.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { describeError } from "../../api";
import { useEventStream } from "../../events";
import { percent, usd } from "../../format";
import { replaceParams } from "../../router";
import { FINISHED, type RunEvent } from "../../types";
import { filtersOf, runsApi, type CardPage, type Filters, type RunCard } from "./api";
import { Compare } from "./Compare";
import { ago, seconds, size } from "./format";
import "./runs.css";

const PAGE = 24;
const STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"];
const SORTS: [string, string][] = [
  ["-created_at", "Newest first"], ["created_at", "Oldest first"], ["-cost", "Most expensive"], ["cost", "Cheapest"],
  ["-duration", "Longest video"], ["duration", "Shortest video"],
];

export function runHref(run: RunCard): string {
  return run.kind === "pipeline" ? `#/pipeline-runs/${run.run_id}` : `#/runs/${run.run_id}`;
}

function title(run: RunCard): string {
  return run.prompt || (run.kind === "pipeline" ? run.pipeline_name ?? "pipeline run" : "(no prompt)");
}

function Poster({ run }: { run: RunCard }) {
  const video = useRef<HTMLVideoElement>(null);
  const [hovered, setHovered] = useState(false);
  useEffect(() => {
    const element = video.current;
    if (!element) return;
    if (hovered) element.play().catch(() => undefined);
    else element.pause();
  }, [hovered]);
  if (!run.video_url) {
    return run.poster_url ? <img className="thumb" src={run.poster_url} alt="" loading="lazy" /> : <div className="thumb empty" aria-hidden="true" />;
  }
  return (
    <video
      ref={video}
      className="thumb"
      poster={run.poster_url ?? undefined}
      src={hovered ? run.video_url : undefined}
      preload="none"
      muted
      loop
      playsInline
      aria-hidden="true"
      onMouseEnter={() => setHovered(true)}
      onMouseLeave={() => setHovered(false)}
      data-testid="card-video"
    />
  );
}

function Chip({ run }: { run: RunCard }) {
  return (
    <span className={`chip ${run.status}`}>
      {run.status}
      {!FINISHED.includes(run.status) && run.progress > 0 ? ` ${percent(run.progress)}` : ""}
    </span>
  );
}

interface Group {
  key: string;
  label: string | null;
  runs: RunCard[];
}

// Neighbouring runs of one batch share a group header.
function grouped(runs: RunCard[]): Group[] {
  const groups: Group[] = [];
  for (const run of runs) {
    const last = groups[groups.length - 1];
    const label = run.batch_id ? `Batch ${run.batch_id}` : null;
    if (last && last.label === label) last.runs.push(run);
    else groups.push({ key: run.batch_id ?? run.run_id, label, runs: [run] });
  }
  return groups;
}

function Card({ run, selected, onSelect }: { run: RunCard; selected: boolean; onSelect: (on: boolean) => void }) {
  return (
    <li className={`card${selected ? " selected" : ""}`} data-run-id={run.run_id}>
      <Poster run={run} />
      <div className="card-body">
        <input type="checkbox" checked={selected} onChange={(e) => onSelect(e.target.checked)} aria-label={`Select ${title(run)}`} />
        <a className="card-title" href={runHref(run)}>{title(run)}</a>
        <p className="card-meta">
          <Chip run={run} /> {run.kind === "pipeline" ? `Pipeline ${run.pipeline_name ?? ""}` : run.model_name ?? run.model}
        </p>
        <p className="card-meta">
          {seconds(run.duration_s)} · {size(run.width, run.height)} · {usd(run.cost_usd)} · <time dateTime={run.created_at}>{ago(run.created_at)}</time>
        </p>
      </div>
    </li>
  );
}

function Table({ runs, selected, onSelect }: { runs: RunCard[]; selected: Set<string>; onSelect: (id: string, on: boolean) => void }) {
  return (
    <div className="table-wrap">
      <table className="runs-table">
        <thead>
          <tr>
            <th scope="col"><span className="visually-hidden">Select</span></th>
            <th scope="col">Prompt</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Video</th>
            <th scope="col">Cost</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.run_id} data-run-id={run.run_id}>
              <td><input type="checkbox" checked={selected.has(run.run_id)} onChange={(e) => onSelect(run.run_id, e.target.checked)} aria-label={`Select ${title(run)}`} /></td>
              <td><a href={runHref(run)}>{title(run)}</a>{run.batch_id ? <span className="muted"> ({run.batch_id})</span> : null}</td>
              <td>{run.kind === "pipeline" ? `Pipeline ${run.pipeline_name ?? ""}` : run.model_name ?? run.model}</td>
              <td><Chip run={run} /></td>
              <td>{seconds(run.duration_s)} · {size(run.width, run.height)}</td>
              <td>{usd(run.cost_usd)}</td>
              <td><time dateTime={run.created_at}>{ago(run.created_at)}</time></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RunsGallery({ params }: { params: URLSearchParams }) {
  const filters = useMemo(() => filtersOf(params), [params]);
  const key = JSON.stringify(filters);
  const view = params.get("view") === "table" ? "table" : "grid";
  const [page, setPage] = useState<CardPage | null>(null);
  const [runs, setRuns] = useState<RunCard[]>([]);
  const [error, setError] = useState("");
  const [arrived, setArrived] = useState<Set<string>>(new Set());
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [comparing, setComparing] = useState(false);
  const [notice, setNotice] = useState("");
  const [search, setSearch] = useState(filters.q ?? "");

  const set = useCallback(
    (changes: Record<string, string | null>) => {
      const next = new URLSearchParams(params);
      for (const [name, value] of Object.entries(changes)) {
        if (value) next.set(name, value);
        else next.delete(name);
      }
      replaceParams(next);
    },
    [params],
  );

  const load = useCallback(() => {
    setError("");
    setArrived(new Set());
    runsApi.page(JSON.parse(key) as Filters, PAGE).then(
      (first) => {
        setPage(first);
        setRuns(first.runs);
      },
      (e) => setError(describeError(e)),
    );
  }, [key]);
  useEffect(load, [load]);

  useEffect(() => {
    if (search === (filters.q ?? "")) return;
    const timer = window.setTimeout(() => set({ q: search.trim() || null }), 300);
    return () => window.clearTimeout(timer);
  }, [search, filters.q, set]);

  const more = () => {
    if (!page || page.next_offset === null) return;
    runsApi.page(filters, PAGE, page.next_offset, page.as_of).then(
      (next) => {
        setPage({ ...next, as_of: page.as_of });
        setRuns((current) => [...current, ...next.runs.filter((r) => !current.some((c) => c.run_id === r.run_id))]);
      },
      (e) => setError(describeError(e)),
    );
  };

  const listed = useRef<RunCard[]>([]);
  listed.current = runs;
  const onEvent = useCallback((event: RunEvent) => {
    if (event.kind === "status") {
      if (listed.current.some((r) => r.run_id === event.run_id)) {
        runsApi.run(event.run_id).then((run) => setRuns((now) => now.map((r) => (r.run_id === run.run_id ? run : r))), () => undefined);
      } else if (event.message === "queued") {
        setArrived((seen) => new Set(seen).add(event.run_id));
      }
    } else if (event.progress !== null) {
      setRuns((current) => current.map((r) => (r.run_id === event.run_id ? { ...r, progress: event.progress ?? r.progress } : r)));
    }
  }, []);
  useEventStream("/api/events", onEvent);

  const select = (id: string, on: boolean) =>
    setSelected((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  const chosen = runs.filter((r) => selected.has(r.run_id));
  const withVideo = chosen.filter((r) => r.video_url);
  const cancellable = chosen.filter((r) => !FINISHED.includes(r.status));

  async function cancelChosen() {
    setNotice("");
    const results = await Promise.allSettled(cancellable.map((r) => runsApi.cancel(r.run_id)));
    const failed = results.filter((r) => r.status === "rejected").length;
    setNotice(`Cancelled ${results.length - failed} of ${results.length} runs${failed ? `; ${failed} could not be cancelled` : ""}.`);
    const fresh = await Promise.all(cancellable.map((r) => runsApi.run(r.run_id).catch(() => r)));
    setRuns((current) => current.map((r) => fresh.find((f) => f.run_id === r.run_id) ?? r));
  }

  const shown = runs.length;
  return (
    <section className="panel runs-gallery" aria-labelledby="runs-title">
      <h2 id="runs-title">Runs</h2>
      <form className="run-filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>Search prompts<input type="search" value={search} onChange={(e) => setSearch(e.target.value)} /></label>
        <label>
          Status
          <select value={filters.status ?? ""} onChange={(e) => set({ status: e.target.value || null })}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
            <option value="failed,cancelled">failed or cancelled</option>
            {filters.status && !STATUSES.includes(filters.status) && filters.status !== "failed,cancelled" && <option value={filters.status}>{filters.status}</option>}
          </select>
        </label>
        <label>Model<input value={filters.model ?? ""} onChange={(e) => set({ model: e.target.value.trim() || null })} placeholder="model id" /></label>
        <label>
          Backend
          <select value={filters.backend ?? ""} onChange={(e) => set({ backend: e.target.value || null })}>
            <option value="">any</option>
            {["fal", "comfyui", "swarmui", "local", "pipeline"].map((b) => <option key={b} value={b}>{b}</option>)}
          </select>
        </label>
        <label>
          Kind
          <select value={filters.kind ?? ""} onChange={(e) => set({ kind: e.target.value || null })}>
            <option value="">videos and pipelines</option>
            <option value="video">videos</option>
            <option value="pipeline">pipeline runs</option>
          </select>
        </label>
        <label>Batch<input value={filters.batch_id ?? ""} onChange={(e) => set({ batch_id: e.target.value.trim() || null })} placeholder="batch-…" /></label>
        <label>From<input type="date" value={filters.since ?? ""} onChange={(e) => set({ since: e.target.value || null })} /></label>
        <label>To<input type="date" value={filters.until ?? ""} onChange={(e) => set({ until: e.target.value || null })} /></label>
        <label>
          Sort
          <select value={filters.sort ?? "-created_at"} onChange={(e) => set({ sort: e.target.value === "-created_at" ? null : e.target.value })}>
            {SORTS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <fieldset className="view-toggle">
          <legend>View</legend>
          <label><input type="radio" name="runs-view" checked={view === "grid"} onChange={() => set({ view: null })} />Gallery</label>
          <label><input type="radio" name="runs-view" checked={view === "table"} onChange={() => set({ view: "table" })} />Table</label>
        </fieldset>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <p role="status" className="runs-count">
        {page === null ? "Loading runs…" : page.total === 0 ? "No runs match." : `Showing 1–${shown} of ${page.total}`}
      </p>
      {arrived.size > 0 && (
        <button type="button" className="arrived" onClick={load}>
          Show {arrived.size} new run{arrived.size === 1 ? "" : "s"}
        </button>
      )}
      {selected.size > 0 && (
        <div className="bulk" role="toolbar" aria-label="Selected runs">
          <span>{selected.size} selected</span>
          <button type="button" disabled={withVideo.length < 2 || withVideo.length > 4} onClick={() => setComparing(true)}>
            Compare {withVideo.length >= 2 && withVideo.length <= 4 ? withVideo.length : "2–4"} videos
          </button>
          {withVideo.length > 0 ? <a className="button" href={runsApi.downloadUrl(withVideo.map((r) => r.run_id))} download>Download {withVideo.length} as zip</a> : null}
          <button type="button" disabled={cancellable.length === 0} onClick={cancelChosen}>Cancel {cancellable.length} runs</button>
          <button type="button" onClick={() => setSelected(new Set())}>Clear selection</button>
        </div>
      )}
      <p role="status" className="notice">{notice}</p>
      {comparing && withVideo.length >= 2 && <Compare runs={withVideo.slice(0, 4)} onClose={() => setComparing(false)} />}
      {view === "table" ? (
        <Table runs={runs} selected={selected} onSelect={select} />
      ) : (
        grouped(runs).map((group) =>
          group.label ? (
            <section key={group.key} className="group" aria-label={group.label}>
              <h3>{group.label} <span className="muted">({group.runs.length} shown)</span></h3>
              <ul className="cards">
                {group.runs.map((run) => <Card key={run.run_id} run={run} selected={selected.has(run.run_id)} onSelect={(on) => select(run.run_id, on)} />)}
              </ul>
            </section>
          ) : (
            <ul key={group.key} className="cards">
              {group.runs.map((run) => <Card key={run.run_id} run={run} selected={selected.has(run.run_id)} onSelect={(on) => select(run.run_id, on)} />)}
            </ul>
          ),
        )
      )}
      {page && page.next_offset !== null && <button type="button" onClick={more}>Show more runs</button>}
    </section>
  );
}

// A pipeline run as a live graph of its steps, approvals answered in place. The graph is read once and again on
// each of the run's events (Server-Sent Events; no polling loop).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Edge } from "@xyflow/react";
import { describeError } from "../../api";
import { useEventStream } from "../../events";
import { usd } from "../../format";
import type { RunEvent } from "../../types";
import { isVideo, mediaOf, pipelinesApi, type Definition, type GraphStep, type MediaOut, type RunGraph, type StepDef } from "./api";
import { Graph } from "./Graph";
import { edgesOf, INPUTS_NODE, layout, parseRef } from "./graph";
import { stateLabel, type StepNodeType } from "./StepNode";
import "./pipelines.css";

const FINISHED = new Set(["completed", "failed", "cancelled"]);

function firstMedia(step: GraphStep | undefined): MediaOut | null {
  for (const item of step?.items ?? []) {
    for (const value of Object.values(item.outputs)) {
      const media = mediaOf(value);
      if (media?.url) return media;
    }
  }
  return null;
}

function Media({ media, label, large = false }: { media: MediaOut; label: string; large?: boolean }) {
  if (!media.url) return null;
  return isVideo(media) ? (
    <video className={large ? "judge-media" : "item-media"} src={media.url} controls muted loop playsInline aria-label={label} />
  ) : (
    <img className={large ? "judge-media" : "item-media"} src={media.url} alt={label} />
  );
}

// A step the graph (as last read) still shows queued but whose events have begun is drawn running at once, without
// waiting for the graph to be read again.
function shownState(graph: RunGraph, step: string, heard: Set<string>): string {
  const status = graph.steps.find((s) => s.id === step)?.status ?? "pending";
  return (status === "pending" || status === "queued") && heard.has(step) && !FINISHED.has(graph.run.status) ? "running" : status;
}

function runNodes(definition: Definition, graph: RunGraph, progress: Record<string, number>, heard: Set<string>): { nodes: StepNodeType[]; edges: Edge[] } {
  const edges = edgesOf(definition);
  const byId = Object.fromEntries(graph.steps.map((s) => [s.id, s]));
  const ports = (id: string) => Math.max(new Set(edges.filter((e) => e.target === id).map((e) => e.targetHandle)).size,
    new Set(edges.filter((e) => e.source === id).map((e) => e.sourceHandle)).size);
  const positions = layout(definition, edges, (id) => {
    const step = definition.steps.find((s) => s.id === id);
    const judged = step?.kind === "approve" ? byId[step.target ?? ""] : byId[id];
    return 80 + ports(id) * 18 + (firstMedia(judged) ? 100 : 0);
  });
  const nodes: StepNodeType[] = [];
  const inputs = Object.keys(definition.inputs ?? {});
  if (inputs.length) {
    nodes.push({ id: INPUTS_NODE, type: "step", position: positions[INPUTS_NODE], ariaLabel: "Pipeline inputs",
      data: { title: "Inputs", subtitle: "given at run time", inputs: [], outputs: inputs.map((name) => ({ name, type: null })) } });
  }
  for (const step of definition.steps) {
    const state = byId[step.id];
    const judged = step.kind === "approve" ? byId[step.target ?? ""] : state;
    const status = shownState(graph, step.id, heard);
    nodes.push({
      id: step.id, type: "step", position: positions[step.id], ariaLabel: `Step ${step.id}: ${stateLabel(status)}`,
      data: {
        title: step.id, subtitle: `${step.kind}${step.model ? ` · ${step.model}` : ""}`,
        inputs: edges.filter((e) => e.target === step.id).map((e) => ({ name: e.targetHandle, type: null }))
          .filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i),
        outputs: edges.filter((e) => e.source === step.id)
          .map((e) => ({ name: e.sourceHandle, type: null })).filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i),
        status, progress: progress[step.id] ?? null,
        thumb: firstMedia(judged),
        cost: state && state.cost_usd !== null ? usd(state.cost_usd) : undefined,
      },
    });
  }
  return { nodes, edges: edges.map((e) => ({ ...e, animated: byId[e.target]?.status === "running" })) };
}

function judgedPrompt(definition: Definition, approve: StepDef): string {
  const target = definition.steps.find((s) => s.id === approve.target);
  const prompt = target?.prompt;
  const parts = Array.isArray(prompt) ? prompt : prompt ? [prompt] : [];
  return parts.map((p) => {
    const ref = parseRef(p);
    if (ref?.source === "input" && ref.name) return String(definition.inputs?.[ref.name]?.default ?? "");
    return ref ? "" : p.replace(/^\$\$/, "$");
  }).join("");
}

function Approval({ runId, definition, approve, judged, onAnswered }: {
  runId: string; definition: Definition; approve: StepDef; judged: GraphStep | undefined; onAnswered: () => void;
}) {
  const [redo, setRedo] = useState(false);
  const [seed, setSeed] = useState(() => String(Math.floor(Math.random() * 2 ** 31)));
  const [prompt, setPrompt] = useState(() => judgedPrompt(definition, approve));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const media = judged?.items.map((item) => Object.values(item.outputs).map(mediaOf).find((m) => m?.url)).filter(Boolean) as MediaOut[];
  const send = async (decision: "approve" | "reject" | "redo") => {
    setBusy(true);
    setError("");
    try {
      const body: { decision: typeof decision; seed?: number; prompt?: string } = { decision };
      if (decision === "redo") {
        if (seed.trim()) body.seed = Number(seed);
        if (prompt.trim() && prompt !== judgedPrompt(definition, approve)) body.prompt = prompt;
      }
      await pipelinesApi.answer(runId, approve.id, body);
      setRedo(false);
      onAnswered();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel approval" aria-labelledby={`approve-${approve.id}`}>
      <h3 id={`approve-${approve.id}`}>Approval “{approve.id}”: judge {approve.target}</h3>
      <div className="judge">
        {media.length ? media.map((m, i) => <Media key={m.url} media={m} large label={`${approve.target} output${media.length > 1 ? ` ${i + 1}` : ""} to judge`} />)
          : <p className="muted">No output to show.</p>}
      </div>
      {approve.timeout && <p className="muted">No answer within {approve.timeout} s {approve.on_timeout === "approve" ? "approves" : "cancels the run"}.</p>}
      <div className="actions">
        <button type="button" className="primary" disabled={busy} onClick={() => send("approve")}>Approve</button>
        <button type="button" disabled={busy} onClick={() => send("reject")}>Reject</button>
        <button type="button" disabled={busy} aria-expanded={redo} onClick={() => setRedo(!redo)}>Redo…</button>
      </div>
      {redo && (
        <form className="redo" onSubmit={(e) => { e.preventDefault(); send("redo"); }}>
          <div className="field">
            <label htmlFor={`redo-seed-${approve.id}`}>New seed</label>
            <input id={`redo-seed-${approve.id}`} inputMode="numeric" pattern="[0-9]*" value={seed} onChange={(e) => setSeed(e.target.value)} />
          </div>
          <div className="field wide">
            <label htmlFor={`redo-prompt-${approve.id}`}>Prompt (edit to change it)</label>
            <textarea id={`redo-prompt-${approve.id}`} rows={3} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
          </div>
          <button type="submit" disabled={busy}>Render {approve.target} again</button>
        </form>
      )}
      <p className="error" role="alert">{error}</p>
    </section>
  );
}

export function PipelineRunPage({ runId }: { runId: string }) {
  const [graph, setGraph] = useState<RunGraph | null>(null);
  const [error, setError] = useState("");
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [progress, setProgress] = useState<Record<string, number>>({});
  const [heard, setHeard] = useState<Set<string>>(() => new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const [live, setLive] = useState(true);
  const pending = useRef<number | null>(null);

  const load = useCallback(() => {
    pipelinesApi.graph(runId).then((g) => { setGraph(g); setError(""); }, (e) => setError(describeError(e)));
  }, [runId]);
  useEffect(() => {
    setGraph(null);
    setEvents([]);
    setLive(true);
    load();
  }, [load]);
  useEffect(() => () => { if (pending.current) window.clearTimeout(pending.current); }, []);
  // Events come in bursts (a render's progress): read the graph again once per burst.
  const reload = useCallback(() => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => { pending.current = null; load(); }, 150);
  }, [load]);
  useEventStream(live ? `/api/runs/${encodeURIComponent(runId)}/events` : null, (event) => {
    setEvents((all) => (all.some((e) => e.id === event.id) ? all : [...all, event]));
    const step = event.step ? event.step.split(/[[:]/)[0] : null;  // shots[1] and shots[1]:cache:video are shots'
    if (step && event.kind !== "approval") setHeard((h) => (h.has(step) ? h : new Set([...h, step])));
    if (step && typeof event.progress === "number") setProgress((p) => ({ ...p, [step]: event.progress as number }));
    reload();
  }, () => { setLive(false); load(); });

  const definition = graph?.definition ?? null;
  const drawn = useMemo(() => (definition && graph ? runNodes(definition, graph, progress, heard) : null), [definition, graph, progress, heard]);
  const byId = useMemo(() => Object.fromEntries((graph?.steps ?? []).map((s) => [s.id, s])), [graph]);
  useEffect(() => {
    document.title = `Pipeline run ${runId.slice(0, 8)} · reelflow`;
  }, [runId]);

  if (error && !graph) return <section className="panel"><h2>Pipeline run</h2><p className="error" role="alert">{error}</p></section>;
  if (!graph || !definition || !drawn) return <section className="panel" aria-busy="true"><h2>Pipeline run</h2><p className="muted">Loading the run…</p></section>;

  const run = graph.run;
  const waiting = definition.steps.filter((s) => s.kind === "approve" && byId[s.id]?.status === "waiting");
  const shown = selected ? byId[selected] : undefined;
  const stepEvents = events.filter((e) => (selected ? e.step?.split(/[[:]/)[0] === selected : true)).slice(-40);
  const doResume = () => pipelinesApi.resume(run.run_id).then(() => { setLive(true); load(); }, (e) => setError(describeError(e)));
  const doCancel = () => pipelinesApi.cancel(run.run_id).then(load, (e) => setError(describeError(e)));
  return (
    <div className="pipeline-run">
      <section className="panel" aria-labelledby="prun-title">
        <h2 id="prun-title">Pipeline run {definition.name}</h2>
        <dl className="facts">
          <dt>Run</dt><dd><code>{run.run_id}</code></dd>
          <dt>Status</dt><dd><span className={`state-chip state-chip-${run.status}`} data-testid="run-status">{stateLabel(run.status)}</span></dd>
          <dt>Cost</dt><dd>{run.cost_usd === null || run.cost_usd === undefined ? (FINISHED.has(run.status) ? "unknown" : "so far: —") : usd(run.cost_usd)}</dd>
          {run.error && <><dt>Error</dt><dd className="error">{run.error}</dd></>}
        </dl>
        <div className="actions">
          {run.status === "failed" && <button type="button" className="primary" onClick={doResume}>Resume from the failed step</button>}
          {!FINISHED.has(run.status) && <button type="button" onClick={doCancel}>Cancel run</button>}
          {run.prefect_url && <a href={run.prefect_url} target="_blank" rel="noreferrer">Open in Prefect</a>}
          <span className="muted" aria-live="off">{live ? "live" : "finished"}</span>
        </div>
        {error && <p className="error" role="alert">{error}</p>}
      </section>
      {waiting.map((approve) => (
        <Approval key={`${approve.id}:${byId[approve.target ?? ""]?.items.map((i) => i.attempts + String(i.seed)).join()}`}
          runId={run.run_id} definition={definition} approve={approve} judged={byId[approve.target ?? ""]} onAnswered={load} />
      ))}
      <Graph nodes={drawn.nodes} edges={drawn.edges} label="Run graph" onNodeClick={(id) => setSelected(id === INPUTS_NODE ? null : id)} />
      <section className="panel" aria-labelledby="prun-steps">
        <h3 id="prun-steps">Steps</h3>
        <ul className="step-list">
          {definition.steps.map((step) => (
            <li key={step.id}>
              <button type="button" aria-label={`Step ${step.id}`} aria-pressed={selected === step.id} onClick={() => setSelected(selected === step.id ? null : step.id)}>
                {step.id}
              </button>
              <span className={`state-chip state-chip-${shownState(graph, step.id, heard)}`}>{stateLabel(shownState(graph, step.id, heard))}</span>
              <span className="muted">{step.kind}{step.model ? ` · ${step.model}` : ""}</span>
            </li>
          ))}
        </ul>
        {shown && (
          <div className="step-detail" aria-label={`Outputs of ${shown.id}`} role="group">
            <h4>{shown.id}: {stateLabel(shown.status)}</h4>
            {shown.error && <p className="error">{shown.error}</p>}
            <ul className="items">
              {shown.items.map((item) => (
                <li key={item.name}>
                  <span>{item.name}</span> <span className="muted">{stateLabel(item.status)} · {item.cost_usd === null ? "cost unknown" : usd(item.cost_usd)}{item.seed !== null ? ` · seed ${item.seed}` : ""}</span>
                  <div className="item-outputs">
                    {Object.entries(item.outputs).map(([name, value]) => {
                      const media = mediaOf(value);
                      return media?.url ? <Media key={name} media={media} label={`${item.name} ${name}`} /> : <span key={name}>{name}: {String(value)}</span>;
                    })}
                  </div>
                </li>
              ))}
            </ul>
          </div>
        )}
        <h4>{selected ? `Events of ${selected}` : "Events"}</h4>
        <ol className="log">
          {stepEvents.map((e) => <li key={e.id}><span className="muted">{e.step ?? "run"}</span> {e.message}</li>)}
        </ol>
      </section>
    </div>
  );
}

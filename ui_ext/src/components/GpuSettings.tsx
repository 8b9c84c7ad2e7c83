// GPU settings (ComfyUI/SwarmUI URLs, provider, vast.ai instance) and the vast.ai instances with start/stop.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, describeError, request } from "../api";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { ErrorMessage } from "../ui/ErrorMessage";
import { Skeleton } from "../ui/Skeleton";
import { usd } from "../format";
import type { GpuConfig, Instance } from "../types";

type Form = Record<"gpu_provider" | "comfyui_url" | "swarmui_url" | "vastai_instance_id" | "vastai_api_key" | "portal_token", string>;

function toForm(config: GpuConfig): Form {
  return {
    gpu_provider: config.gpu_provider,
    comfyui_url: config.comfyui_url ?? "",
    swarmui_url: config.swarmui_url ?? "",
    vastai_instance_id: config.vastai_instance_id ? String(config.vastai_instance_id) : "",
    vastai_api_key: config.vastai_api_key ?? "",
    portal_token: config.portal_token ?? "",
  };
}

const SETTLED: Record<"start" | "stop", string[]> = { start: ["running"], stop: ["exited", "stopped", "offline"] };

function Instances({ provider }: { provider: string }) {
  const [instances, setInstances] = useState<Instance[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<{ id: number; action: "start" | "stop" } | null>(null);
  const [stopping, setStopping] = useState<Instance | null>(null);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  const load = useCallback(async () => {
    setError(null);
    try {
      const list = await api.instances();
      setInstances(list.instances);
      return list.instances;
    } catch (e) {
      setError(e);
      return null;
    }
  }, []);
  useEffect(() => {
    if (provider === "vastai") void load();
  }, [provider, load]);
  if (provider !== "vastai") return null;

  async function set(id: number, action: "start" | "stop") {
    setStopping(null);
    setBusy({ id, action });
    try {
      const updated = await api.setInstance(id, action);
      setInstances((current) => current.map((i) => (i.id === id ? updated : i)));
      // The state follows until it settles: polled with a growing pause (1 s, then ×1.5, at most 10 s; 5 min).
      let pause = 1000;
      const deadline = Date.now() + 5 * 60_000;
      let state = updated.actual_status ?? "";
      while (alive.current && !SETTLED[action].includes(state) && Date.now() < deadline) {
        await new Promise((resolve) => window.setTimeout(resolve, pause));
        pause = Math.min(pause * 1.5, 10_000);
        const now = await request<Instance>("GET", `/api/vastai/instances/${id}`);
        setInstances((current) => current.map((i) => (i.id === id ? now : i)));
        state = now.actual_status ?? state;
      }
    } catch (e) {
      setError(e);
    } finally {
      if (alive.current) setBusy(null);
    }
  }

  return (
    <section aria-labelledby="instances-title">
      <h3 id="instances-title">vast.ai instances</h3>
      <button type="button" onClick={() => void load()}>Refresh</button>
      <ErrorMessage error={error} onRetry={() => void load()} />
      <p role="status" className="muted">
        {busy ? `${busy.action === "start" ? "Starting" : "Stopping"} instance ${busy.id}… the state below follows it.` : ""}
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Instance</th>
            <th scope="col">State</th>
            <th scope="col">GPU</th>
            <th scope="col">$/hour</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {instances.map((i) => (
            <tr key={i.id}>
              <td data-label="Instance">{i.id}{i.selected ? " (selected)" : ""}{i.label ? ` — ${i.label}` : ""}</td>
              <td data-label="State" data-testid={`instance-${i.id}-state`}>{i.actual_status ?? "unknown"}{i.status_msg ? ` — ${i.status_msg}` : ""}</td>
              <td data-label="GPU">{i.num_gpus && i.num_gpus > 1 ? `${i.num_gpus}× ` : ""}{i.gpu_name}</td>
              <td data-label="$/hour">{usd(i.dph_total)}</td>
              <td data-label="Actions">
                <button type="button" disabled={busy !== null || i.actual_status === "running"} onClick={() => void set(i.id, "start")}>Start {i.id}</button>
                <button type="button" className="danger" disabled={busy !== null || i.actual_status !== "running"} onClick={() => setStopping(i)}>Stop {i.id}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ConfirmDialog
        open={stopping !== null}
        title={`Stop instance ${stopping?.id}?`}
        confirmLabel={`Stop ${stopping?.id}`}
        onConfirm={() => stopping && void set(stopping.id, "stop")}
        onCancel={() => setStopping(null)}
      >
        <p>Runs on it fail, and starting it again takes minutes (its disk is kept and still billed).</p>
      </ConfirmDialog>
    </section>
  );
}

function Setup({ onSaved }: { onSaved: (config: GpuConfig) => void }) {
  const [busy, setBusy] = useState<"discover" | "check" | null>(null);
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  async function run(what: "discover" | "check") {
    setBusy(what);
    setError(null);
    setLines([]);
    try {
      if (what === "discover") {
        const saved = await request<GpuConfig>("POST", "/api/gpu/discover");
        onSaved(saved);
        setLines([`Found and saved: ComfyUI ${saved.comfyui_url ?? "—"}, SwarmUI ${saved.swarmui_url ?? "—"}.`]);
      } else {
        const found = await request<{ ok: boolean; lines: string[]; error: string | null }>("POST", "/api/gpu/check");
        setLines(found.ok ? [...found.lines, "The GPU is ready."] : found.lines);
        if (!found.ok) setError(new Error(found.error ?? "the check failed"));
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  }
  return (
    <section aria-labelledby="gpu-setup-title">
      <h3 id="gpu-setup-title">Find and check</h3>
      <div className="actions">
        <button type="button" disabled={busy !== null} onClick={() => void run("discover")}>{busy === "discover" ? "Discovering…" : "Discover URLs (vast.ai)"}</button>
        <button type="button" disabled={busy !== null} onClick={() => void run("check")}>{busy === "check" ? "Checking…" : "Check the GPU"}</button>
      </div>
      <ul role="status" className="log">
        {lines.map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ul>
      <ErrorMessage error={error} />
    </section>
  );
}

export function GpuSettings() {
  const [config, setConfig] = useState<GpuConfig | null>(null);
  const [form, setForm] = useState<Form | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  const [loadError, setLoadError] = useState<unknown>(null);

  const loadConfig = useCallback(() => {
    setLoadError(null);
    api.gpuConfig().then((c) => {
      setConfig(c);
      setForm(toForm(c));
    }, (e) => setLoadError(e));
  }, []);
  useEffect(loadConfig, [loadConfig]);
  if (!form || !config)
    return (
      <section className="panel" aria-labelledby="gpu-title">
        <h2 id="gpu-title">GPU</h2>
        {loadError ? <ErrorMessage error={loadError} onRetry={loadConfig} /> : <Skeleton label="Loading GPU settings…" />}
      </section>
    );

  const field = (name: keyof Form, label: string, type = "text", hint?: string) => (
    <div className="field wide">
      <label htmlFor={`gpu-${name}`}>{label}</label>
      <input id={`gpu-${name}`} type={type} autoComplete="off" value={form[name]} onChange={(e) => setForm({ ...form, [name]: e.target.value })} aria-describedby={hint ? `gpu-${name}-hint` : undefined} />
      {hint && <small id={`gpu-${name}-hint`}>{hint}</small>}
    </div>
  );

  async function save(event: React.FormEvent) {
    event.preventDefault();
    if (!form) return;
    setBusy(true);
    setError("");
    setMessage("");
    try {
      const saved = await api.saveGpuConfig({
        gpu_provider: form.gpu_provider,
        comfyui_url: form.comfyui_url || null,
        swarmui_url: form.swarmui_url || null,
        vastai_instance_id: form.vastai_instance_id ? Number(form.vastai_instance_id) : null,
        vastai_api_key: form.vastai_api_key || null,
        portal_token: form.portal_token || null,
      });
      setConfig(saved);
      setForm(toForm(saved));
      const checked = Object.entries(saved.checked).map(([k, v]) => `${k}: ${v}`);
      setMessage(`Saved.${checked.length ? ` Checked ${checked.join("; ")}.` : ""}`);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="gpu-title">
      <h2 id="gpu-title">GPU</h2>
      <form onSubmit={save}>
        <div className="field">
          <label htmlFor="gpu-provider">Provider</label>
          <select id="gpu-provider" value={form.gpu_provider} onChange={(e) => setForm({ ...form, gpu_provider: e.target.value })}>
            <option value="none">none</option>
            <option value="local">local (this machine or your network)</option>
            <option value="vastai">vast.ai</option>
          </select>
        </div>
        {field("comfyui_url", "ComfyUI URL", "url", "Checked with GET /system_stats before saving.")}
        {field("swarmui_url", "SwarmUI URL", "url")}
        {form.gpu_provider === "vastai" && (
          <>
            {field("vastai_instance_id", "vast.ai instance id", "number")}
            {field("vastai_api_key", "vast.ai API key", "password", "Shown masked; leave as is to keep it.")}
            {field("portal_token", "Instance portal token (WEB_PASSWORD)", "password")}
          </>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>{busy ? "Checking…" : "Save GPU settings"}</button>
        </div>
        <p role="status">{message}</p>
        {error && <p className="error" role="alert">{error}</p>}
      </form>
      <Setup onSaved={(saved) => { setConfig(saved); setForm(toForm(saved)); }} />
      <Instances provider={config.gpu_provider} />
    </section>
  );
}

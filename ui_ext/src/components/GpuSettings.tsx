// GPU settings (ComfyUI/SwarmUI URLs, provider, vast.ai instance) and the vast.ai instances with start/stop.
import { useCallback, useEffect, useState } from "react";
import { api, describeError } from "../api";
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

function Instances({ provider }: { provider: string }) {
  const [instances, setInstances] = useState<Instance[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState<number | null>(null);
  const load = useCallback(() => {
    setError("");
    api.instances().then((list) => setInstances(list.instances), (e) => setError(describeError(e)));
  }, []);
  useEffect(() => {
    if (provider === "vastai") load();
  }, [provider, load]);
  if (provider !== "vastai") return null;

  async function set(id: number, action: "start" | "stop") {
    setBusy(id);
    try {
      const updated = await api.setInstance(id, action);
      setInstances((current) => current.map((i) => (i.id === id ? updated : i)));
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="instances-title">
      <h3 id="instances-title">vast.ai instances</h3>
      <button type="button" onClick={load}>Refresh</button>
      <p className="error" role="alert">{error}</p>
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
              <td>{i.id}{i.selected ? " (selected)" : ""}{i.label ? ` — ${i.label}` : ""}</td>
              <td>{i.actual_status ?? "unknown"}{i.status_msg ? ` — ${i.status_msg}` : ""}</td>
              <td>{i.num_gpus && i.num_gpus > 1 ? `${i.num_gpus}× ` : ""}{i.gpu_name}</td>
              <td>{usd(i.dph_total)}</td>
              <td>
                <button type="button" disabled={busy === i.id || i.actual_status === "running"} onClick={() => set(i.id, "start")}>Start {i.id}</button>
                <button type="button" disabled={busy === i.id || i.actual_status !== "running"} onClick={() => set(i.id, "stop")}>Stop {i.id}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
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
        <p className="error" role="alert">{error}</p>
      </form>
      <Instances provider={config.gpu_provider} />
    </section>
  );
}

// A small typed client for the reelflow API. The session cookie (HttpOnly, set by POST /api/session) goes with
// every request; the custom header shows the server a request is the panel's own, which a cross-site form cannot send.
import type { GpuConfig, Health, Instance, Model, Pipeline, Run, RunPage, Spec, Upload } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "X-Reelflow-Request": "1" };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (response.status === 204) return undefined as T;
  const data = await response.json().catch(() => ({ error: response.statusText, field: null }));
  if (!response.ok) throw new ApiError(response.status, data.error ?? response.statusText, data.field ?? null);
  return data as T;
}

export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const api = {
  health: () => request<Health>("GET", "/api/health"),
  session: () => request<{ authenticated: boolean; auth_required: boolean }>("GET", "/api/session"),
  login: (value: string) => request<void>("POST", "/api/session", { token: value }),
  models: (params: { duration?: number; resolution?: string; gpu_usd_per_hour?: number; audio?: boolean } = {}) =>
    request<Model[]>("GET", `/api/models${query(params)}`),
  runs: (params: { limit?: number; offset?: number; status?: string; model?: string } = {}) =>
    request<RunPage>("GET", `/api/runs${query(params)}`),
  run: (id: string) => request<Run>("GET", `/api/runs/${encodeURIComponent(id)}`),
  createRun: (spec: Spec & { pipeline_id?: string; force?: boolean }) => request<Run>("POST", "/api/runs", spec),
  cancelRun: (id: string) => request<Run>("POST", `/api/runs/${encodeURIComponent(id)}/cancel`),
  retryRun: (id: string) => request<Run>("POST", `/api/runs/${encodeURIComponent(id)}/retry`),
  upload: (file: File) => {
    const form = new FormData();
    form.append("file", file);
    return request<Upload>("POST", "/api/uploads", form);
  },
  pipelines: () => request<{ total: number; pipelines: Pipeline[] }>("GET", "/api/pipelines"),
  savePipeline: (name: string, spec: Spec, id?: string) =>
    id ? request<Pipeline>("PUT", `/api/pipelines/${id}`, { name, spec }) : request<Pipeline>("POST", "/api/pipelines", { name, spec }),
  deletePipeline: (id: string) => request<void>("DELETE", `/api/pipelines/${id}`),
  gpuConfig: () => request<GpuConfig>("GET", "/api/gpu/config"),
  saveGpuConfig: (changes: Record<string, unknown>) => request<GpuConfig>("PUT", "/api/gpu/config", changes),
  instances: () => request<{ instances: Instance[]; selected_id: number | null }>("GET", "/api/vastai/instances"),
  setInstance: (id: number, action: "start" | "stop") => request<Instance>("POST", `/api/vastai/instances/${id}/${action}`),
};

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.field ? `${error.field}: ${error.message}` : error.message;
  return error instanceof Error ? error.message : String(error);
}

// The login URL (`/?token=...`, printed by `reelflow serve` and `reelflow up`): the token leaves the address bar and
// the history at once, and is traded for the session cookie.
export async function exchangeLoginToken(): Promise<void> {
  const params = new URLSearchParams(window.location.search);
  const value = params.get("token");
  if (!value) return;
  params.delete("token");
  const rest = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : "") + window.location.hash);
  await api.login(value).catch(() => undefined);
}

// The runs gallery's and run page's calls: filtered pages of runs, one run, bulk download and cancel, re-run.
import { query, request } from "../../api";
import type { Run, RunEvent, Spec, Step } from "../../types";

export interface CardStep extends Step {
  reused_from?: string | null;
}

export interface RunCard extends Run {
  kind: "video" | "pipeline";
  pipeline_id: string | null;
  pipeline_name: string | null;
  model_name: string | null;
  prompt: string | null;
  seed: number | null;
  duration_s: number | null;
  width: number | null;
  height: number | null;
  elapsed_s: number | null;
  batch_id: string | null;
  started_at: string | null;
  steps: CardStep[];
  input_path: string | null;
}

export interface CardPage {
  total: number;
  limit: number;
  offset: number;
  runs: RunCard[];
  as_of: string | null;
  next_offset: number | null;
}

// The filters a gallery URL can carry (#/runs?q=fox&status=failed,cancelled&sort=-cost&view=table).
export const FILTER_KEYS = ["q", "status", "model", "backend", "batch_id", "pipeline_id", "kind", "since", "until", "sort"] as const;
export type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

export function filtersOf(params: URLSearchParams): Filters {
  const found: Filters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) found[key] = value;
  }
  return found;
}

export const runsApi = {
  page: (filters: Filters, limit: number, offset = 0, asOf?: string | null) =>
    request<CardPage>("GET", `/api/runs${query({ ...filters, limit, offset: offset || undefined, as_of: asOf ?? undefined })}`),
  run: (id: string) => request<RunCard>("GET", `/api/runs/${encodeURIComponent(id)}`),
  cancel: (id: string) => request<Run>("POST", `/api/runs/${encodeURIComponent(id)}/cancel`),
  rerun: (spec: Spec) => request<Run>("POST", "/api/runs", { ...spec, force: true }),
  downloadUrl: (ids: string[]) => `/api/runs/download${query({ ids: ids.join(",") })}`,
};

export type { RunEvent };

// The pipeline builder's and the pipeline run page's calls to the API, and their types.
import { ApiError, request } from "../../api";
import type { ModelInputs, Run } from "../../types";

export type ValueType = "text" | "texts" | "image" | "video" | "number";
export type InputType = "text" | "texts" | "image" | "number" | "choice";

export interface KindField {
  name: string;
  required: boolean;
  type: ValueType | null;
  list: boolean;
}

export interface StepKindInfo {
  kind: string;
  label: string;
  description: string;
  fields: KindField[];
  outputs: Record<string, ValueType>;
  params: string[];
  models: string[];
}

export interface PaletteModel {
  id: string;
  name: string;
  kind: string;
  backend: string;
  inputs: ModelInputs;
  price: string;
  available: boolean;
  missing: string[];
}

export interface Palette {
  kinds: StepKindInfo[];
  input_types: InputType[];
  models: PaletteModel[];
  templates: { name: string; yaml: string }[];
}

export interface InputDef {
  type: InputType;
  description?: string;
  default?: unknown;
  required?: boolean;
  choices?: string[];
  min?: number;
  max?: number;
}

export interface StepDef {
  id: string;
  kind: string;
  model?: string;
  for_each?: string;
  variants?: number;
  prompt?: string | string[];
  negative_prompt?: string | string[];
  image?: string;
  end_image?: string;
  video?: string;
  videos?: string[];
  params?: Record<string, unknown>;
  times?: number;
  target?: string;
  timeout?: number;
  on_timeout?: "cancel" | "approve";
}

export interface Definition {
  name: string;
  description?: string;
  inputs?: Record<string, InputDef>;
  steps: StepDef[];
  outputs?: Record<string, string>;
}

export interface Problem {
  step: string | null;
  field: string;
  message: string;
}

export interface StepEstimate {
  step: string;
  kind: string;
  model: string | null;
  count: number;
  usd: string | null;
  note: string;
}

export interface Estimate {
  pipeline: string;
  steps: StepEstimate[];
  total_usd: string | null;
  unknown: string[];
}

export interface Checked {
  valid: boolean;
  errors: Problem[];
  warnings: Problem[];
  definition: Definition | null;
  yaml: string | null;
  estimate: Estimate | null;
}

export interface SavedPipeline {
  pipeline_id: string;
  name: string;
  definition: Definition;
  version: number;
  saved_as: "definition" | "spec";
  warnings: Problem[];
  updated_at: string;
}

export interface MediaOut {
  url: string | null;
  content_type?: string;
  key?: string;
}

export interface GraphItem {
  name: string;
  status: string;
  cost_usd: number | null;
  error: string | null;
  seed: number | null;
  fan_index: number | null;
  attempts: number;
  outputs: Record<string, MediaOut | string>;
}

export interface GraphStep {
  id: string;
  kind: string;
  model: string | null;
  depends_on: string[];
  status: string;
  cost_usd: number | null;
  error: string | null;
  items: GraphItem[];
}

export interface RunGraph {
  run: Run & { prefect_url: string | null };
  kind: "pipeline" | "video";
  definition: Definition | null;
  steps: GraphStep[];
  final_outputs: Record<string, unknown>;
}

/** Check a definition without saving it. One with problems answers 422 with the whole check (every error, the
 * YAML and JSON forms) beside the usual error: the builder wants all of it, so that 422 is an answer here. */
async function check(definition: Definition | string, inputs: Record<string, unknown> = {}): Promise<Checked> {
  const response = await fetch("/api/pipelines/check", {
    method: "POST", headers: { "X-Reelflow-Request": "1", "Content-Type": "application/json" },
    body: JSON.stringify({ definition, inputs }),
  });
  const data = await response.json().catch(() => ({ error: response.statusText, field: null }));
  if (response.ok || (response.status === 422 && "valid" in data)) return data as Checked;
  throw new ApiError(response.status, data.error ?? response.statusText, data.field ?? null);
}

export const pipelinesApi = {
  palette: () => request<Palette>("GET", "/api/pipelines/palette"),
  check,
  list: () => request<{ total: number; pipelines: SavedPipeline[] }>("GET", "/api/pipelines?limit=500"),
  get: (id: string) => request<SavedPipeline>("GET", `/api/pipelines/${encodeURIComponent(id)}`),
  save: (definition: Definition, id?: string | null) =>
    id
      ? request<SavedPipeline>("PUT", `/api/pipelines/${encodeURIComponent(id)}`, { definition, name: definition.name })
      : request<SavedPipeline>("POST", "/api/pipelines", { definition }),
  remove: (id: string) => request<void>("DELETE", `/api/pipelines/${encodeURIComponent(id)}`),
  start: (id: string, inputs: Record<string, unknown>) =>
    request<Run>("POST", `/api/pipelines/${encodeURIComponent(id)}/runs`, { inputs }),
  graph: (runId: string) => request<RunGraph>("GET", `/api/runs/${encodeURIComponent(runId)}/graph`),
  answer: (runId: string, step: string, body: { decision: "approve" | "reject" | "redo"; prompt?: string; seed?: number; note?: string }) =>
    request<{ status: string }>("POST", `/api/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step)}/approve`, body),
  resume: (runId: string) => request<Run>("POST", `/api/runs/${encodeURIComponent(runId)}/resume`),
  cancel: (runId: string) => request<Run>("POST", `/api/runs/${encodeURIComponent(runId)}/cancel`),
};

/** The media an output value points at, or null. */
export function mediaOf(value: unknown): MediaOut | null {
  if (value && typeof value === "object" && "url" in value) return value as MediaOut;
  return null;
}

export function isVideo(media: MediaOut): boolean {
  return (media.content_type ?? "").startsWith("video/") || /\.(mp4|webm|mov)$/i.test(media.url ?? "");
}

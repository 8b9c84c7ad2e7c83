// Shapes of the reelflow REST API (see /docs on the server for the full OpenAPI schema).

export type RunStatus = "queued" | "running" | "waiting" | "completed" | "failed" | "cancelled";

export interface Price {
  unit: string;
  text: string;
  estimate_usd: number | null;
  source?: string | null;
  confirmed?: boolean;
}

export interface ModelInputs {
  prompt?: "required" | "optional" | "unused";
  negative_prompt?: boolean;
  durations?: number[];
  duration_range?: [number, number];
  default_duration?: number;
  fps_range?: [number, number];
  default_fps?: number;
  resolutions?: string[];
  width_range?: [number, number];
  height_range?: [number, number];
  size_multiple?: number;
  prompt_max_chars?: number;
  negative_prompt_max_chars?: number;
  default_resolution?: string;
  seed?: boolean;
  end_image?: "unused" | "optional" | "required";
  audio?: boolean;
}

export interface Model {
  id: string;
  name: string;
  kind: "i2v" | "t2v" | "t2i" | "i2i" | "llm";
  backend: string;
  ai: boolean;
  description: string;
  speed_hint: string;
  inputs: ModelInputs;
  price: Price;
  available: boolean;
  missing: string[];
  unchecked: string[];
}

export interface Output {
  role: string;
  url: string | null;
  content_type: string;
  bytes: number;
  width: number | null;
  height: number | null;
  duration_s: number | null;
}

export interface Step {
  name: string;
  backend: string;
  status: string;
  attempts: number;
  cost_usd: number | null;
  error: string | null;
}

export interface Run {
  run_id: string;
  status: RunStatus;
  cached: boolean;
  model: string;
  backend: string;
  spec: Spec;
  progress: number;
  cost_usd: number | null;
  error: string | null;
  video_url: string | null;
  poster_url: string | null;
  input_url: string | null;
  prefect_url: string | null;
  created_at: string;
  finished_at: string | null;
  outputs: Output[];
  steps: Step[];
}

export interface RunPage {
  total: number;
  limit: number;
  offset: number;
  runs: Run[];
}

export interface RunEvent {
  id: number;
  run_id: string;
  step: string | null;
  kind: string;
  message: string;
  progress: number | null;
  created_at: string;
}

export interface Spec {
  model?: string;
  image?: string;
  image_prompt?: string;
  image_model?: string;
  end_image?: string;
  audio?: boolean;
  prompt?: string;
  negative_prompt?: string;
  duration?: number;
  fps?: number;
  resolution?: string;
  seed?: number;
}

export interface Pipeline {
  pipeline_id: string;
  name: string;
  spec: Spec;
  updated_at: string;
}

export interface Upload {
  upload_id: string;
  image: string;
  url: string;
  width: number;
  height: number;
}

export interface GpuConfig {
  provider: "none" | "local" | "vastai";
  gpu_provider: "none" | "local" | "vastai";
  comfyui_url: string | null;
  swarmui_url: string | null;
  vastai_instance_id: number | null;
  vastai_api_key: string | null;
  portal_token: string | null;
  saved: boolean;
  checked: Record<string, string>;
}

export interface Instance {
  id: number;
  actual_status: string | null;
  status_msg: string | null;
  gpu_name: string | null;
  num_gpus: number | null;
  dph_total: number | null;
  label: string | null;
  selected: boolean;
}

export interface Health {
  status: string;
  version: string;
  auth_required: boolean;
  panel: boolean;
  max_input_bytes: number;
  max_input_pixels: number;
}

export const FINISHED: RunStatus[] = ["completed", "failed", "cancelled"];

// Hash routes. Each view keeps its own state (filters, sort, selection) in the hash's query string, so a view can be
// shared or reloaded: #/new, #/runs?status=failed, #/runs/<id>, #/pipelines, #/pipelines/new, #/pipelines/<id>,
// #/pipeline-runs/<id>, #/spend, #/gpu.
import { useEffect, useState } from "react";

export type Route =
  | { view: "new"; pipelineId?: string; from?: string }
  | { view: "runs"; params: URLSearchParams }
  | { view: "run"; runId: string }
  | { view: "pipelines" }
  | { view: "pipeline"; pipelineId: string | null }
  | { view: "pipeline-run"; runId: string }
  | { view: "spend" }
  | { view: "gpu" };

export function parseRoute(hash: string): Route {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(search);
  if (parts[0] === "runs" && parts[1]) return { view: "run", runId: parts[1] };
  if (parts[0] === "runs") return { view: "runs", params };
  if (parts[0] === "pipelines" && parts[1]) return { view: "pipeline", pipelineId: parts[1] === "new" ? null : parts[1] };
  if (parts[0] === "pipelines") return { view: "pipelines" };
  if (parts[0] === "pipeline-runs" && parts[1]) return { view: "pipeline-run", runId: parts[1] };
  if (parts[0] === "spend") return { view: "spend" };
  if (parts[0] === "gpu") return { view: "gpu" };
  return { view: "new", pipelineId: params.get("pipeline") ?? undefined, from: params.get("from") ?? undefined };
}

export function navigate(hash: string): void {
  window.location.hash = hash;
}

// Replaces the hash's query string without a new history entry (filters typed into a search box).
export function replaceParams(params: URLSearchParams): void {
  const [path] = window.location.hash.replace(/^#/, "").split("?");
  const text = params.toString();
  window.history.replaceState(null, "", `#${path}${text ? `?${text}` : ""}`);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

// Hash routes: #/new, #/runs, #/runs/<id>, #/pipelines, #/gpu.
import { useEffect, useState } from "react";

export type Route =
  | { view: "new"; pipelineId?: string }
  | { view: "runs" }
  | { view: "run"; runId: string }
  | { view: "pipelines" }
  | { view: "gpu" };

export function parseRoute(hash: string): Route {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "runs" && parts[1]) return { view: "run", runId: decodeURIComponent(parts[1]) };
  if (parts[0] === "runs") return { view: "runs" };
  if (parts[0] === "pipelines") return { view: "pipelines" };
  if (parts[0] === "gpu") return { view: "gpu" };
  const pipelineId = new URLSearchParams(search).get("pipeline") ?? undefined;
  return { view: "new", pipelineId };
}

export function navigate(hash: string): void {
  window.location.hash = hash;
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

import { lazy, Suspense, useEffect, useState } from "react";
import { api, describeError } from "./api";
import { GpuSettings } from "./components/GpuSettings";
import { NewRun } from "./components/NewRun";
import { RunDetail } from "./components/RunDetail";
import { RunList } from "./components/RunList";
import { PipelineList } from "./views/pipelines/PipelineList";
import { Spend } from "./views/spend/Spend";
import { useRoute, type Route } from "./router";

const PipelineEditor = lazy(() => import("./views/pipelines/PipelineEditor").then((m) => ({ default: m.PipelineEditor })));
const PipelineRunPage = lazy(() => import("./views/pipelines/PipelineRunPage").then((m) => ({ default: m.PipelineRunPage })));

const NAV: { href: string; label: string; views: Route["view"][] }[] = [
  { href: "#/new", label: "Make a video", views: ["new"] },
  { href: "#/runs", label: "Runs", views: ["runs", "run"] },
  { href: "#/pipelines", label: "Pipelines", views: ["pipelines", "pipeline", "pipeline-run"] },
  { href: "#/spend", label: "Spend", views: ["spend"] },
  { href: "#/gpu", label: "GPU", views: ["gpu"] },
];

function LoginField() {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  return (
    <form
      className="token"
      onSubmit={(event) => {
        event.preventDefault();
        api.login(value.trim()).then(() => window.location.reload(), (e) => setError(describeError(e)));
      }}
    >
      <label htmlFor="api-token">API token</label>
      <input id="api-token" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
      <button type="submit">Log in</button>
      {error && <span role="alert">{error}</span>}
    </form>
  );
}

export function App() {
  const route = useRoute();
  const [loggedOut, setLoggedOut] = useState(false);
  useEffect(() => {
    api.session().then((session) => setLoggedOut(session.auth_required && !session.authenticated), () => undefined);
  }, []);
  return (
    <>
      <header className="top">
        <h1>reelflow</h1>
        <nav aria-label="Main">
          {NAV.map((item) => (
            <a key={item.href} href={item.href} aria-current={item.views.includes(route.view) ? "page" : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        {loggedOut && <LoginField />}
      </header>
      <main>
        {route.view === "new" && <NewRun pipelineId={route.pipelineId} />}
        {route.view === "runs" && <RunList />}
        {route.view === "run" && <RunDetail runId={route.runId} />}
        {route.view === "pipelines" && <PipelineList />}
        <Suspense fallback={<p className="muted">Loading…</p>}>
          {route.view === "pipeline" && <PipelineEditor pipelineId={route.pipelineId} />}
          {route.view === "pipeline-run" && <PipelineRunPage runId={route.runId} />}
        </Suspense>
        {route.view === "spend" && <Spend />}
        {route.view === "gpu" && <GpuSettings />}
      </main>
    </>
  );
}

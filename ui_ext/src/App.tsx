import { useEffect, useState } from "react";
import { api, describeError } from "./api";
import { GpuSettings } from "./components/GpuSettings";
import { NewRun } from "./components/NewRun";
import { Pipelines } from "./components/Pipelines";
import { PipelineEditor } from "./views/pipelines/PipelineEditor";
import { PipelineRunPage } from "./views/pipelines/PipelineRunPage";
import { RunPage } from "./views/runs/RunPage";
import { RunsGallery } from "./views/runs/RunsGallery";
import { Spend } from "./views/spend/Spend";
import { useRoute, type Route } from "./router";

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
        {route.view === "runs" && <RunsGallery params={route.params} />}
        {route.view === "run" && <RunPage runId={route.runId} />}
        {route.view === "pipelines" && <Pipelines />}
        {route.view === "pipeline" && <PipelineEditor pipelineId={route.pipelineId} />}
        {route.view === "pipeline-run" && <PipelineRunPage runId={route.runId} />}
        {route.view === "spend" && <Spend />}
        {route.view === "gpu" && <GpuSettings />}
      </main>
    </>
  );
}

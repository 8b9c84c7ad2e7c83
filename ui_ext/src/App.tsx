import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { api } from "./api";
import { GpuSettings } from "./components/GpuSettings";
import { NewRun } from "./components/NewRun";
import { PipelineList } from "./views/pipelines/PipelineList";
import { RunPage } from "./views/runs/RunPage";
import { RunsGallery } from "./views/runs/RunsGallery";
import { useRoute, type Route } from "./router";
import { ConnectionBanner } from "./ui/ConnectionBanner";
import { explain } from "./ui/ErrorMessage";
import { Skeleton } from "./ui/Skeleton";
import { applyTheme, storedTheme, ThemeToggle } from "./ui/theme";

const Spend = lazy(() => import("./views/spend/Spend").then((m) => ({ default: m.Spend })));

applyTheme(storedTheme());

const PipelineEditor = lazy(() => import("./views/pipelines/PipelineEditor").then((m) => ({ default: m.PipelineEditor })));
const PipelineRunPage = lazy(() => import("./views/pipelines/PipelineRunPage").then((m) => ({ default: m.PipelineRunPage })));

const NAV: { href: string; label: string; views: Route["view"][] }[] = [
  { href: "#/new", label: "Make a video", views: ["new"] },
  { href: "#/runs", label: "Runs", views: ["runs", "run"] },
  { href: "#/pipelines", label: "Pipelines", views: ["pipelines", "pipeline", "pipeline-run"] },
  { href: "#/spend", label: "Spend", views: ["spend"] },
  { href: "#/gpu", label: "GPU", views: ["gpu"] },
];

const TITLES: Record<Route["view"], string> = {
  new: "Make a video",
  runs: "Runs",
  run: "Run",
  pipelines: "Pipelines",
  pipeline: "Pipeline",
  "pipeline-run": "Pipeline run",
  spend: "Spend",
  gpu: "GPU",
};

function LoginField() {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  return (
    <form
      className="token"
      onSubmit={(event) => {
        event.preventDefault();
        api.login(value.trim()).then(() => window.location.reload(), (e) => setError(explain(e).text));
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
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    api.session().then((session) => setLoggedOut(session.auth_required && !session.authenticated), () => undefined);
  }, []);
  useEffect(() => {
    // The title names the view, and focus moves to the new view (not on the first load: the page starts at the top).
    document.title = `${TITLES[route.view]} · reelflow`;
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [route.view]);
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
      <header className="top">
        <h1>reelflow</h1>
        <nav aria-label="Main">
          {NAV.map((item) => (
            <a key={item.href} href={item.href} aria-current={item.views.includes(route.view) ? "page" : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <ThemeToggle />
        {loggedOut && <LoginField />}
      </header>
      <ConnectionBanner />
      <main id="main" ref={main} tabIndex={-1} aria-label={TITLES[route.view]}>
        {route.view === "new" && <NewRun key={route.from ?? ""} pipelineId={route.pipelineId} from={route.from} />}
        {route.view === "runs" && <RunsGallery params={route.params} />}
        {route.view === "run" && <RunPage runId={route.runId} />}
        {route.view === "pipelines" && <PipelineList />}
        <Suspense fallback={<Skeleton label="Loading…" />}>
          {route.view === "pipeline" && <PipelineEditor pipelineId={route.pipelineId} />}
          {route.view === "pipeline-run" && <PipelineRunPage runId={route.runId} />}
          {route.view === "spend" && <Spend />}
        </Suspense>
        {route.view === "gpu" && <GpuSettings />}
      </main>
    </>
  );
}

// Spend per day and per model, month to date, the most expensive runs: recorded costs of finished runs. Runs
// whose cost was not recorded are counted as unknown, never as free. The chart is drawn with uPlot (this view's
// code loads only on #/spend); the same numbers are in tables for screen readers and phones.
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { request, query } from "../../api";
import { when } from "../../format";
import { ErrorMessage } from "../../ui/ErrorMessage";
import { Skeleton } from "../../ui/Skeleton";
import "./spend.css";

interface Tally {
  usd: string;
  runs: number;
  unknown_cost_runs: number;
}
interface SpendReport {
  since: string;
  until: string;
  total: Tally;
  month_to_date: Tally;
  days: (Tally & { day: string })[];
  models: (Tally & { model: string })[];
  most_expensive: { run_id: string; model: string; kind: string; status: string; usd: string; prompt: string | null; created_at: string }[];
}

const RANGES = [7, 30, 90, 365];

function money(usd: string): string {
  const value = Number(usd);
  return value === 0 ? "$0" : value < 0.01 ? `$${usd}` : `$${value.toFixed(2)}`;
}

function unknown(tally: Tally): string {
  return tally.unknown_cost_runs ? ` + ${tally.unknown_cost_runs} run${tally.unknown_cost_runs === 1 ? "" : "s"} of unknown cost` : "";
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function Chart({ days }: { days: SpendReport["days"] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const style = getComputedStyle(document.documentElement);
    const color = (name: string) => style.getPropertyValue(name).trim();
    const x = days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
    const y = days.map((d) => Number(d.usd));
    const plot = new uPlot(
      {
        width: element.clientWidth,
        height: 220,
        legend: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max, 0.01) * 1.1] } },
        axes: [
          { stroke: color("--muted"), grid: { stroke: color("--line") } },
          { stroke: color("--muted"), grid: { stroke: color("--line") }, values: (_u, ticks) => ticks.map((t) => `$${t.toFixed(2)}`) },
        ],
        series: [{}, { label: "USD", stroke: color("--accent"), fill: color("--info-bg"), width: 2, points: { show: days.length <= 31 } }],
      },
      [x, y],
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height: 220 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [days]);
  return <div ref={box} className="spend-chart" aria-hidden="true" />;
}

export function Spend() {
  const [range, setRange] = useState(30);
  const today = new Date();
  const since = isoDay(new Date(today.getTime() - (range - 1) * 86_400_000));
  const report = useQuery({
    queryKey: ["spend", range],
    queryFn: () => request<SpendReport>("GET", `/api/spend${query({ since, until: isoDay(today) })}`),
  });
  return (
    <section className="panel" aria-labelledby="spend-title">
      <h2 id="spend-title">Spend</h2>
      <div className="field spend-range">
        <label htmlFor="spend-range">Period</label>
        <select id="spend-range" value={range} onChange={(e) => setRange(Number(e.target.value))}>
          {RANGES.map((days) => (
            <option key={days} value={days}>last {days} days</option>
          ))}
        </select>
      </div>
      {report.isPending ? (
        <Skeleton label="Loading spend…" lines={5} />
      ) : report.isError ? (
        <ErrorMessage error={report.error} onRetry={() => void report.refetch()} />
      ) : (
        <>
          <dl className="spend-totals">
            <div>
              <dt>This month so far</dt>
              <dd>{money(report.data.month_to_date.usd)}{unknown(report.data.month_to_date)}</dd>
            </div>
            <div>
              <dt>Last {range} days</dt>
              <dd>{money(report.data.total.usd)}{unknown(report.data.total)} · {report.data.total.runs} runs</dd>
            </div>
          </dl>
          <p className="muted">From the costs recorded on finished runs; no budget caps are set in reelflow yet.</p>
          <figure className="spend-figure">
            <Chart days={report.data.days} />
            <figcaption className="muted">Spend per day (UTC). The numbers are in the table below.</figcaption>
          </figure>
          <details>
            <summary>Spend per day as a table</summary>
            <table>
              <thead>
                <tr><th scope="col">Day</th><th scope="col">Spend</th><th scope="col">Runs</th><th scope="col">Unknown cost</th></tr>
              </thead>
              <tbody>
                {report.data.days.map((d) => (
                  <tr key={d.day}>
                    <td data-label="Day">{d.day}</td>
                    <td data-label="Spend">{money(d.usd)}</td>
                    <td data-label="Runs">{d.runs}</td>
                    <td data-label="Unknown cost">{d.unknown_cost_runs}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
          <h3>Per model</h3>
          {report.data.models.length === 0 ? (
            <p>No finished runs in this period.</p>
          ) : (
            <table>
              <thead>
                <tr><th scope="col">Model</th><th scope="col">Spend</th><th scope="col">Runs</th><th scope="col">Unknown cost</th></tr>
              </thead>
              <tbody>
                {report.data.models.map((m) => (
                  <tr key={m.model}>
                    <td data-label="Model">{m.model}</td>
                    <td data-label="Spend">{money(m.usd)}</td>
                    <td data-label="Runs">{m.runs}</td>
                    <td data-label="Unknown cost">{m.unknown_cost_runs}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Most expensive runs</h3>
          {report.data.most_expensive.length === 0 ? (
            <p>No paid runs in this period.</p>
          ) : (
            <ol className="spend-top">
              {report.data.most_expensive.map((r) => (
                <li key={r.run_id}>
                  <a href={r.kind === "pipeline" ? `#/pipeline-runs/${r.run_id}` : `#/runs/${r.run_id}`}>{money(r.usd)} · {r.model}</a>{" "}
                  <span className="muted">{r.prompt ? `“${r.prompt.slice(0, 80)}” · ` : ""}{r.status} · {when(r.created_at)}</span>
                </li>
              ))}
            </ol>
          )}
        </>
      )}
    </section>
  );
}

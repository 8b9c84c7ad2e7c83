// One step (or the pipeline's inputs) as a graph node: typed input handles on the left, output handles on the
// right; its state, progress, thumbnail, cost, errors and warnings when it has them.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { isVideo, type MediaOut, type Problem, type ValueType } from "./api";

export interface Port {
  name: string;
  type: ValueType | "any" | "list" | null;
}

export interface StepNodeData extends Record<string, unknown> {
  title: string;
  subtitle: string;
  inputs: Port[];
  outputs: Port[];
  status?: string;
  progress?: number | null;
  thumb?: MediaOut | null;
  cost?: string;
  estimate?: string;
  errors?: Problem[];
  warnings?: Problem[];
}

export type StepNodeType = Node<StepNodeData, "step">;

const STATE_LABEL: Record<string, string> = { pending: "queued", queued: "queued", waiting: "waiting for approval" };

export function stateLabel(status: string): string {
  return STATE_LABEL[status] ?? status;
}

export function StepNode({ id, data }: NodeProps<StepNodeType>) {
  const errors = data.errors ?? [];
  const rows = Math.max(data.inputs.length, data.outputs.length);
  return (
    <div className={`step-node${data.status ? ` state-${data.status}` : ""}${errors.length ? " has-error" : ""}`} data-testid={`node-${id}`}>
      <div className="step-node-head">
        <strong>{data.title}</strong>
        <span className="step-node-kind">{data.subtitle}</span>
      </div>
      {data.status && (
        <div className="step-node-state">
          <span className={`state-chip state-chip-${data.status}`} data-testid={`state-${id}`}>{stateLabel(data.status)}</span>
          {data.cost && <span>{data.cost}</span>}
        </div>
      )}
      {data.status === "running" && typeof data.progress === "number" && (
        <progress max={1} value={data.progress} aria-label={`${data.title} progress`} />
      )}
      {data.thumb?.url && (isVideo(data.thumb) ? (
        <video className="step-node-thumb" src={data.thumb.url} muted preload="metadata" aria-label={`${data.title} output`} />
      ) : (
        <img className="step-node-thumb" src={data.thumb.url} alt={`${data.title} output`} />
      ))}
      {data.estimate && <div className="step-node-estimate">{data.estimate}</div>}
      <div className="step-node-ports" style={{ minHeight: rows * 18 }}>
        {data.inputs.map((port, i) => (
          <div key={`in-${port.name}`} className="port port-in" style={{ top: 6 + i * 18 }}>
            <Handle type="target" position={Position.Left} id={port.name} className={`handle-${port.type ?? "any"}`} />
            <span>{port.name}</span>
          </div>
        ))}
        {data.outputs.map((port, i) => (
          <div key={`out-${port.name}`} className="port port-out" style={{ top: 6 + i * 18 }}>
            <span>{port.name}</span>
            <Handle type="source" position={Position.Right} id={port.name} className={`handle-${port.type ?? "any"}`} />
          </div>
        ))}
      </div>
      {errors.map((e) => (
        <p key={`${e.field}:${e.message}`} className="step-node-error">{e.field}: {e.message}</p>
      ))}
      {(data.warnings ?? []).map((w) => (
        <p key={w.message} className="step-node-warning">{w.message}</p>
      ))}
    </div>
  );
}

export const nodeTypes = { step: StepNode };

// A definition as a graph: its steps (and its inputs) as nodes, its references as edges between typed handles, laid
// out left to right by dagre. Shared by the builder and the run page so a pipeline looks the same in both.
import dagre from "@dagrejs/dagre";
import type { Definition, InputType, StepDef, StepKindInfo, ValueType } from "./api";

export const INPUTS_NODE = "__inputs";
export const NODE_W = 200;
export const NODE_H = 110;

export interface Ref {
  source: "input" | "step" | "item" | "index";
  name?: string;
  output?: string;
  index?: number;
}

const REF = /^\$(?:inputs\.([a-z][a-z0-9_]*)|(item|index)|([a-z][a-z0-9_]*)(?:\[(\d{1,3})\])?\.([a-z][a-z0-9_]*))$/;

export function parseRef(text: unknown): Ref | null {
  if (typeof text !== "string") return null;
  const m = REF.exec(text);
  if (!m) return null;
  if (m[1]) return { source: "input", name: m[1] };
  if (m[2]) return { source: m[2] as "item" | "index" };
  return { source: "step", name: m[3], output: m[5], index: m[4] === undefined ? undefined : Number(m[4]) };
}

export interface GraphEdge {
  id: string;
  source: string;
  sourceHandle: string;
  target: string;
  targetHandle: string;
  data: { ref: string };
}

const REF_FIELDS = ["for_each", "prompt", "negative_prompt", "image", "end_image", "video", "videos"] as const;

/** Every reference of a step: (field, reference text). */
export function stepRefs(step: StepDef): [string, string][] {
  const found: [string, string][] = [];
  for (const field of REF_FIELDS) {
    const value = step[field];
    for (const part of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      if (typeof part === "string" && part.startsWith("$") && !part.startsWith("$$")) found.push([field, part]);
    }
  }
  return found;
}

export function edgesOf(definition: Definition): GraphEdge[] {
  const ids = new Set(definition.steps.map((s) => s.id));
  const edges: GraphEdge[] = [];
  for (const step of definition.steps) {
    if (step.kind === "approve" && step.target && ids.has(step.target)) {
      edges.push({ id: `${step.target}>${step.id}:target`, source: step.target, sourceHandle: "judged", target: step.id, targetHandle: "target", data: { ref: step.target } });
    }
    for (const [field, text] of stepRefs(step)) {
      const ref = parseRef(text);
      if (ref?.source === "input" && ref.name && definition.inputs?.[ref.name]) {
        edges.push({ id: `in:${ref.name}>${step.id}:${field}:${edges.length}`, source: INPUTS_NODE, sourceHandle: ref.name, target: step.id, targetHandle: field, data: { ref: text } });
      } else if (ref?.source === "step" && ref.name && ids.has(ref.name)) {
        edges.push({ id: `${ref.name}.${ref.output}>${step.id}:${field}:${edges.length}`, source: ref.name, sourceHandle: ref.output ?? "", target: step.id, targetHandle: field, data: { ref: text } });
      }
    }
  }
  return edges;
}

/** Top-left positions for every node (the inputs node included when the pipeline has inputs), left to right (top
 * to bottom on a phone). */
export function layout(definition: Definition, edges: GraphEdge[], heightOf: (id: string) => number = () => NODE_H): Record<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  const narrow = typeof window !== "undefined" && window.innerWidth < 700;  // a phone: top to bottom, readable
  g.setGraph({ rankdir: narrow ? "TB" : "LR", nodesep: 24, ranksep: narrow ? 40 : 56 });
  g.setDefaultEdgeLabel(() => ({}));
  const hasInputs = Object.keys(definition.inputs ?? {}).length > 0;
  if (hasInputs) g.setNode(INPUTS_NODE, { width: NODE_W, height: heightOf(INPUTS_NODE) });
  for (const step of definition.steps) g.setNode(step.id, { width: NODE_W, height: heightOf(step.id) });
  for (const edge of edges) if (g.hasNode(edge.source) && g.hasNode(edge.target)) g.setEdge(edge.source, edge.target);
  dagre.layout(g);
  const positions: Record<string, { x: number; y: number }> = {};
  for (const id of g.nodes()) {
    const node = g.node(id);
    positions[id] = { x: node.x - NODE_W / 2, y: node.y - node.height / 2 };
  }
  return positions;
}

export const INPUT_VALUE: Record<InputType, ValueType> = { text: "text", texts: "texts", image: "image", number: "number", choice: "text" };

/** The outputs a step makes (an approve step passes on its target's). */
export function outputsOf(definition: Definition, step: StepDef, kinds: Record<string, StepKindInfo>, seen = new Set<string>()): Record<string, ValueType> {
  if (step.kind === "approve") {
    const target = definition.steps.find((s) => s.id === step.target);
    if (!target || seen.has(target.id)) return {};
    return outputsOf(definition, target, kinds, new Set([...seen, step.id]));
  }
  return kinds[step.kind]?.outputs ?? {};
}

export function fansOut(definition: Definition, step: StepDef): boolean {
  if (step.kind === "approve") {
    const target = definition.steps.find((s) => s.id === step.target);
    return target ? fansOut(definition, target) : false;
  }
  return step.for_each !== undefined || step.variants !== undefined || (step.kind === "extend" && step.times !== undefined);
}

const A = (type: string) => (type === "image" ? "an image" : `a ${type}`);

/** Why a value of `from` (a list when `many`) cannot go into `field` (wanting `wanted`), or null when it can. */
export function mismatch(from: ValueType, many: boolean, field: string, wanted: ValueType | null): string | null {
  if (field === "for_each") return many || from === "texts" ? null : `${A(from)} is not a list; for_each takes a texts input or a fan-out step's output`;
  if (field === "target") return null;
  if (field === "prompt" || field === "negative_prompt") {
    return (from === "text" || from === "number") && !many ? null : `${many ? `a list of ${from}s` : A(from)} cannot go into ${field}, which takes text`;
  }
  if (wanted && from !== wanted) return `${A(from)} cannot go into ${field}, which takes ${A(wanted)}`;
  if (many && field !== "videos") return `a list of ${from}s (its step fans out) cannot go into ${field}, which takes one ${wanted}; use for_each`;
  return null;
}

// The pipeline builder: a palette of step kinds, the graph, each step's fields and the YAML beside it.
export function PipelineEditor({ pipelineId }: { pipelineId: string | null }) {
  return <p>Pipeline builder for {pipelineId ?? "a new pipeline"}: not built yet.</p>;
}

// A pipeline run as a live graph of its steps, approvals answered in place.
export function PipelineRunPage({ runId }: { runId: string }) {
  return <p>Pipeline run {runId}: not built yet.</p>;
}

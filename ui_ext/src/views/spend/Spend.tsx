// Spend per day and per model, month to date, the most expensive runs.
export function Spend() {
  return <p>Spend: not built yet.</p>;
}

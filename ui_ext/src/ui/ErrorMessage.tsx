// One error, shown once, in plain language with the next step (a link or a retry button).
import { ApiError } from "../api";

export interface Explained {
  text: string;
  next?: { label: string; href: string };
}

const NEXT_STEPS: [RegExp, Explained["next"]][] = [
  [/FAL_KEY/i, { label: "How to set FAL_KEY", href: "https://fal.ai/dashboard/keys" }],
  [/comfyui|swarmui|gpu|vast\.?ai|instance/i, { label: "Open GPU settings", href: "#/gpu" }],
];

/** The API's message (already specific) with exception class names and the Python noise around them left out. */
export function explain(error: unknown): Explained {
  if (error instanceof TypeError || (error instanceof Error && /Failed to fetch|NetworkError|Load failed/.test(error.message)))
    return { text: "The reelflow server does not answer. Is `reelflow serve` running? Retrying may help." };
  let text = error instanceof ApiError ? (error.field ? `${error.field}: ${error.message}` : error.message) : error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.status === 401) return { text: "You are logged out: log in with the API token (`reelflow serve` prints a login link)." };
  text = text.replace(/\b[A-Z][A-Za-z]+(Error|Exception)\b:?\s*/g, "").trim() || "Something went wrong.";
  const next = NEXT_STEPS.find(([pattern]) => pattern.test(text))?.[1];
  return { text, next };
}

export function ErrorMessage({ error, onRetry, id }: { error: unknown; onRetry?: () => void; id?: string }) {
  if (!error) return null;
  const { text, next } = explain(error);
  return (
    <div className="message" role="alert" id={id}>
      <p>{text}</p>
      {(next || onRetry) && (
        <div className="actions">
          {next && <a href={next.href}>{next.label}</a>}
          {onRetry && <button type="button" onClick={onRetry}>Retry</button>}
        </div>
      )}
    </div>
  );
}

// "Copy as": the commands that submit this run's spec again, from a shell, a Python script or curl.
import type { RunCard } from "./api";

const CLI_FLAGS: [string, string][] = [
  ["model", "--model"], ["prompt", "--prompt"], ["negative_prompt", "--negative-prompt"], ["image_prompt", "--image-prompt"],
  ["image_model", "--image-model"], ["duration", "--duration"], ["frames", "--frames"], ["fps", "--fps"],
  ["resolution", "--resolution"], ["seed", "--seed"],
];

function shell(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function spec(run: RunCard): Record<string, unknown> {
  return Object.fromEntries(Object.entries(run.spec).filter(([, v]) => v !== null && v !== undefined && v !== "" && v !== false));
}

function localImage(run: RunCard): string | undefined {
  const image = run.spec.image;
  if (image && /^https?:\/\//.test(image)) return image;
  return run.input_path ?? undefined;
}

export function cliCommand(run: RunCard): string {
  const given = spec(run);
  const parts = ["reelflow", "run"];
  for (const [key, flag] of CLI_FLAGS) if (given[key] !== undefined) parts.push(flag, shell(String(given[key])));
  const image = localImage(run);
  if (image) parts.push("--image", shell(image));
  if (given.audio === true) parts.push("--audio");
  return parts.join(" ");
}

export function pythonCommand(run: RunCard): string {
  const given: Record<string, unknown> = { ...spec(run) };
  const image = localImage(run);
  if (image) given.image = image;
  else delete given.image;
  delete given.storage;
  return `import reelflow\n\nrun_id = reelflow.submit(${JSON.stringify(given, null, 4).replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None")})\nprint(run_id)`;
}

export function curlCommand(run: RunCard, origin: string): string {
  const body = JSON.stringify(spec(run));
  return `curl -X POST ${shell(`${origin}/api/runs`)} -H "Authorization: Bearer $REELFLOW_API_TOKEN" -H 'Content-Type: application/json' -d ${shell(body)}`;
}

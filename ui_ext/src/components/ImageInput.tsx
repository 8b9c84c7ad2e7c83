// The input image: a file (chosen, dropped anywhere on the form, or pasted) checked at once against the server's
// limits, with a preview showing the frame the chosen resolution cuts from it; or a URL; or the image of an
// earlier run (Tweak & re-run).
import { useEffect, useState } from "react";
import { api } from "../api";
import type { Health, Upload } from "../types";

export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
const uploaded = new WeakMap<File, Upload>();

/** Uploads `file` once: a failed submit tried again reuses the upload of the same File. */
export async function uploadOnce(file: File): Promise<Upload> {
  const known = uploaded.get(file);
  if (known) return known;
  const done = await api.upload(file);
  uploaded.set(file, done);
  return done;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
}

/** Why `file` cannot be used (type, size, pixels), or "" when it can. */
export async function checkImage(file: File, limits: Pick<Health, "max_input_bytes" | "max_input_pixels"> | null): Promise<string> {
  if (!IMAGE_TYPES.includes(file.type)) return `“${file.name}” is ${file.type || "not an image"}: choose a PNG, JPEG or WebP image.`;
  if (limits && file.size > limits.max_input_bytes) return `“${file.name}” is ${mib(file.size)}; the largest image allowed is ${mib(limits.max_input_bytes)}.`;
  try {
    const bitmap = await createImageBitmap(file);
    const pixels = bitmap.width * bitmap.height;
    bitmap.close();
    if (limits && pixels > limits.max_input_pixels)
      return `“${file.name}” has ${(pixels / 1e6).toFixed(1)} megapixels; the most allowed is ${(limits.max_input_pixels / 1e6).toFixed(0)} megapixels.`;
  } catch {
    return `“${file.name}” cannot be read as an image: it may be damaged, or not really a ${file.type.split("/")[1]}.`;
  }
  return "";
}

/** The WIDTHxHEIGHT aspect of a resolution, or null for a preset (the model keeps the image's shape). */
export function aspectOf(resolution: string | undefined): number | null {
  const size = /^(\d+)x(\d+)$/.exec(resolution?.trim() ?? "");
  return size ? Number(size[1]) / Number(size[2]) : null;
}

export function Preview({ src, resolution, label }: { src: string; resolution?: string; label: string }) {
  // The natural size is kept with the src it was measured from, so a new src shows no stale size; no effect resets
  // it (an effect can run after the new image's onLoad, as under Preact, and would wipe the size just measured).
  const [measured, setMeasured] = useState<{ src: string; w: number; h: number } | null>(null);
  const size = measured?.src === src ? measured : null;
  const aspect = aspectOf(resolution);
  let crop: React.CSSProperties | null = null;
  if (size && aspect) {
    const imageAspect = size.w / size.h;
    const w = aspect < imageAspect ? (aspect / imageAspect) * 100 : 100;
    const h = aspect < imageAspect ? 100 : (imageAspect / aspect) * 100;
    crop = { width: `${w}%`, height: `${h}%`, left: `${(100 - w) / 2}%`, top: `${(100 - h) / 2}%` };
  }
  return (
    <figure className="preview">
      <div className="preview-wrap" style={{ position: "relative" }}>
        <img src={src} alt={label} onLoad={(e) => setMeasured({ src, w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })} />
        {crop && <span className="crop" style={crop} aria-hidden="true" />}
      </div>
      <figcaption className="muted">
        {size ? `${size.w}×${size.h}` : ""}
        {crop ? ` — the bright frame is the ${resolution} shape cut from it` : size ? " — the video keeps this shape" : ""}
      </figcaption>
    </figure>
  );
}

export function useObjectUrl(file: File | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!file) {
      setUrl(null);
      return;
    }
    const made = URL.createObjectURL(file);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [file]);
  return url;
}

// Live run events over Server-Sent Events (the browser never polls).
import { useEffect, useRef } from "react";
import type { RunEvent } from "./types";

/** Listen to `url` while `enabled`; `onEvent` gets each event, `onEnd` the stream's end (a finished run). */
export function useEventStream(url: string | null, onEvent: (event: RunEvent) => void, onEnd?: () => void): void {
  const handlers = useRef({ onEvent, onEnd });
  handlers.current = { onEvent, onEnd };
  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url);
    source.onmessage = (message) => handlers.current.onEvent(JSON.parse(message.data) as RunEvent);
    source.addEventListener("end", () => {
      source.close();
      handlers.current.onEnd?.();
    });
    return () => source.close();
  }, [url]);
}

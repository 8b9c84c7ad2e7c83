// Live run events over Server-Sent Events (the browser never polls). The browser reconnects a dropped stream by
// itself; while any stream is reconnecting, `useConnectionLost()` is true (the "connection lost" banner).
import { useEffect, useRef, useSyncExternalStore } from "react";
import type { RunEvent } from "./types";

const lost = new Set<EventSource>();
const listeners = new Set<() => void>();

function setLost(source: EventSource, isLost: boolean): void {
  const changed = isLost ? !lost.has(source) : lost.has(source);
  if (isLost) lost.add(source);
  else lost.delete(source);
  if (changed) for (const listener of listeners) listener();
}

export function useConnectionLost(): boolean {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => lost.size > 0,
  );
}

/** Listen to `url` while `enabled`; `onEvent` gets each event, `onEnd` the stream's end (a finished run). */
export function useEventStream(url: string | null, onEvent: (event: RunEvent) => void, onEnd?: () => void): void {
  const handlers = useRef({ onEvent, onEnd });
  handlers.current = { onEvent, onEnd };
  useEffect(() => {
    if (!url) return;
    let source: EventSource;
    let retry: number | undefined;
    let delay = 1000;
    const open = (reconnecting = false) => {
      source = new EventSource(url);
      if (reconnecting) setLost(source, true);
      source.onopen = () => {
        delay = 1000;
        setLost(source, false);
      };
      source.onmessage = (message) => handlers.current.onEvent(JSON.parse(message.data) as RunEvent);
      source.onerror = () => {
        setLost(source, true);
        if (source.readyState === EventSource.CLOSED) {
          // A refused reconnect (the server down, a 5xx): the browser gives up, so try again later.
          const closed = source;
          retry = window.setTimeout(() => {
            open(true);
            setLost(closed, false);
          }, delay);
          delay = Math.min(delay * 2, 30_000);
        }
      };
      source.addEventListener("end", () => {
        source.close();
        setLost(source, false);
        handlers.current.onEnd?.();
      });
    };
    open();
    return () => {
      window.clearTimeout(retry);
      source.close();
      setLost(source, false);
    };
  }, [url]);
}

// "Connection lost — retrying" while a live event stream is reconnecting.
import { useConnectionLost } from "../events";

export function ConnectionBanner() {
  const lost = useConnectionLost();
  return (
    <div role="status" aria-live="polite">
      {lost && <p className="banner">Connection to the reelflow server lost — retrying…</p>}
    </div>
  );
}

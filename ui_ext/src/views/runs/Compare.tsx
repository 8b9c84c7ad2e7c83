// 2–4 videos side by side, played in step: the first video leads (its controls drive all), the others follow it.
import { useEffect, useRef } from "react";
import type { RunCard } from "./api";

const DRIFT_S = 0.1;

export function Compare({ runs, onClose }: { runs: RunCard[]; onClose: () => void }) {
  const videos = useRef<(HTMLVideoElement | null)[]>([]);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  useEffect(() => {
    const [leader, ...followers] = videos.current;
    if (!leader) return;
    const follow = () => {
      for (const video of followers) {
        if (!video) continue;
        if (Math.abs(video.currentTime - leader.currentTime) > DRIFT_S) video.currentTime = leader.currentTime;
        if (video.playbackRate !== leader.playbackRate) video.playbackRate = leader.playbackRate;
        if (leader.paused && !video.paused) video.pause();
        if (!leader.paused && video.paused) video.play().catch(() => undefined);
      }
    };
    const names = ["play", "pause", "seeking", "seeked", "timeupdate", "ratechange"];
    for (const name of names) leader.addEventListener(name, follow);
    return () => names.forEach((name) => leader.removeEventListener(name, follow));
  }, [runs]);
  return (
    <section className="compare" aria-labelledby="compare-title">
      <h3 id="compare-title" tabIndex={-1} ref={heading}>Comparing {runs.length} videos</h3>
      <p className="muted">The first video's controls play, pause and seek all of them together.</p>
      <div className="compare-grid" style={{ gridTemplateColumns: `repeat(auto-fit, minmax(min(100%, ${runs.length > 2 ? 220 : 300}px), 1fr))` }}>
        {runs.map((run, i) => (
          <figure key={run.run_id}>
            <video
              ref={(element) => {
                videos.current[i] = element;
              }}
              src={run.video_url ?? undefined}
              poster={run.poster_url ?? undefined}
              controls={i === 0}
              muted
              loop
              playsInline
              preload="auto"
              aria-label={`Video ${i + 1}: ${run.prompt ?? run.run_id}`}
              data-testid="compare-video"
            />
            <figcaption>{run.model_name ?? run.model}: {run.prompt ?? run.run_id.slice(0, 8)}</figcaption>
          </figure>
        ))}
      </div>
      <button type="button" onClick={onClose}>Close comparison</button>
    </section>
  );
}

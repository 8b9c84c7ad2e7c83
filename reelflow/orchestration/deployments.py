"""The names the Prefect server knows reelflow's work by; ``prefect.yaml`` declares the same ones."""

from __future__ import annotations

WORK_POOL = "reelflow-local"
VIDEO_DEPLOYMENT = "video_pipeline/video-pipeline"
BATCH_DEPLOYMENT = "batch_pipeline/batch-pipeline"
PIPELINE_DEPLOYMENT = "pipeline-run/pipeline-run"

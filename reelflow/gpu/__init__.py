"""Self-hosted GPU orchestration: the GpuEndpoint block, reaching ComfyUI/SwarmUI, jobs, slots, custom
workflows and the idle janitor. Provider protocols live in ``reelflow.providers``; this package adds the store,
Prefect and the user's settings around them."""

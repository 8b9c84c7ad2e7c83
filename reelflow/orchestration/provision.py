"""``reelflow setup``: Block types, concurrency limits, the work pool and the deployments. Safe to repeat."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import pkgutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from reelflow.errors import ReelflowError
from reelflow.orchestration import concurrency
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.prefect_server import prefect_command

DEPLOY_TIMEOUT_S = 240.0


@dataclass
class SetupReport:
    blocks: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    work_pool: str = WORK_POOL
    pool_created: bool = False
    deployments: list[str] = field(default_factory=list)


def project_dir() -> Path:
    """The folder holding ``prefect.yaml``, ``flows/`` and ``tasks/`` (a source checkout or editable install)."""
    import flows

    root = Path(flows.__file__).resolve().parent.parent
    if not (root / "prefect.yaml").is_file():
        raise ReelflowError(f"no prefect.yaml next to {root / 'flows'}; run from a reelflow source checkout")
    return root


def block_classes() -> list[type[Block]]:
    """Every Block class defined in the ``blocks`` package."""
    import blocks

    found: list[type[Block]] = []
    for info in pkgutil.iter_modules(blocks.__path__, prefix="blocks."):
        module = importlib.import_module(info.name)
        found.extend(obj for _, obj in inspect.getmembers(module, inspect.isclass)
                     if issubclass(obj, Block) and obj is not Block and obj.__module__ == module.__name__)
    return found


async def register_blocks() -> list[str]:
    slugs = []
    for cls in block_classes():
        await cls.aregister_type_and_schema()
        slugs.append(cls.get_block_type_slug())
    return slugs


async def provision_limits() -> list[str]:
    """Create or resize reelflow's global concurrency limits; returns every limit on the server."""
    await concurrency.provision_limits()
    async with get_client() as client:
        return sorted(f"{g.name}={g.limit}" for g in await client.read_global_concurrency_limits())


async def ensure_work_pool(name: str = WORK_POOL) -> bool:
    """Create the process work pool unless it exists; True if it was created now."""
    from prefect.workers.process import ProcessWorker

    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        try:
            await client.create_work_pool(WorkPoolCreate(
                name=name, type="process", description="reelflow: flow runs as local subprocesses",
                base_job_template=ProcessWorker.get_default_base_job_template()))
        except ObjectAlreadyExists:
            return False
    return True


def deploy_all(api_url: str) -> None:
    """``prefect --no-prompt deploy --all`` from the project folder, against ``api_url``."""
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run([*prefect_command(), "--no-prompt", "deploy", "--all"], cwd=project_dir(), env=env,
                          capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ReelflowError(f"`prefect deploy --all` failed (exit {done.returncode}):\n{done.stdout[-3000:]}"
                            f"\n{done.stderr[-3000:]}")


async def list_deployments() -> list[str]:
    async with get_client() as client:
        found = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
    return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in found if d.work_pool_name == WORK_POOL)


async def setup(api_url: str, *, deployments: bool = True) -> SetupReport:
    report = SetupReport()
    report.blocks = await register_blocks()
    report.limits = await provision_limits()
    report.pool_created = await ensure_work_pool()
    if deployments:
        await asyncio.to_thread(deploy_all, api_url)
        report.deployments = await list_deployments()
    return report

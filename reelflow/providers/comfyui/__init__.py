"""ComfyUI provider: workflows (built-in Wan 2.2 + custom JSON), an async client and the job runner."""

from reelflow.providers.comfyui.client import ComfyClient, QueueState, content_name
from reelflow.providers.comfyui.errors import (
    ComfyBusyError,
    ComfyUnreachable,
    DeadlineExceededError,
    ExecutionError,
    JobCancelledError,
    JobLostError,
    MissingModelsError,
    MissingNodesError,
    NoVideoOutputError,
    PromptRejectedError,
    ProvisioningError,
    SubmitOutcomeUnknown,
    WorkflowError,
)
from reelflow.providers.comfyui.events import ProgressEvent
from reelflow.providers.comfyui.graph import ModelRef, required_models
from reelflow.providers.comfyui.outputs import OutputFile, find_outputs, find_video
from reelflow.providers.comfyui.runner import JobResult, new_prompt_id, output_prefix, resume_job, run_job
from reelflow.providers.comfyui.wan22 import Wan22Files, wan22_i2v_template
from reelflow.providers.comfyui.workflow import Injections, WorkflowTemplate, load_custom_workflow, render

__all__ = [
    "ComfyBusyError", "ComfyClient", "ComfyUnreachable", "DeadlineExceededError", "ExecutionError",
    "Injections", "JobCancelledError", "JobLostError", "JobResult", "MissingModelsError",
    "MissingNodesError", "ModelRef", "NoVideoOutputError", "OutputFile", "ProgressEvent",
    "PromptRejectedError", "ProvisioningError", "QueueState", "SubmitOutcomeUnknown", "Wan22Files",
    "WorkflowError", "WorkflowTemplate", "content_name", "find_outputs", "find_video",
    "load_custom_workflow", "new_prompt_id", "output_prefix", "render", "required_models", "resume_job",
    "run_job", "wan22_i2v_template",
]

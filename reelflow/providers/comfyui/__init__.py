"""ComfyUI provider: workflows (built-in Wan 2.2 + custom JSON), an async client and a waiter for one prompt."""

from reelflow.providers.comfyui.client import ComfyClient, QueueState, content_name, new_prompt_id
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
from reelflow.providers.comfyui.outputs import OutputFile, find_outputs, find_video, output_prefix
from reelflow.providers.comfyui.waiter import OnProgress, Waiter
from reelflow.providers.comfyui.wan22 import Wan22Files, wan22_i2v_template
from reelflow.providers.comfyui.workflow import Injections, WorkflowTemplate, load_custom_workflow, render

__all__ = [
    "ComfyBusyError", "ComfyClient", "ComfyUnreachable", "DeadlineExceededError", "ExecutionError",
    "Injections", "JobCancelledError", "JobLostError", "MissingModelsError",
    "MissingNodesError", "ModelRef", "NoVideoOutputError", "OnProgress", "OutputFile", "ProgressEvent",
    "PromptRejectedError", "ProvisioningError", "QueueState", "SubmitOutcomeUnknown", "Waiter", "Wan22Files",
    "WorkflowError", "WorkflowTemplate", "content_name", "find_outputs", "find_video",
    "load_custom_workflow", "new_prompt_id", "output_prefix", "render", "required_models",
    "wan22_i2v_template",
]

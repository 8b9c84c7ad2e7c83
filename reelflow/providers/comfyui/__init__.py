"""ComfyUI provider: workflows (built-in Wan 2.2 + custom JSON), an async client and a waiter for one prompt."""

from reelflow.errors import (
    ComfyBusyError,
    ComfyDeadlineError,
    ComfyExecutionError,
    ComfyJobCancelledError,
    ComfyJobLostError,
    ComfyMissingModelsError,
    ComfyMissingNodesError,
    ComfyNoVideoOutputError,
    ComfyPromptRejectedError,
    ComfyProvisioningError,
    ComfySubmitUncertainError,
    ComfyUnreachableError,
    WorkflowError,
)
from reelflow.providers.comfyui.client import ComfyClient, QueueState, content_name, new_prompt_id
from reelflow.providers.comfyui.events import ProgressEvent
from reelflow.providers.comfyui.graph import ModelRef, required_models
from reelflow.providers.comfyui.outputs import (
    EXTENSIONS,
    OutputFile,
    find_image,
    find_output,
    find_outputs,
    find_video,
    output_prefix,
)
from reelflow.providers.comfyui.waiter import OnProgress, Waiter
from reelflow.providers.comfyui.wan22 import Wan22Files, wan22_i2v_template
from reelflow.providers.comfyui.workflow import (
    Injections,
    MediaKind,
    MediaParams,
    WorkflowTemplate,
    load_custom_workflow,
    render,
)

__all__ = [
    "EXTENSIONS",
    "ComfyBusyError",
    "ComfyClient",
    "ComfyDeadlineError",
    "ComfyExecutionError",
    "ComfyJobCancelledError",
    "ComfyJobLostError",
    "ComfyMissingModelsError",
    "ComfyMissingNodesError",
    "ComfyNoVideoOutputError",
    "ComfyPromptRejectedError",
    "ComfyProvisioningError",
    "ComfySubmitUncertainError",
    "ComfyUnreachableError",
    "Injections",
    "MediaKind",
    "MediaParams",
    "ModelRef",
    "OnProgress",
    "OutputFile",
    "ProgressEvent",
    "QueueState",
    "Waiter",
    "Wan22Files",
    "WorkflowError",
    "WorkflowTemplate",
    "content_name",
    "find_image",
    "find_output",
    "find_outputs",
    "find_video",
    "load_custom_workflow",
    "new_prompt_id",
    "output_prefix",
    "render",
    "required_models",
    "wan22_i2v_template",
]

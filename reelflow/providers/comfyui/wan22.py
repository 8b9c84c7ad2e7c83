"""The built-in Wan 2.2 I2V 14B (fp8) + LightX2V 4-step graph, as in the Comfy-Org template."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from reelflow.providers.comfyui.graph import Graph
from reelflow.providers.comfyui.workflow import Injections, WorkflowTemplate

WAN22_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
OUTPUT_NODE = "108"


class Wan22Files(BaseModel):
    """Model file names as ComfyUI lists them: two experts, their 4-step LoRAs, text encoder, VAE (the names
    reelflow uses are ``reelflow.settings.Wan22FileNames``)."""

    model_config = ConfigDict(frozen=True)

    high_noise_unet: str
    low_noise_unet: str
    high_noise_lora: str
    low_noise_lora: str
    text_encoder: str
    vae: str


def _node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def _sampler(model: str, *, add_noise: str, seed: int, latent: list[Any], start: int, end: int,
             leftover: str) -> dict[str, Any]:
    return _node("KSamplerAdvanced", model=[model, 0], add_noise=add_noise, noise_seed=seed, steps=4, cfg=1,
                 sampler_name="euler", scheduler="simple", positive=["98", 0], negative=["98", 1],
                 latent_image=latent, start_at_step=start, end_at_step=end,
                 return_with_leftover_noise=leftover)


def wan22_graph(files: Wan22Files, *, lora_strength_high: float = 1.0, lora_strength_low: float = 1.0,
                shift: float = 5.0) -> Graph:
    """The API-format graph with the template's defaults (640x640, 81 frames, 16 fps)."""
    return {
        "84": _node("CLIPLoader", clip_name=files.text_encoder, type="wan", device="default"),
        "90": _node("VAELoader", vae_name=files.vae),
        "95": _node("UNETLoader", unet_name=files.high_noise_unet, weight_dtype="default"),
        "96": _node("UNETLoader", unet_name=files.low_noise_unet, weight_dtype="default"),
        "101": _node("LoraLoaderModelOnly", model=["95", 0], lora_name=files.high_noise_lora,
                     strength_model=lora_strength_high),
        "102": _node("LoraLoaderModelOnly", model=["96", 0], lora_name=files.low_noise_lora,
                     strength_model=lora_strength_low),
        "104": _node("ModelSamplingSD3", model=["101", 0], shift=shift),
        "103": _node("ModelSamplingSD3", model=["102", 0], shift=shift),
        "97": _node("LoadImage", image="input.png"),
        "93": _node("CLIPTextEncode", text="", clip=["84", 0]),
        "89": _node("CLIPTextEncode", text=WAN22_NEGATIVE_PROMPT, clip=["84", 0]),
        "98": _node("WanImageToVideo", positive=["93", 0], negative=["89", 0], vae=["90", 0],
                    start_image=["97", 0], width=640, height=640, length=81, batch_size=1),
        "86": _sampler("104", add_noise="enable", seed=0, latent=["98", 2], start=0, end=2,
                       leftover="enable"),
        "85": _sampler("103", add_noise="disable", seed=0, latent=["86", 0], start=2, end=4,
                       leftover="disable"),
        "87": _node("VAEDecode", samples=["85", 0], vae=["90", 0]),
        "94": _node("CreateVideo", images=["87", 0], fps=16),
        OUTPUT_NODE: _node("SaveVideo", video=["94", 0], filename_prefix="video/ComfyUI", format="auto",
                           codec="auto"),
    }


def wan22_i2v_template(files: Wan22Files, *, lora_strength_high: float = 1.0,
                       lora_strength_low: float = 1.0, shift: float = 5.0) -> WorkflowTemplate:
    """Wan 2.2 I2V 14B + LightX2V 4 steps: length 4n+1, width and height multiples of 16."""
    graph = wan22_graph(files, lora_strength_high=lora_strength_high,
                        lora_strength_low=lora_strength_low, shift=shift)
    inject = Injections(image="97.image", prompt="93.text", negative_prompt="89.text", seed="86.noise_seed",
                        width="98.width", height="98.height", length="98.length", fps="94.fps",
                        filename_prefix="108.filename_prefix")
    return WorkflowTemplate(name="wan2.2-i2v-14b-lightx2v-4step", graph=graph, inject=inject,
                            output_node=OUTPUT_NODE, size_multiple=16, length_rule=(4, 1))

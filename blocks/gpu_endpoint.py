"""Prefect Block describing where the self-hosted GPU is and how to reach it."""

from __future__ import annotations

from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from reelflow.core.netguard import parse_http_url
from reelflow.errors import SpecError
from reelflow.providers.vastai import DEFAULT_API_URL

MASK = "********"


class GpuEndpoint(Block):
    """A ComfyUI/SwarmUI endpoint, optionally on a vast.ai instance, with the secrets to reach it.

    Example:
        Point reelflow at a vast.ai instance behind the Instance Portal (``reelflow gpu set`` does the same;
        ``save_endpoint`` also notes the non-secret fields that model availability reads offline):
        ```python
        from blocks.gpu_endpoint import GpuEndpoint
        from reelflow.gpu.endpoint import save_endpoint

        await save_endpoint(GpuEndpoint(
            provider="vastai",
            vastai_instance_id=1234567,
            vastai_api_key="<vast api key>",
            portal_token="<WEB_PASSWORD>",
        ))

        gpu = await GpuEndpoint.aload("default")
        headers = gpu.auth_headers()
        ```
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "GPU Endpoint"
    _block_type_slug = "gpu-endpoint"
    _description = "Self-hosted GPU (ComfyUI / SwarmUI, local or on vast.ai) with its tunnel auth."

    provider: Literal["none", "local", "vastai"] = Field(default="none", description="Where the GPU runs.")
    comfyui_url: str | None = Field(default=None, description="ComfyUI base URL (tunnel or direct port).")
    swarmui_url: str | None = Field(default=None, description="SwarmUI base URL.")
    vastai_instance_id: int | None = Field(default=None, description="vast.ai instance id.")
    vastai_api_key: SecretStr | None = Field(default=None, description="vast.ai API key.")
    vastai_api_url: str = Field(default=DEFAULT_API_URL, description="vast.ai REST base URL.")
    portal_token: SecretStr | None = Field(
        default=None, description="The instance's WEB_PASSWORD: Bearer token for the Caddy proxy and portal.")
    tunnel_auth_header_name: str | None = Field(
        default=None, description="Extra auth header name, e.g. CF-Access-Client-Secret.")
    tunnel_auth_header_value: SecretStr | None = Field(default=None, description="Value of that header.")
    tunnel_auth_cookie: SecretStr | None = Field(default=None, description="Auth cookie as 'name=value'.")
    comfyui_concurrency: int = Field(default=1, ge=1, le=64, description="Jobs run at once on this GPU.")
    job_deadline_minutes: int = Field(default=30, ge=1, description="Give up waiting for one job after this.")
    allow_resubmit_lost_jobs: bool = Field(
        default=False, description="Resubmit a job that is provably gone after a dropped connection.")
    idle_stop_minutes: int = Field(default=20, ge=1, description="Stop an idle vast.ai instance after this.")
    fallback_model: str | None = Field(
        default=None, description="Opt-in fal model id to use when the GPU is unreachable.")

    @field_validator("comfyui_url", "swarmui_url", "vastai_api_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        field = str(info.field_name)
        if value is None or not value.strip():
            return None if field != "vastai_api_url" else _fail(field, "must not be empty")
        try:
            parse_http_url(value.strip(), field=field)
        except SpecError as exc:
            _fail(field, exc.message)
        return value.strip().rstrip("/")

    @field_validator("tunnel_auth_cookie")
    @classmethod
    def _cookie_pair(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "=" not in value.get_secret_value():
            _fail("tunnel_auth_cookie", "must look like 'name=value'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GpuEndpoint:
        if bool(self.tunnel_auth_header_name) != (self.tunnel_auth_header_value is not None):
            _fail("tunnel_auth_header_name", "set it together with tunnel_auth_header_value, or neither")
        if self.tunnel_auth_header_name and not self.tunnel_auth_header_name.replace("-", "").isalnum():
            _fail("tunnel_auth_header_name", f"'{self.tunnel_auth_header_name}' is not a valid header name")
        return self

    def with_origin_bound_secrets(self, previous: GpuEndpoint, given: set[str]) -> GpuEndpoint:
        """This endpoint without the tunnel credentials when a service URL moved to an origin they were not
        saved for, unless ``given`` (the fields set together with the move) includes them."""
        if not tunnel_origins(self) - tunnel_origins(previous):
            return self
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update({name: values[name] if name in given else None for name in TUNNEL_SECRETS})
        return type(self)(**values)

    def auth_headers(self) -> dict[str, str]:
        """Headers for the tunnel/proxy: portal Bearer token, the custom header, and the cookie."""
        headers: dict[str, str] = {}
        if self.portal_token is not None:
            headers["Authorization"] = f"Bearer {self.portal_token.get_secret_value()}"
        if self.tunnel_auth_header_name and self.tunnel_auth_header_value is not None:
            headers[self.tunnel_auth_header_name] = self.tunnel_auth_header_value.get_secret_value()
        if self.tunnel_auth_cookie is not None:
            headers["Cookie"] = self.tunnel_auth_cookie.get_secret_value()
        return headers

    def masked(self) -> dict[str, Any]:
        """Every field, with secrets shown as ``********`` (or None when unset)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            out[name] = MASK if isinstance(value, SecretStr) else value
        return out

    def mirror_fields(self) -> dict[str, Any]:
        """The non-secret facts model availability reads without the network (``reelflow.core.gpu_mirror``)."""
        return {"provider": self.provider, "comfyui_url": self.comfyui_url, "swarmui_url": self.swarmui_url,
                "vastai_instance_id": self.vastai_instance_id, "has_vastai_api_key": self.vastai_api_key is not None,
                "has_portal_token": self.portal_token is not None, "fallback_model": self.fallback_model}


TUNNEL_SECRETS = ("portal_token", "tunnel_auth_header_name", "tunnel_auth_header_value", "tunnel_auth_cookie")


def origin(url: str) -> tuple[str, str, int]:
    parts = parse_http_url(url, field="url")
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def tunnel_origins(gpu: GpuEndpoint) -> set[tuple[str, str, int]]:
    """The origins the tunnel credentials are sent to: the ComfyUI and SwarmUI URLs'."""
    return {origin(url) for url in (gpu.comfyui_url, gpu.swarmui_url) if url}


def _fail(field: str, message: str) -> Any:
    raise ValueError(f"{field}: {message}")

"""The R2 bucket Block: where every output is copied, and which URL (CDN or presigned) is handed out."""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from prefect.blocks.core import Block
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket
from pydantic import Field, SecretStr

from reelflow.storage.r2 import R2Storage
from reelflow.storage.s3_stream import TransferSettings

R2_ENDPOINT = "https://{account_id}.r2.cloudflarestorage.com"
WEEK_S = 7 * 24 * 3600
CLIENT_DEFAULTS = Config(
    connect_timeout=15,
    read_timeout=300,
    retries={"mode": "standard", "total_max_attempts": 6},
    signature_version="s3v4",
    max_pool_connections=32,
    tcp_keepalive=True,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


class R2Bucket(Block):
    """
    A Cloudflare R2 bucket (or any S3-compatible one: MinIO, AWS) that keeps every output, plus how its
    objects are handed out: the public base URL (custom domain or r2.dev), or presigned URLs for a private
    bucket. Credentials live in the nested prefect-aws ``S3Bucket`` / ``AwsCredentials`` as secrets.

    Example:
        ```python
        from blocks.r2_storage import R2Bucket

        R2Bucket.for_r2("ACCOUNT_ID", "reelflow", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY",
                        public_base_url="https://media.example.com").save("reelflow-r2")
        storage = R2Bucket.load("reelflow-r2").storage()
        stored = storage.put_url("https://cdn.provider.example/out.mp4", content_type="video/mp4")
        ```
    """

    _block_type_name = "R2 Bucket"
    _block_type_slug = "r2-bucket"
    _description = "R2 or S3-compatible bucket for reelflow outputs, with public or presigned URLs."

    s3_bucket: S3Bucket = Field(description="Bucket, endpoint and credentials (prefect-aws S3Bucket).")
    public_base_url: str | None = Field(
        default=None, description="Base of public object URLs: a custom domain or the bucket's r2.dev URL.")
    presign: bool = Field(default=False, description="Hand out presigned GET URLs instead (private bucket).")
    presign_expiry_s: int = Field(default=WEEK_S, ge=1, le=WEEK_S, description="Lifetime of presigned URLs.")

    @classmethod
    def for_r2(cls, account_id: str, bucket: str, access_key_id: str, secret_access_key: str | SecretStr,
               public_base_url: str | None = None, presign: bool = False) -> R2Bucket:
        """An R2 bucket: endpoint ``https://<account_id>.r2.cloudflarestorage.com``, region ``auto``."""
        return cls.for_s3_compatible(R2_ENDPOINT.format(account_id=account_id), bucket, access_key_id,
                                     secret_access_key, region="auto", public_base_url=public_base_url,
                                     presign=presign)

    @classmethod
    def for_s3_compatible(cls, endpoint_url: str, bucket: str, key: str, secret: str | SecretStr,
                          region: str = "us-east-1", public_base_url: str | None = None,
                          presign: bool = False) -> R2Bucket:
        credentials = AwsCredentials(
            aws_access_key_id=key,
            aws_secret_access_key=secret if isinstance(secret, SecretStr) else SecretStr(secret),
            region_name=region,
            aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url),
        )
        return cls(s3_bucket=S3Bucket(bucket_name=bucket, credentials=credentials),
                   public_base_url=public_base_url, presign=presign)

    def client(self) -> Any:
        """A boto3 S3 client with the explicit endpoint, long timeouts and standard retries."""
        credentials = self.s3_bucket.credentials
        params = credentials.aws_client_parameters.get_params_override()
        config = CLIENT_DEFAULTS.merge(params.pop("config")) if "config" in params else CLIENT_DEFAULTS
        region = getattr(credentials, "region_name", None)
        return credentials.get_boto3_session().client("s3", region_name=region, config=config, **params)

    def storage(self, transfer: TransferSettings | None = None) -> R2Storage:
        return R2Storage(self.client(), self.s3_bucket.bucket_name, prefix=self.s3_bucket.bucket_folder,
                         public_base_url=self.public_base_url, presign=self.presign,
                         presign_expiry_s=self.presign_expiry_s, transfer=transfer)

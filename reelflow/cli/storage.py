"""``reelflow storage``: send outputs to Cloudflare R2 (or any S3-compatible bucket), or back to the local folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

app = typer.Typer(name="storage", help="Where outputs are kept: the local folder (default) or an R2 bucket.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

if TYPE_CHECKING:
    from blocks.r2_storage import R2Bucket

Secret = Annotated[str, typer.Option(envvar="R2_SECRET_ACCESS_KEY", prompt=True, hide_input=True,
                                     help="Secret access key (or env R2_SECRET_ACCESS_KEY); never printed.")]
KeyId = Annotated[str, typer.Option(envvar="R2_ACCESS_KEY_ID", help="Access key id (or env R2_ACCESS_KEY_ID).")]
Name = Annotated[str, typer.Option(help="Name of the Prefect block to save.")]
PublicUrl = Annotated[str | None, typer.Option(help="Public base URL: custom domain or https://pub-….r2.dev.")]
Presign = Annotated[bool, typer.Option("--presign", help="Hand out presigned URLs (private bucket).")]


def _save(block: R2Bucket, name: str) -> None:
    from reelflow.orchestration.prefect_server import ensure_api
    from reelflow.storage.config import choose_r2

    ensure_api()
    storage = block.storage()
    try:
        storage.exists("reelflow-probe")
    except Exception as exc:
        err.print(f"[red]error:[/] the bucket cannot be reached with these settings: {exc}")
        raise typer.Exit(2) from None
    block.save(name, overwrite=True)
    choose_r2(name)
    out.print(f"saved block '{name}'; outputs now go to the bucket (reelflow storage show)")


@app.command("r2")
def r2(account_id: Annotated[str, typer.Option(help="Cloudflare account id.")],
       bucket: Annotated[str, typer.Option(help="Bucket name.")],
       access_key_id: KeyId, secret_access_key: Secret, public_url: PublicUrl = None, presign: Presign = False,
       name: Name = "reelflow-r2") -> None:
    """Use a Cloudflare R2 bucket (endpoint https://<account_id>.r2.cloudflarestorage.com, region auto)."""
    from blocks.r2_storage import R2Bucket

    _save(R2Bucket.for_r2(account_id, bucket, access_key_id, secret_access_key, public_base_url=public_url,
                          presign=presign), name)


@app.command("s3")
def s3(endpoint_url: Annotated[str, typer.Option(help="S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO.")],
       bucket: Annotated[str, typer.Option(help="Bucket name.")],
       access_key_id: KeyId, secret_access_key: Secret,
       region: Annotated[str, typer.Option(help="Region name.")] = "us-east-1",
       public_url: PublicUrl = None, presign: Presign = False, name: Name = "reelflow-r2") -> None:
    """Use any S3-compatible bucket (MinIO, AWS) the same way."""
    from blocks.r2_storage import R2Bucket

    _save(R2Bucket.for_s3_compatible(endpoint_url, bucket, access_key_id, secret_access_key, region=region,
                                     public_base_url=public_url, presign=presign), name)


@app.command("local")
def local() -> None:
    """Go back to the local folder for new outputs."""
    from reelflow.storage.config import choose_r2

    choose_r2(None)
    out.print("outputs now go to the local folder")


@app.command("show")
def show() -> None:
    """Show where outputs go (secrets masked)."""
    from reelflow.settings import get_settings
    from reelflow.storage.config import r2_block_name

    name = r2_block_name()
    if not name:
        out.print(f"local folder: {get_settings().storage_path}")
        return
    from reelflow.orchestration.prefect_server import ensure_api

    ensure_api()
    from blocks.r2_storage import R2Bucket

    block = R2Bucket.load(name)
    creds = block.s3_bucket.credentials
    endpoint = creds.aws_client_parameters.endpoint_url
    out.print(f"R2/S3 block '{name}': bucket {block.s3_bucket.bucket_name} at {endpoint}, "
              f"key id {creds.aws_access_key_id}, secret ********, "
              f"urls {'presigned' if block.presign else block.public_base_url or 'presigned (no public URL)'}")

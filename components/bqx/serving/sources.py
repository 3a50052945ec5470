"""Where ``POST /models`` may load a model from, and fetching it from S3.

The management API names locations on the server, so it is an attack surface: a local path is accepted
only when it resolves (symlinks followed) inside the model root, and everything else gets the same 403
whether or not it exists, so the API reveals nothing about the file system. ``s3://bucket/key.tar.gz``
URLs are fetched with the server's own AWS credentials (``BQX_AWS_ENDPOINT_URL`` honoured).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bqx.artifacts import MODEL_TARBALL
from bqx.model_package import MAX_UNPACKED_BYTES, REQUIRED
from bqx.serving.payload import PayloadError

TARBALL_SUFFIXES = (".tar.gz", ".tgz")


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


class LoadPolicy:
    """Checks a load request's ``url``: inside ``root`` (None: local loads are off) or ``s3://``."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root).resolve() if root else None

    def describe(self) -> str:
        return f"inside {self.root} or s3://" if self.root else "s3:// only (no --model-root)"

    def check(self, url: str) -> str:
        """The URL to load: the resolved path, or the s3:// URL; 400/403 otherwise."""
        if "\x00" in url or len(url) > 4096:
            raise PayloadError(400, "'url' must be a path or s3:// URL without NUL characters, at most 4096 long")
        if is_s3(url):
            bucket, _, key = url[5:].partition("/")
            if not bucket or not key.endswith(TARBALL_SUFFIXES):
                raise PayloadError(400, f"{url!r}: an s3:// URL must name a model.tar.gz object (s3://bucket/key.tar.gz)")
            return url
        if "://" in url:
            raise PayloadError(400, f"{url.split('://', 1)[0]!r} URLs are not supported: give a path or an s3:// URL")
        if self.root is None:
            raise PayloadError(403, "local model loads are off: start bqx serve with --model-root DIR "
                                    "(BQX_SERVE_MODEL_ROOT), or load from s3://")
        try:
            return self._inside(url)
        except (OSError, ValueError) as exc:  # a name too long for the file system, an unencodable character
            raise PayloadError(400, f"{url[:200]!r} is not a usable path: {exc}") from None

    def _inside(self, url: str) -> str:
        assert self.root is not None
        path = (self.root / url).resolve()
        if not path.is_relative_to(self.root):
            raise PayloadError(403, f"{url!r} is outside the model root: only paths under {self.root} "
                                    "(symlinks resolved) or s3:// URLs can be loaded")
        if path.is_dir():  # the package's own files must not lead out of the root either
            for name in REQUIRED:
                if (path / name).exists() and not (path / name).resolve().is_relative_to(self.root):
                    raise PayloadError(403, f"{url!r}: {name} links outside the model root")
        return str(path)


@contextmanager
def fetched(url: str) -> Iterator[Path]:
    """An s3:// model.tar.gz downloaded into a temp file, removed on exit; 4xx for what the caller can fix."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError
    except ImportError:
        raise PayloadError(501, "s3:// loads need boto3 in the server's image (pip install 'bqx-ml[aws]')") from None
    from bqx.aws import endpoint_url

    bucket, _, key = url[5:].partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint_url())
    with tempfile.TemporaryDirectory(prefix="bqx-s3-model-") as tmp:
        target = Path(tmp) / MODEL_TARBALL
        try:
            size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if size > MAX_UNPACKED_BYTES:
                raise PayloadError(413, f"{url}: {size:,} bytes is larger than a model package may be")
            s3.download_file(bucket, key, str(target))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = 404 if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound") else \
                403 if code in ("403", "AccessDenied", "Forbidden") else 400
            raise PayloadError(status, f"{url}: {code or 'error'} from S3") from None
        except ParamValidationError as exc:  # e.g. a bucket name S3 does not allow
            raise PayloadError(400, f"{url}: {str(exc).splitlines()[-1][:200]}") from None
        except NoCredentialsError:
            raise PayloadError(503, f"{url}: the server has no AWS credentials to read S3 with") from None
        except BotoCoreError as exc:
            raise PayloadError(502, f"{url}: S3 did not answer ({type(exc).__name__})") from None
        yield target

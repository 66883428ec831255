"""Lakes a test writes into, file by file: a local folder, or a bucket on moto's S3 server (the
conftest fixtures `local_lake` and `writable_lake` give one)."""

from __future__ import annotations

from pathlib import Path


class LocalTestLake:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()


class S3TestLake:
    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3

        self.client = boto3.client("s3")
        self.client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}"

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")

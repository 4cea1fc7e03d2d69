#!/usr/bin/env python3
"""Pin the Dockerfile's outside inputs: base images by digest, S3A jars by SHA-256.

    python scripts/pin_image_inputs.py check        # exit 1 while anything is unpinned
    python scripts/pin_image_inputs.py images       # ARG PYTHON_IMAGE/DEBIAN_IMAGE -> name:tag@sha256:...
    python scripts/pin_image_inputs.py jars         # ARG *_SHA256 from verified downloads

`images` asks a registry client for the digest of each tag: $DIGEST_CMD if set (a command that
prints the digest of the image reference given as its last argument), else `crane digest`,
`docker buildx imagetools inspect` or `skopeo inspect`, whichever is installed. The digest is of the
multi-platform index, so the same pin serves any build platform.

`jars` downloads each jar from $MAVEN_REPOSITORY (default Maven Central) and accepts it only if its
SHA-1 equals the value recorded below for that version (Maven Central's published <jar>.sha1, the
pins this Dockerfile used before) and the repository's .sha1 file says the same; then it writes the
jar's SHA-256. A new version needs its SHA-1 added to ``MAVEN_SHA1`` first, from Maven Central.

Neither step can run on this repository's build machine (no registry or Maven access): see
deploy/SECURITY.md, "Supply chain".
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

DOCKERFILE = Path(os.environ.get("DOCKERFILE", Path(__file__).resolve().parents[1] / "Dockerfile"))
IMAGE_ARGS = ("PYTHON_IMAGE", "DEBIAN_IMAGE")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SHA256 = re.compile(r"[0-9a-f]{64}")

# (version ARG, SHA-256 ARG, path under the Maven repository with {v} for the version)
JARS = (
    ("HADOOP_VERSION", "HADOOP_AWS_SHA256", "org/apache/hadoop/hadoop-aws/{v}/hadoop-aws-{v}.jar"),
    (
        "AWS_SDK_BUNDLE_VERSION",
        "AWS_SDK_BUNDLE_SHA256",
        "software/amazon/awssdk/bundle/{v}/bundle-{v}.jar",
    ),
    (
        "ANALYTICS_ACCELERATOR_VERSION",
        "ANALYTICS_ACCELERATOR_SHA256",
        "software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/{v}/"
        "analyticsaccelerator-s3-{v}.jar",
    ),
)
# Maven Central's published SHA-1 of each jar version (quoted identically by two independent
# public projects; recorded here as the trust anchor for the first SHA-256 pin).
MAVEN_SHA1 = {
    "hadoop-aws-3.5.0.jar": "9e594525d264c0db653c7f68da98b245f7d61ea5",
    "bundle-2.35.4.jar": "7252265e3970b214708e68a8b74a8fa8c875af1e",
    "analyticsaccelerator-s3-1.3.1.jar": "6c9bd0f6c440c9a78e82d272f5f0252d942419f6",
}


class PinError(Exception):
    pass


def arg(text: str, name: str) -> str:
    values = set(re.findall(rf"^ARG {name}=(\S*)$", text, flags=re.MULTILINE))
    if len(values) != 1:
        raise PinError(f"{DOCKERFILE}: ARG {name} has {len(values)} distinct defaults")
    return values.pop()


def set_arg(text: str, name: str, value: str) -> str:
    return re.sub(rf"^ARG {name}=\S*$", f"ARG {name}={value}", text, flags=re.MULTILINE)


def unpinned(text: str) -> list[str]:
    missing = []
    for name in IMAGE_ARGS:
        reference = arg(text, name)
        if not re.search(rf"@{DIGEST.pattern}$", reference):
            missing.append(f"{name}={reference} (no @sha256 digest: make pin-images)")
    for _version, pin, _path in JARS:
        if not SHA256.fullmatch(arg(text, pin)):
            missing.append(f"{pin} (empty: make pin-jars)")
    return missing


def digest_command() -> list[str]:
    if os.environ.get("DIGEST_CMD"):
        return shlex.split(os.environ["DIGEST_CMD"])
    if shutil.which("crane"):
        return ["crane", "digest"]
    if shutil.which("docker"):
        return ["docker", "buildx", "imagetools", "inspect", "--format", "{{.Manifest.Digest}}"]
    if shutil.which("skopeo"):
        return ["skopeo", "inspect", "--format", "{{.Digest}}"]  # needs docker:// (below)
    raise PinError(
        "no registry client: install crane, docker (buildx) or skopeo, or set DIGEST_CMD"
    )


def resolve(reference: str) -> str:
    command = digest_command()
    target = f"docker://{reference}" if command[0] == "skopeo" else reference
    result = subprocess.run([*command, target], capture_output=True, text=True, check=False)
    digest = result.stdout.strip()
    if result.returncode != 0 or not DIGEST.fullmatch(digest):
        raise PinError(f"{reference}: no digest from {command[0]} ({result.stderr.strip()[:300]})")
    return digest


def pin_images(text: str) -> str:
    for name in IMAGE_ARGS:
        tag = arg(text, name).split("@", 1)[0]
        text = set_arg(text, name, f"{tag}@{resolve(tag)}")
    return text


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as response:  # https, or file: in tests
        return response.read()


def pin_jars(text: str) -> str:
    repository = os.environ.get("MAVEN_REPOSITORY", "https://repo1.maven.org/maven2").rstrip("/")
    for version_arg, pin, path in JARS:
        relative = path.format(v=arg(text, version_arg))
        name = relative.rsplit("/", 1)[1]
        expected = MAVEN_SHA1.get(name)
        if expected is None:
            raise PinError(f"{name}: no recorded Maven Central SHA-1; add it to MAVEN_SHA1 first")
        payload = fetch(f"{repository}/{relative}")
        published = fetch(f"{repository}/{relative}.sha1").decode().split()[0].lower()
        actual = hashlib.sha1(payload).hexdigest()
        if not actual == expected == published:
            raise PinError(
                f"{name}: SHA-1 {actual} of the download, {published} published, "
                f"{expected} recorded: refusing to pin"
            )
        text = set_arg(text, pin, hashlib.sha256(payload).hexdigest())
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("check", "images", "jars"):
        print(__doc__, file=sys.stderr)
        return 2
    text = DOCKERFILE.read_text()
    try:
        if argv[0] == "check":
            missing = unpinned(text)
            for item in missing:
                print(f"unpinned: {item}", file=sys.stderr)
            print(f"{DOCKERFILE}: {'NOT pinned' if missing else 'every outside input pinned'}")
            return 1 if missing else 0
        text = pin_images(text) if argv[0] == "images" else pin_jars(text)
    except PinError as exc:
        print(f"pin_image_inputs: {exc}", file=sys.stderr)
        return 1
    DOCKERFILE.write_text(text)
    print(f"{DOCKERFILE}: {argv[0]} pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

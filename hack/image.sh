#!/usr/bin/env bash
# Builds the veth-xdp OCI image without Docker: the same image the Dockerfile's runtime stage
# makes (one layer holding the static binary at /veth-xdp, owned by root, ENTRYPOINT
# ["/veth-xdp"]), assembled by hand from target/dist/veth-xdp (hack/build-release.sh) as an
# OCI image layout and written as an OCI archive (a tar of that layout). Reproducible: the same
# binary gives the same digests.
#
# Usage: hack/image.sh [--out FILE] [--import] [--address SOCK] [--namespace NS]
#   --out FILE      the OCI archive (default target/dist/veth-xdp-image.tar)
#   --import        then import it into containerd: ctr -n NS images import
#   --address SOCK  containerd's socket for --import (default /run/containerd/containerd.sock)
#   --namespace NS  containerd namespace for --import (default k8s.io, the one kubelet's CRI uses)
#
# The index names the image twice: org.opencontainers.image.ref.name = veth-xdp:<version> (the
# OCI tag) and io.containerd.image.name = docker.io/library/veth-xdp:<version>, the name
# containerd stores on import; it is what a pod spec's `image: veth-xdp:<version>` resolves to.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/dist/veth-xdp-image.tar
import=false
address=/run/containerd/containerd.sock
namespace=k8s.io
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --import) import=true; shift ;;
    --address) address=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    *) echo "image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

bin=target/dist/veth-xdp
[ -x "$bin" ] || { echo "image.sh: $bin missing: run hack/build-release.sh first" >&2; exit 1; }
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' plugin/Cargo.toml | head -1)
[ -n "$version" ] || { echo "image.sh: no version in plugin/Cargo.toml" >&2; exit 1; }

python3 - "$bin" "$out" "$version" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile

binary, out, version = sys.argv[1:4]
blobs = {}  # digest -> bytes


def blob(data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def tar_bytes(entries) -> bytes:
    """A deterministic tar: root-owned, mtime 0, in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


with open(binary, "rb") as f:
    layer = tar_bytes([("veth-xdp", f.read(), 0o755)])
layer_gz = gzip.compress(layer, compresslevel=9, mtime=0)
layer_desc = blob(layer_gz, "application/vnd.oci.image.layer.v1.tar+gzip")

config = {
    "created": "1970-01-01T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Entrypoint": ["/veth-xdp"], "Labels": {"org.opencontainers.image.version": version}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "COPY target/dist/veth-xdp /veth-xdp"}],
}
config_desc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")

manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config_desc,
    "layers": [layer_desc],
}
manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
manifest_desc["annotations"] = {
    "org.opencontainers.image.ref.name": f"veth-xdp:{version}",
    "io.containerd.image.name": f"docker.io/library/veth-xdp:{version}",
}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}

entries = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
           ("index.json", json.dumps(index, sort_keys=True).encode(), 0o644)]
entries += [("blobs/sha256/" + d.split(":", 1)[1], data, 0o644) for d, data in sorted(blobs.items())]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
with open(out + ".tmp", "wb") as f:
    f.write(tar_bytes(entries))
os.replace(out + ".tmp", out)
print(f"image.sh: {out}: veth-xdp:{version} manifest {manifest_desc['digest']}, "
      f"layer {len(layer_gz)} bytes compressed ({len(layer)} uncompressed), archive {os.path.getsize(out)} bytes")
EOF

if $import; then
  command -v ctr >/dev/null || { echo "image.sh: ctr missing (apt-get install containerd)" >&2; exit 1; }
  ctr --address "$address" -n "$namespace" images import "$out"
  echo "image.sh: imported into containerd $address namespace $namespace as docker.io/library/veth-xdp:$version"
fi

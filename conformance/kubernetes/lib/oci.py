#!/usr/bin/env python3
"""Writes a one-layer OCI image as an OCI archive (a tar of an OCI image layout), no Docker.

    oci.py --out FILE --name REGISTRY/REPO:TAG --file SRC:/DEST [--file ...] [--entrypoint /X]
           [--cmd ARG ...] [--symlink /DEST:TARGET ...] [--user UID:GID]

Deterministic (root-owned, mtime 0): the same files give the same digests. The index names the
image with io.containerd.image.name, which `ctr -n k8s.io images import` stores as the image name,
so a pod spec's image (or containerd's sandbox_image) resolves to it without any registry.
"""
import argparse, gzip, hashlib, io, json, os, tarfile

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--name", required=True, help="full reference, e.g. registry.k8s.io/pause:3.10.2")
ap.add_argument("--file", action="append", default=[], help="SRC:/DEST, mode kept")
ap.add_argument("--entrypoint", action="append", default=[])
ap.add_argument("--user", default="", help="the image config's User (uid:gid), empty = root")
ap.add_argument("--cmd", action="append", default=[])
ap.add_argument("--symlink", action="append", default=[], help="/DEST:TARGET")
a = ap.parse_args()

blobs = {}


def blob(data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def tar_bytes(entries) -> bytes:
    """entries: (name, bytes, mode) files, or (name, None, target) symlinks; parent dirs added."""
    buf = io.BytesIO()
    dirs = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                    info.uname = info.gname = "root"
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid = 0, 0, 0
            info.uname = info.gname = "root"
            if data is None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, mode, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


files = []
for spec in a.file:
    src, dest = spec.split(":", 1)
    with open(src, "rb") as f:
        files.append((dest.lstrip("/"), f.read(), os.stat(src).st_mode & 0o7777))
for spec in a.symlink:
    dest, target = spec.split(":", 1)
    files.append((dest.lstrip("/"), None, target))
layer = tar_bytes(files)
layer_gz = gzip.compress(layer, compresslevel=9, mtime=0)
layer_desc = blob(layer_gz, "application/vnd.oci.image.layer.v1.tar+gzip")
config = {
    "created": "1970-01-01T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Entrypoint": a.entrypoint or None, "Cmd": a.cmd or None, "User": a.user},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "conformance/kubernetes/lib/oci.py"}],
}
config_desc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc, "layers": [layer_desc]}
manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": tag, "io.containerd.image.name": a.name}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
entries = [("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
           ("index.json", json.dumps(index, sort_keys=True).encode(), 0o644)]
entries += [("blobs/sha256/" + d.split(":", 1)[1], data, 0o644) for d, data in sorted(blobs.items())]
os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
with open(a.out + ".tmp", "wb") as f:
    f.write(tar_bytes(entries))
os.replace(a.out + ".tmp", a.out)
print(f"oci.py: {a.out}: {a.name} manifest {manifest_desc['digest']}")

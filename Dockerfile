# The veth-xdp image: a static, stripped plugin binary and nothing else. The DaemonSet copies
# /veth-xdp onto the host's CNI bin dir, where the runtime runs it in the host's userspace.
#
# Not built on the development machine (it has no Docker engine): hack/image.sh assembles the
# same image (one layer, /veth-xdp owned by root, ENTRYPOINT ["/veth-xdp"]) from
# target/dist/veth-xdp without Docker and imports it into containerd. Keep the two in step.
#
#   docker build -t veth-xdp:0.1.0 .

# Build: Debian bookworm (glibc 2.36, libc6-dev's libc.a for the static link) + Rust + clang.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev libc6-dev binutils file iproute2 util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The packages are installed above; the setup/teardown check needs root, netns and BPF, which a
# build container lacks (the static/stripped checks and `veth-xdp version` still run).
RUN bash hack/build-release.sh --no-deps --no-datapath-check

# Runtime: only the binary.
FROM scratch
COPY --from=build /src/target/dist/veth-xdp /veth-xdp
ENTRYPOINT ["/veth-xdp"]

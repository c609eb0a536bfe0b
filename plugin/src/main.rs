// A shim over the library: the package's dependencies are the library's, so
// `-W unused-crate-dependencies` would list every one of them here.
#![allow(unused_crate_dependencies)]

fn main() {
    std::process::exit(veth_xdp::cli::main());
}

fn main() {
    std::process::exit(veth_xdp::cli::main());
}

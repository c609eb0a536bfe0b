//! The binary's entry: a CNI plugin when CNI_COMMAND is set, an operator tool otherwise.

const USAGE: &str = "veth-xdp: a CNI plugin (run by the container runtime with CNI_COMMAND set)

operator commands:
  veth-xdp version         print the plugin version and supported CNI versions
";

pub fn main() -> i32 {
    if std::env::var_os("CNI_COMMAND").is_some() {
        return crate::cni::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") => {
            println!("veth-xdp {} (CNI {})", env!("CARGO_PKG_VERSION"), crate::cni::version::SUPPORTED.join(", "));
            0
        }
        _ => {
            eprint!("{USAGE}");
            2
        }
    }
}

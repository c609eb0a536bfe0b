//! Traffic between namespaces: ping, iperf3, and request/response over TCP
//! and UDP (`echo.py`: which server answered, and the source address it saw).

use std::process::Child;

use serde_json::Value;

use super::ns::Netns;

/// Two echo requests that must be answered (within 2 s each).
pub fn ping(ns: &Netns, dst: &str) -> bool {
    pings(ns, dst, 2, "").is_ok()
}

/// `count` echo requests from `ns` to `dst` (`opts`: more ping options, such
/// as `-M do -s 1472`), each answered within 2 s; ping's output if not.
pub fn pings(ns: &Netns, dst: &str, count: u32, opts: &str) -> Result<(), String> {
    let (ok, out) = ns.sh(&format!("ping -c {count} -i 0.1 -W 2 {opts} {dst}"));
    if ok {
        Ok(())
    } else {
        Err(format!("ping {opts} {dst} from {ns}: {out}"))
    }
}

/// A program running in the background in a namespace, killed on drop.
pub struct Background(Child);

impl Background {
    pub fn start(ns: &Netns, cmd: &[&str]) -> Self {
        Self(ns.spawn(cmd))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a short iperf3 test from `client_ns` to a server in `server_ns`; returns bytes received.
pub fn iperf(server_ns: &Netns, client_ns: &Netns, server_ip: &str, udp: bool, port: u16) -> u64 {
    let server = Background::start(server_ns, &["iperf3", "-s", "-1", "-p", &port.to_string()]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let flags = if udp { "-u -b 20M" } else { "" };
    let (ok, out) = client_ns.sh(&format!(
        "timeout 20 iperf3 -c {server_ip} -p {port} -t 1 {flags} -J"
    ));
    drop(server);
    assert!(
        ok,
        "iperf3 {client_ns} -> {server_ip} ({}) failed: {out}",
        if udp { "udp" } else { "tcp" }
    );
    let v: Value = serde_json::from_str(&out).expect("iperf3 JSON");
    let end = &v["end"];
    if udp {
        let s = &end["sum"];
        let lost = s["lost_packets"].as_u64().unwrap_or(0);
        let total = s["packets"].as_u64().unwrap_or(0);
        assert!(total > 0 && lost * 2 < total, "udp lost {lost} of {total}");
        s["bytes"].as_u64().unwrap_or(0)
    } else {
        end["sum_received"]["bytes"].as_u64().unwrap_or(0)
    }
}

fn echo_script() -> String {
    format!("{}/tests/support/echo.py", env!("CARGO_MANIFEST_DIR"))
}

/// An echo server in `ns` answering on each of `ports`, TCP and UDP, with
/// `name` and the source address it saw.
pub fn echo_server(ns: &Netns, name: &str, ports: &[u16]) -> Background {
    let script = echo_script();
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut cmd = vec!["python3", script.as_str(), "serve", name];
    cmd.extend(ports.iter().map(String::as_str));
    Background::start(ns, &cmd)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// An echo server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The name the server was started with.
    pub server: String,
    /// The source address the server saw.
    pub peer: String,
}

/// One request from `ns` to `host:port`, retried for up to `secs` seconds
/// (so a server still starting is waited for); the answer, or what went
/// wrong.
pub fn ask(ns: &Netns, proto: Proto, host: &str, port: u16, secs: f64) -> Result<Answer, String> {
    let (ok, out) = ns.sh(&format!(
        "python3 {} ask {} {host} {port} {secs}",
        echo_script(),
        proto.as_str()
    ));
    let line = out.trim();
    match line.split_once(' ') {
        Some((server, peer)) if ok => Ok(Answer {
            server: server.to_string(),
            peer: peer.to_string(),
        }),
        _ => Err(line.to_string()),
    }
}

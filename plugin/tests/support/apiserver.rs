//! A fake Kubernetes API server for the agent's client: HTTPS with a CA and
//! server certificate made at test time (rcgen), one HTTP/1.1 request per
//! connection, answers from files under tests/data/k8s (written in the
//! apiserver's shape, see its README), every request remembered; and a
//! kubeconfig with a bearer token pointing at it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use veth_xdp::k8s::ApiClient;

use super::ns::Netns;

pub const TOKEN: &str = "fake-service-account-token";

/// One answer: a request path, the HTTP status and the body file under tests/data/k8s.
pub type Route = (&'static str, u16, &'static str);

pub const NODE_PATH: &str = "/api/v1/nodes/";
pub const SERVICECIDRS_PATH: &str = "/apis/networking.k8s.io/v1/servicecidrs";

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// path without the query
    pub path: String,
    pub authorization: Option<String>,
}

/// The fake API server and a kubeconfig for it, in a directory removed on drop.
pub struct FakeApi {
    pub url: String,
    pub dir: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApi {
    pub fn start(name: &str, routes: &[Route]) -> FakeApi {
        Self::start_in(None, name, routes)
    }

    /// `start` with the listener bound inside `netns` (its own 127.0.0.1):
    /// for a plugin or agent run there.
    pub fn start_in(netns: Option<&Netns>, name: &str, routes: &[Route]) -> FakeApi {
        let dir = std::env::temp_dir().join(format!("vx-k8s-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();

        // A cluster CA and the API server's certificate, as kubeadm lays them out.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let server_cert = server_params
            .signed_by(&server_key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();

        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(server_cert.der().to_vec()),
                    CertificateDer::from(ca_cert.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        let tls = Arc::new(tls);

        let bind = || TcpListener::bind("127.0.0.1:0").unwrap();
        let listener = match netns {
            Some(ns) => ns.enter(bind),
            None => bind(),
        };
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let routes: Vec<Route> = routes.to_vec();
        let seen_by_server = seen.clone();
        // Serves until the test process exits; one thread per connection.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (tls, routes, seen) = (tls.clone(), routes.clone(), seen_by_server.clone());
                thread::spawn(move || serve(stream, tls, &routes, &seen));
            }
        });

        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: veth-xdp
  user:
    token: {TOKEN}
contexts:
- name: fake
  context:
    cluster: fake
    user: veth-xdp
current-context: fake
",
            ca = dir.join("ca.crt").display()
        );
        std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
        FakeApi { url, dir, seen }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub async fn client(&self) -> ApiClient {
        ApiClient::connect(Some(&self.kubeconfig())).await.unwrap()
    }

    /// The paths requested so far, each checked to be a GET with our token.
    pub fn paths(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap().clone();
        for s in &seen {
            assert_eq!(s.method, "GET", "{s:?}");
            assert_eq!(
                s.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{s:?}"
            );
        }
        seen.into_iter().map(|s| s.path).collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One connection: TLS, one HTTP/1.1 request, the route's answer, close.
fn serve(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    routes: &[Route],
    seen: &Mutex<Vec<Seen>>,
) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = BufReader::new(rustls::StreamOwned::new(conn, stream));
    let mut line = String::new();
    if stream.read_line(&mut line).unwrap_or(0) == 0 {
        return; // a client that checked the certificate and left
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        authorization,
    });
    let (code, body) = match routes.iter().find(|(p, _, _)| *p == path) {
        Some((_, code, file)) => (*code, std::fs::read(data(file)).unwrap()),
        None => (
            404,
            std::fs::read(data("servicecidrs-not-served.404.json")).unwrap(),
        ),
    };
    let reason = match code {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let stream = stream.get_mut();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

pub fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s")
        .join(file)
}

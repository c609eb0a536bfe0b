//! The node agent's API client (`veth_xdp::k8s`) against a fake API server in this process:
//! HTTPS with a CA and a server certificate made at test time (rcgen), a kubeconfig pointing
//! at it with a bearer token, and answer bodies from `tests/data/k8s/` (written in the
//! apiserver's shape; see the README there). Each test checks the values or the error
//! message, and the request paths the server saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use ipnetwork::IpNetwork;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use veth_xdp::k8s::{ApiClient, K8sError};

const TOKEN: &str = "fake-service-account-token";

/// One answer: a request path, the HTTP status and the body file under tests/data/k8s.
type Route = (&'static str, u16, &'static str);

const NODE_PATH: &str = "/api/v1/nodes/";
const SERVICECIDRS_PATH: &str = "/apis/networking.k8s.io/v1/servicecidrs";

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// path without the query
    path: String,
    authorization: Option<String>,
}

/// The fake API server and a kubeconfig for it, in a directory removed on drop.
struct FakeApi {
    url: String,
    dir: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApi {
    fn start(name: &str, routes: &[Route]) -> FakeApi {
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

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    async fn client(&self) -> ApiClient {
        ApiClient::connect(Some(&self.kubeconfig())).await.unwrap()
    }

    /// The paths requested so far, each checked to be a GET with our token.
    fn paths(&self) -> Vec<String> {
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

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/k8s")
        .join(file)
}

fn nets(list: &[&str]) -> Vec<IpNetwork> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn node_path(name: &str) -> String {
    format!("{NODE_PATH}{name}")
}

#[tokio::test]
async fn pod_cidrs_dual_stack() {
    let api = FakeApi::start(
        "dual",
        &[("/api/v1/nodes/node-a", 200, "node-dual-stack.json")],
    );
    let cidrs = api.client().await.node_pod_cidrs("node-a").await.unwrap();
    assert_eq!(cidrs, nets(&["10.244.1.0/24", "fd00:10:244:1::/64"]));
    assert_eq!(api.paths(), vec![node_path("node-a")]);
}

#[tokio::test]
async fn pod_cidrs_from_legacy_pod_cidr() {
    let api = FakeApi::start(
        "legacy",
        &[("/api/v1/nodes/node-b", 200, "node-legacy-podcidr.json")],
    );
    let cidrs = api.client().await.node_pod_cidrs("node-b").await.unwrap();
    assert_eq!(cidrs, nets(&["10.244.2.0/24"]));
    assert_eq!(api.paths(), vec![node_path("node-b")]);
}

#[tokio::test]
async fn pod_cidrs_not_allocated_yet_is_empty() {
    let api = FakeApi::start(
        "nocidr",
        &[("/api/v1/nodes/node-c", 200, "node-no-pod-cidr.json")],
    );
    let cidrs = api.client().await.node_pod_cidrs("node-c").await.unwrap();
    assert_eq!(cidrs, Vec::<IpNetwork>::new());
    assert_eq!(api.paths(), vec![node_path("node-c")]);
}

#[tokio::test]
async fn node_not_found_names_the_node() {
    let api = FakeApi::start(
        "notfound",
        &[("/api/v1/nodes/node-x", 404, "node-not-found.404.json")],
    );
    let err = api
        .client()
        .await
        .node_pod_cidrs("node-x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, K8sError::NodeNotFound { node, .. } if node == "node-x"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("get node node-x: "), "{msg}");
    assert!(msg.contains("no Node named \"node-x\""), "{msg}");
    assert!(msg.contains("nodes \"node-x\" not found"), "{msg}");
    assert_eq!(api.paths(), vec![node_path("node-x")]);
}

#[tokio::test]
async fn node_forbidden_names_the_missing_rule() {
    let api = FakeApi::start(
        "nodeforbidden",
        &[("/api/v1/nodes/node-a", 403, "node-forbidden.403.json")],
    );
    let err = api
        .client()
        .await
        .node_pod_cidrs("node-a")
        .await
        .unwrap_err();
    assert!(matches!(err, K8sError::Forbidden { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("get node node-a: forbidden: "), "{msg}");
    assert!(
        msg.contains("ClusterRole lacks verb \"get\" on resource \"nodes\" (API group \"\")"),
        "{msg}"
    );
    assert!(
        msg.contains("system:serviceaccount:kube-system:veth-xdp"),
        "{msg}"
    );
    assert_eq!(api.paths(), vec![node_path("node-a")]);
}

#[tokio::test]
async fn service_cidrs_from_two_objects_deduplicated() {
    let api = FakeApi::start("svc", &[(SERVICECIDRS_PATH, 200, "servicecidrs.json")]);
    let cidrs = api.client().await.service_cidrs().await.unwrap();
    // extra-range first (the server lists by name), its IPv6 range once.
    assert_eq!(
        cidrs,
        nets(&["10.100.0.0/16", "fd00:10:96::/112", "10.96.0.0/16"])
    );
    assert_eq!(api.paths(), vec![SERVICECIDRS_PATH.to_string()]);
}

#[tokio::test]
async fn service_cidrs_not_served_says_pass_service_cidr() {
    let api = FakeApi::start(
        "svc404",
        &[(SERVICECIDRS_PATH, 404, "servicecidrs-not-served.404.json")],
    );
    let err = api.client().await.service_cidrs().await.unwrap_err();
    assert!(
        matches!(err, K8sError::ServiceCidrsNotServed { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("list servicecidrs: "), "{msg}");
    assert!(msg.contains("networking.k8s.io/v1 servicecidrs"), "{msg}");
    assert!(
        msg.contains("--service-cidr (VETH_XDP_SERVICE_CIDRS)"),
        "{msg}"
    );
    assert_eq!(api.paths(), vec![SERVICECIDRS_PATH.to_string()]);
}

#[tokio::test]
async fn service_cidrs_forbidden_names_the_missing_rule() {
    let api = FakeApi::start(
        "svc403",
        &[(SERVICECIDRS_PATH, 403, "servicecidrs-forbidden.403.json")],
    );
    let err = api.client().await.service_cidrs().await.unwrap_err();
    assert!(matches!(err, K8sError::Forbidden { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("list servicecidrs: forbidden: "), "{msg}");
    assert!(
        msg.contains(
            "ClusterRole lacks verb \"list\" on resource \"servicecidrs\" (API group \"networking.k8s.io\")"
        ),
        "{msg}"
    );
    assert_eq!(api.paths(), vec![SERVICECIDRS_PATH.to_string()]);
}

#[tokio::test]
async fn unreachable_server_names_the_url() {
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = FakeApi::start("unreachable", &[]);
    let kubeconfig = std::fs::read_to_string(api.kubeconfig())
        .unwrap()
        .replace(&api.url, &format!("https://127.0.0.1:{port}"));
    std::fs::write(api.kubeconfig(), kubeconfig).unwrap();
    let client = api.client().await;
    let url = format!("https://127.0.0.1:{port}/");
    assert_eq!(client.url(), url);

    let err = client.node_pod_cidrs("node-a").await.unwrap_err();
    assert!(matches!(err, K8sError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "get node node-a: no answer from the API server at {url}: "
        )),
        "{msg}"
    );
    assert!(msg.contains("Connection refused"), "{msg}");

    let err = client.service_cidrs().await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "list servicecidrs: no answer from the API server at {url}: "
        )),
        "{err}"
    );
    assert_eq!(api.paths(), Vec::<String>::new());
}

#[tokio::test]
async fn missing_kubeconfig_names_the_file() {
    let path = Path::new("/nonexistent/veth-xdp/kubeconfig");
    let err = ApiClient::connect(Some(path)).await.unwrap_err();
    assert!(matches!(err, K8sError::Kubeconfig { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "connect to the API server (kubeconfig /nonexistent/veth-xdp/kubeconfig): "
        ),
        "{msg}"
    );
}

/// A server certificate from another CA: the TLS handshake fails, and says so.
#[tokio::test]
async fn untrusted_server_certificate_is_refused() {
    let api = FakeApi::start(
        "untrusted",
        &[("/api/v1/nodes/node-a", 200, "node-dual-stack.json")],
    );
    let other = FakeApi::start("untrusted-other-ca", &[]);
    std::fs::copy(other.dir.join("ca.crt"), api.dir.join("ca.crt")).unwrap();
    let err = api
        .client()
        .await
        .node_pod_cidrs("node-a")
        .await
        .unwrap_err();
    assert!(matches!(err, K8sError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&api.url), "{msg}");
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    // The handshake failed before any request was sent.
    assert_eq!(api.paths(), Vec::<String>::new());
}

//! The node agent's API client (`veth_xdp::k8s`) against a fake API server in this process:
//! HTTPS with a CA and a server certificate made at test time (rcgen), a kubeconfig pointing
//! at it with a bearer token, and answer bodies from `tests/data/k8s/` (written in the
//! apiserver's shape; see the README there). Each test checks the values or the error
//! message, and the request paths the server saw.

mod support;

use ipnetwork::IpNetwork;
use std::net::TcpListener;
use std::path::Path;

use support::apiserver::{FakeApi, NODE_PATH, SERVICECIDRS_PATH};
use veth_xdp::k8s::{ApiClient, K8sError};

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

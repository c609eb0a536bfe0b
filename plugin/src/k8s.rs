//! The node agent's view of the Kubernetes API: the node's pod ranges (`Node`
//! `spec.podCIDRs`) and the cluster's Service ranges (every `ServiceCIDR` of
//! `networking.k8s.io/v1`), read with the pod's service account (in-cluster) or a
//! kubeconfig. A low layer: it knows the API server and nothing of CNI.
//!
//! The agent's ClusterRole needs `get` on `nodes` and `list` on
//! `servicecidrs.networking.k8s.io`; a 403 says which of the two is missing.
//!
//! TLS is rustls with the *ring* provider (kube's features `rustls-tls` + `ring`,
//! no OpenSSL: the release binary is static). kube 5 builds its `rustls::ClientConfig`
//! with `ClientConfig::builder()`, which takes the process-wide `CryptoProvider` and,
//! when none is installed, installs the one the rustls crate features name. With
//! `rustls-tls` alone, kube 5 enables neither of rustls' `ring` / `aws_lc_rs`, so there
//! is none to name and that call panics when the client is built; kube's `ring` feature
//! turns on `rustls/ring` (and nothing in our graph turns on `aws_lc_rs`, which would
//! make the choice ambiguous and panic the same way). Checked by the tests in
//! `tests/k8s_api.rs`, which talk to a fake API server over TLS and compare the
//! installed provider with ring's.
//!
//! Name resolution: in-cluster, the API server is `KUBERNETES_SERVICE_HOST`, an IP
//! address, and hyper connects to an IP literal without a resolver. A kubeconfig whose
//! `server` is a host name is resolved with getaddrinfo, which the static release binary
//! can do only where glibc's NSS modules are present (the node's root, not an empty
//! image).

use crate::causes::Causes;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnetwork::IpNetwork;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::api::{Api, ListParams};
use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::core::Status;
use kube::{Client, Config};

/// The environment variable kubelet sets in every pod; its presence means "in a cluster".
pub const SERVICE_HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// How long one request may wait for the API server's answer (kube sets no read
/// timeout of its own; its connect timeout is 30 s).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What was asked of the API server: names the operation in errors, and the
/// ClusterRole rule it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    GetNode(String),
    ListServiceCidrs,
}

impl Request {
    /// The RBAC rule this request needs: verb, resource, API group ("" = core).
    pub fn rule(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Request::GetNode(_) => ("get", "nodes", ""),
            Request::ListServiceCidrs => ("list", "servicecidrs", "networking.k8s.io"),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::GetNode(node) => write!(f, "get node {node}"),
            Request::ListServiceCidrs => f.write_str("list servicecidrs"),
        }
    }
}

/// Where the connection settings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, the token and CA
    /// under /var/run/secrets/kubernetes.io/serviceaccount.
    InCluster,
    /// A kubeconfig file named by the operator.
    Kubeconfig(PathBuf),
    /// kube's default lookup: `$KUBECONFIG`, else ~/.kube/config.
    DefaultKubeconfig,
}

impl Source {
    /// A kubeconfig given wins; without one, the service account when
    /// `KUBERNETES_SERVICE_HOST` is set (`service_host`), else the default kubeconfig.
    pub fn choose(kubeconfig: Option<&Path>, service_host: Option<&OsStr>) -> Source {
        match (kubeconfig, service_host) {
            (Some(path), _) => Source::Kubeconfig(path.to_path_buf()),
            (None, Some(host)) if !host.is_empty() => Source::InCluster,
            (None, _) => Source::DefaultKubeconfig,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::InCluster => f.write_str("in-cluster service account"),
            Source::Kubeconfig(path) => write!(f, "kubeconfig {}", path.display()),
            Source::DefaultKubeconfig => {
                f.write_str("default kubeconfig ($KUBECONFIG or ~/.kube/config)")
            }
        }
    }
}

/// A failed API operation: what was asked, of which server or object, and why.
/// Messages carry their causes (`a: b: c`), so `source()` is not used.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("connect to the API server ({}): {}", Source::InCluster, Causes(error))]
    InCluster { error: InClusterError },
    #[error("connect to the API server ({from}): {}", Causes(error))]
    Kubeconfig {
        from: Source,
        error: KubeconfigError,
    },
    #[error("connect to the API server {url}: {}", Causes(error))]
    Client { url: String, error: kube::Error },
    /// No HTTP answer: refused, timed out, TLS failed.
    #[error("{request}: no answer from the API server at {url}: {}", Causes(error))]
    Unreachable {
        request: Request,
        url: String,
        error: kube::Error,
    },
    #[error("get node {node}: the API server has no Node named {node:?} (the agent's node name must be the Node object's name): {message}")]
    NodeNotFound { node: String, message: String },
    /// 404 on the list: the API server predates networking.k8s.io/v1 ServiceCIDRs (1.33).
    #[error("list servicecidrs: the API server does not serve networking.k8s.io/v1 servicecidrs (Kubernetes before 1.33): pass the Service ranges with --service-cidr (VETH_XDP_SERVICE_CIDRS): {message}")]
    ServiceCidrsNotServed { message: String },
    /// 403: the service account's ClusterRole lacks the request's rule.
    #[error("{request}: forbidden: the agent's ClusterRole lacks verb {:?} on resource {:?} (API group {:?}): {message}", request.rule().0, request.rule().1, request.rule().2)]
    Forbidden { request: Request, message: String },
    /// Any other error status.
    #[error("{request}: the API server answered {code} {reason}: {message}")]
    Api {
        request: Request,
        code: u16,
        reason: String,
        message: String,
    },
    /// An answer that could not be used (not the object's JSON, auth token unreadable, ...).
    #[error("{request} from {url}: {}", Causes(error))]
    Failed {
        request: Request,
        url: String,
        error: kube::Error,
    },
    #[error("parse {field} of {object}: {value:?}: {error}")]
    Parse {
        /// `spec.podCIDRs[1]`, `spec.cidrs[0]`
        field: String,
        /// `node node-a`, `servicecidr kubernetes`
        object: String,
        value: String,
        error: ipnetwork::IpNetworkError,
    },
}

/// A connection to the API server.
#[derive(Clone)]
pub struct ApiClient {
    client: Client,
    /// The server's URL, for messages.
    url: String,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient").field("url", &self.url).finish()
    }
}

impl ApiClient {
    /// In-cluster service account when `kubeconfig` is None and KUBERNETES_SERVICE_HOST is
    /// set, else the kubeconfig file (or kube's default lookup). Nothing is sent yet: an
    /// unreachable server shows at the first request.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Self, K8sError> {
        let service_host = std::env::var_os(SERVICE_HOST_ENV);
        let from = Source::choose(kubeconfig, service_host.as_deref());
        let options = KubeConfigOptions::default();
        let kubeconfig_error = |error| K8sError::Kubeconfig {
            from: from.clone(),
            error,
        };
        let config = match &from {
            Source::InCluster => {
                Config::incluster().map_err(|error| K8sError::InCluster { error })?
            }
            Source::Kubeconfig(path) => {
                let file = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(kubeconfig_error)?
            }
            Source::DefaultKubeconfig => Config::from_kubeconfig(&options)
                .await
                .map_err(kubeconfig_error)?,
        };
        Self::from_config(config)
    }

    /// A client for settings made elsewhere; sets the read timeout.
    pub fn from_config(mut config: Config) -> Result<Self, K8sError> {
        let url = config.cluster_url.to_string();
        config.read_timeout = Some(READ_TIMEOUT);
        let client = Client::try_from(config).map_err(|error| K8sError::Client {
            url: url.clone(),
            error,
        })?;
        Ok(ApiClient { client, url })
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The node's pod ranges: `spec.podCIDRs`, or `spec.podCIDR` where the list is empty
    /// (objects written before dual-stack). Empty when none is allocated yet
    /// (kube-controller-manager assigns them after the node registers): not an error.
    pub async fn node_pod_cidrs(&self, node: &str) -> Result<Vec<IpNetwork>, K8sError> {
        let request = Request::GetNode(node.to_string());
        let api: Api<Node> = Api::all(self.client.clone());
        let object = api.get(node).await.map_err(|e| self.error(&request, e))?;
        let spec = object.spec.unwrap_or_default();
        let object = format!("node {node}");
        match spec.pod_cidrs.filter(|list| !list.is_empty()) {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, value)| parse(format!("spec.podCIDRs[{i}]"), &object, value))
                .collect(),
            None => spec
                .pod_cidr
                .filter(|value| !value.is_empty())
                .map(|value| parse("spec.podCIDR".into(), &object, &value))
                .into_iter()
                .collect(),
        }
    }

    /// The cluster's Service ranges: `spec.cidrs` of every ServiceCIDR, each range once,
    /// in the order the API server lists the objects (by name). ServiceCIDRs being
    /// deleted are included: Services may still hold addresses from them until their
    /// finalizer goes.
    pub async fn service_cidrs(&self) -> Result<Vec<IpNetwork>, K8sError> {
        let request = Request::ListServiceCidrs;
        let api: Api<ServiceCIDR> = Api::all(self.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.error(&request, e))?;
        let mut out = Vec::new();
        for item in &list.items {
            let object = format!(
                "servicecidr {}",
                item.metadata.name.as_deref().unwrap_or("(unnamed)")
            );
            let cidrs = item.spec.as_ref().and_then(|s| s.cidrs.as_ref());
            for (i, value) in cidrs.into_iter().flatten().enumerate() {
                let net = parse(format!("spec.cidrs[{i}]"), &object, value)?;
                if !out.contains(&net) {
                    out.push(net);
                }
            }
        }
        Ok(out)
    }

    /// The typed error for a failed request.
    fn error(&self, request: &Request, error: kube::Error) -> K8sError {
        let request = request.clone();
        match error {
            kube::Error::Api(status) => status_error(request, *status),
            kube::Error::HyperError(_) | kube::Error::Service(_) => K8sError::Unreachable {
                request,
                url: self.url.clone(),
                error,
            },
            error => K8sError::Failed {
                request,
                url: self.url.clone(),
                error,
            },
        }
    }
}

/// An error status of the API server (kube makes one for a body that is not a
/// Status too, with the body as the message).
fn status_error(request: Request, status: Status) -> K8sError {
    let Status {
        code,
        reason,
        message,
        ..
    } = status;
    match (code, request) {
        (404, Request::GetNode(node)) => K8sError::NodeNotFound { node, message },
        (404, Request::ListServiceCidrs) => K8sError::ServiceCidrsNotServed { message },
        (403, request) => K8sError::Forbidden { request, message },
        (code, request) => K8sError::Api {
            request,
            code,
            reason,
            message,
        },
    }
}

fn parse(field: String, object: &str, value: &str) -> Result<IpNetwork, K8sError> {
    value.parse().map_err(|error| K8sError::Parse {
        field,
        object: object.to_string(),
        value: value.to_string(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kubeconfig_wins_then_service_account_then_default() {
        let path = Path::new("/etc/kubernetes/kubelet.conf");
        let host = Some(OsStr::new("10.96.0.1"));
        assert_eq!(
            Source::choose(Some(path), host),
            Source::Kubeconfig(path.to_path_buf())
        );
        assert_eq!(Source::choose(None, host), Source::InCluster);
        assert_eq!(Source::choose(None, None), Source::DefaultKubeconfig);
        assert_eq!(
            Source::choose(None, Some(OsStr::new(""))),
            Source::DefaultKubeconfig
        );
    }

    fn status(code: u16, reason: &str, message: &str) -> Status {
        Status::failure(message, reason).with_code(code)
    }

    #[test]
    fn statuses_become_typed_errors() {
        let node = Request::GetNode("node-a".into());
        let e = status_error(
            node.clone(),
            status(404, "NotFound", "nodes \"node-a\" not found"),
        );
        assert!(matches!(&e, K8sError::NodeNotFound { node, .. } if node == "node-a"));
        assert!(e.to_string().starts_with("get node node-a: "), "{e}");

        let e = status_error(
            Request::ListServiceCidrs,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
        assert!(matches!(e, K8sError::ServiceCidrsNotServed { .. }));
        assert!(
            e.to_string()
                .contains("--service-cidr (VETH_XDP_SERVICE_CIDRS)"),
            "{e}"
        );

        let e = status_error(Request::ListServiceCidrs, status(403, "Forbidden", "no"));
        assert_eq!(
            e.to_string(),
            "list servicecidrs: forbidden: the agent's ClusterRole lacks verb \"list\" on \
             resource \"servicecidrs\" (API group \"networking.k8s.io\"): no"
        );

        let e = status_error(node, status(500, "InternalError", "etcd down"));
        assert_eq!(
            e.to_string(),
            "get node node-a: the API server answered 500 InternalError: etcd down"
        );
    }

    /// kube 5 builds its rustls config with the process-wide provider, installed from the
    /// rustls crate features on first use: those must name ring, and only ring (see the
    /// module doc). Nothing in this binary installs one explicitly.
    #[tokio::test]
    async fn tls_provider_is_ring_from_crate_features() {
        use rustls::crypto::CryptoProvider;
        let config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        let client = ApiClient::from_config(config).unwrap();
        assert_eq!(client.url(), "https://127.0.0.1:6443/");
        let installed = CryptoProvider::get_default().expect("kube installed no CryptoProvider");
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &CryptoProvider| {
            let s: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
            s
        };
        let groups = |p: &CryptoProvider| {
            let g: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
            g
        };
        assert_eq!(suites(installed), suites(&ring));
        assert_eq!(groups(installed), groups(&ring));
    }

    #[test]
    fn parse_errors_name_field_object_and_value() {
        let e = parse("spec.podCIDRs[1]".into(), "node node-a", "10.0.0/24").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parse spec.podCIDRs[1] of node node-a: \"10.0.0/24\": "),
            "{e}"
        );
    }
}

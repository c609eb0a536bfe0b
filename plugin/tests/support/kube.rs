//! A real kube-apiserver (with its etcd) inside a test's namespace, from the
//! binaries conformance/kubernetes/build.sh builds from upstream sources into
//! its cache: for the node agent's client against the real thing — real
//! answers, real RBAC (the manifests' own ClusterRole), real service-account
//! tokens. `RealApi::start` returns None (and says so) without the binaries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cmd::must;
use super::ns::Netns;

/// The conformance build's cache (`VETH_XDP_K8S_CACHE`, as build.sh).
pub fn cache_bin() -> PathBuf {
    if let Some(c) = std::env::var_os("VETH_XDP_K8S_CACHE") {
        return PathBuf::from(c).join("bin");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("veth-xdp/k8s/bin")
}

/// The Service range the apiserver is started with (its default ServiceCIDR).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
pub const URL: &str = "https://127.0.0.1:6443";

/// etcd and kube-apiserver running in `ns`, killed on drop; PKI, data and
/// logs under `dir`.
pub struct RealApi {
    dir: PathBuf,
    ns: PathBuf,
    bin: PathBuf,
    children: Vec<Child>,
}

impl RealApi {
    pub fn start(ns: &Netns, dir: &Path) -> Option<RealApi> {
        let bin = cache_bin();
        for b in ["etcd", "kube-apiserver", "kubectl"] {
            if !bin.join(b).exists() {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED real kube-apiserver: no {} (bash conformance/kubernetes/build.sh builds it)",
                    bin.join(b).display()
                );
                return None;
            }
        }
        let d = dir.join("kube");
        std::fs::create_dir_all(&d).unwrap();
        pki(&d);
        let mut api = RealApi {
            dir: d.clone(),
            ns: ns.path(),
            bin: bin.clone(),
            children: Vec::new(),
        };
        let etcd_data = d.join("etcd");
        api.spawn(
            "etcd",
            &[
                "--data-dir",
                &etcd_data.display().to_string(),
                "--listen-client-urls",
                "http://127.0.0.1:2379",
                "--advertise-client-urls",
                "http://127.0.0.1:2379",
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--log-outputs",
                "stderr",
            ],
        );
        let p = |f: &str| d.join(f).display().to_string();
        api.spawn(
            "kube-apiserver",
            &[
                "--etcd-servers",
                "http://127.0.0.1:2379",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                "6443",
                "--service-cluster-ip-range",
                SERVICE_CIDR,
                "--tls-cert-file",
                &p("apiserver.crt"),
                "--tls-private-key-file",
                &p("apiserver.key"),
                "--client-ca-file",
                &p("ca.crt"),
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                &p("sa.pub"),
                "--service-account-signing-key-file",
                &p("sa.key"),
                "--authorization-mode",
                "RBAC",
                "--profiling=false",
                "--cert-dir",
                &p("certs"),
            ],
        );
        let start = Instant::now();
        while api.kubectl_try(&["get", "--raw", "/readyz"]).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "kube-apiserver not ready within 180 s; log: {}",
                d.join("kube-apiserver.log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        Some(api)
    }

    fn spawn(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .arg(self.bin.join(name))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push(child);
    }

    /// kubectl as cluster admin; None on failure.
    pub fn kubectl_try(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .arg(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.dir.join("admin.kubeconfig"))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_try(args)
            .unwrap_or_else(|| panic!("kubectl {args:?} failed (log dir {})", self.dir.display()))
    }

    /// `kubectl apply -f` of `yaml` (text).
    pub fn apply(&self, yaml: &str) {
        let f = self.dir.join("apply.yaml");
        std::fs::write(&f, yaml).unwrap();
        self.kubectl(&["apply", "-f", &f.display().to_string()]);
    }

    /// A kubeconfig that acts as service account `ns/name` (a bound token,
    /// as a pod's projected token is).
    pub fn service_account_kubeconfig(&self, ns: &str, name: &str) -> PathBuf {
        let token = self.kubectl(&["-n", ns, "create", "token", name]);
        let path = self.dir.join(format!("{ns}-{name}.kubeconfig"));
        std::fs::write(
            &path,
            kubeconfig(
                &self.dir.join("ca.crt"),
                &format!("token: {}", token.trim()),
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for RealApi {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kubeconfig(ca: &Path, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {URL}
    certificate-authority: {ca}
users:
- name: u
  user:
    {user}
contexts:
- name: c
  context: {{cluster: test, user: u}}
current-context: c
",
        ca = ca.display()
    )
}

/// A CA, the apiserver's serving certificate, an admin client certificate
/// (system:masters) and kubeconfig, the service-account signing key.
fn pki(d: &Path) {
    let d = d.display();
    must(&format!(
        "set -e; cd {d}
         openssl ecparam -name prime256v1 -genkey -noout -out ca.key
         openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 1 -out ca.crt
         openssl genrsa -out sa.key 2048
         openssl rsa -in sa.key -pubout -out sa.pub
         for c in apiserver admin; do
           openssl ecparam -name prime256v1 -genkey -noout -out $c.key
         done
         openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > apiserver.ext
         openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile apiserver.ext -out apiserver.crt
         openssl req -new -key admin.key -subj /O=system:masters/CN=admin -out admin.csr
         printf 'extendedKeyUsage=clientAuth\\n' > admin.ext
         openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile admin.ext -out admin.crt 2>/dev/null"
    ));
    let dir = PathBuf::from(d.to_string());
    let admin = format!(
        "client-certificate: {}\n    client-key: {}",
        dir.join("admin.crt").display(),
        dir.join("admin.key").display()
    );
    std::fs::write(
        dir.join("admin.kubeconfig"),
        kubeconfig(&dir.join("ca.crt"), &admin),
    )
    .unwrap();
}

//! Offline validation of the Kubernetes manifests (`manifests/`) and the Multus example
//! (`examples/multus/`): no cluster, no network, no root. `cargo test -p veth-xdp --test manifests`.
//!
//! **Typed objects.** Every YAML document of every manifest is deserialised into its typed
//! k8s-openapi object (0.29, feature `v1_37`) and serialised back; the result must be exactly
//! the document. k8s-openapi's types are generated from the OpenAPI spec of that Kubernetes
//! release: a wrong type fails the deserialisation; an unknown or misspelled field — which the
//! generated `Deserialize` skips silently — is missing from the re-serialised object; a missing
//! required field — which 0.29 fills in with its default (`""`, `[]`, `{}`) — appears in it.
//! Either way the comparison fails and names the field. apiVersion and kind must be the type's
//! (its `Deserialize` checks them too). YAML goes through `serde_norway::Value` first (the maintained fork of serde_yaml
//! 0.9, same libyaml-based parser), which refuses duplicate keys, then to JSON.
//!
//! What this cannot see: checks the API server makes beyond the schema (value formats, field
//! combinations, admission), and anything kubectl/kustomize do at apply time. Nothing here has
//! been applied to a real cluster yet.
//!
//! **Not core types.** The Kustomization and Multus's NetworkAttachmentDefinition are checked
//! by hand: the keys present, and the fields Multus reads (`metadata.name`/`namespace`,
//! `spec.config` a JSON string naming a CNI config or conflist); the config itself goes through
//! the installer's `check_conflist`, so the plugin accepts it.
//!
//! **Contracts with the binary.** The ConfigMap's template renders with the installer's
//! placeholders into a conflist the plugin accepts; the ClusterRole grants exactly get/list/watch
//! on nodes and servicecidrs; the ConfigMap's env keys are env names `veth-xdp install --help`
//! documents; the DaemonSet's hostPath volumes are exactly what `veth-xdp install
//! --print-host-paths` lists. The last two skip (with a message) while the binary has no env
//! names / no `--print-host-paths` (the node agent is being built on another branch).
//!
//! Every rule has a negative check: a mutated copy is refused by the same function.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use veth_xdp::install::{check_conflist, render, NodeValues, DEFAULT_TEMPLATE};

const NAMESPACE: &str = "veth-xdp";
const NAME: &str = "veth-xdp";
const TEMPLATE_KEY: &str = "conflist.template";
const TEMPLATE_MOUNT: &str = "/etc/veth-xdp/conflist.template";
/// The one file with every resource (hack/manifests.sh).
const BUNDLE: &str = "veth-xdp.yaml";
const KUSTOMIZATION: &str = "kustomization.yaml";
/// The binary reads these but the ConfigMap leaves them out on purpose: the probes and the
/// metrics port are fixed at 9765 in the DaemonSet.
const ENV_NOT_IN_CONFIGMAP: &[&str] = &["VETH_XDP_LISTEN"];
/// What the ClusterRole may grant, and must: (apiGroup, resource, verb).
const GRANTS: &[(&str, &str)] = &[("", "nodes"), ("networking.k8s.io", "servicecidrs")];
const VERBS: &[&str] = &["get", "list", "watch"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("plugin/ is in the repository")
        .to_path_buf()
}

fn manifests_dir() -> PathBuf {
    repo().join("manifests")
}

fn multus_dir() -> PathBuf {
    repo().join("examples/multus")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `*.yaml` files of `dir`, sorted by name.
fn yaml_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// YAML documents and typed objects

/// Every document of a YAML stream, as JSON. Duplicate keys, non-string keys and empty
/// documents are errors.
fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let yaml =
            serde_norway::Value::deserialize(de).map_err(|e| format!("document {n}: {e}"))?;
        if yaml.is_null() {
            return Err(format!("document {n} is empty"));
        }
        let doc = serde_json::to_value(&yaml).map_err(|e| format!("document {n}: {e}"))?;
        docs.push(doc);
    }
    Ok(docs)
}

fn documents_of(path: &Path) -> Vec<Value> {
    documents(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kind_of(doc: &Value) -> (String, String) {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (s("apiVersion"), s("kind"))
}

/// The first place where `want` (the document) and `got` (re-serialised) differ.
fn first_difference(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let here = format!("{at}.{k}");
                match g.get(k) {
                    None => {
                        return Some(format!(
                            "{here}: not in the typed object (unknown or misspelled field)"
                        ))
                    }
                    Some(gv) => {
                        if let Some(d) = first_difference(wv, gv, &here) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys().find(|k| !w.contains_key(*k)).map(|k| {
                format!(
                    "{at}.{k}: missing from the document (a required field: the typed \
                         object fills in its default)"
                )
            })
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| first_difference(wv, gv, &format!("{at}[{i}]"))),
        _ if want == got => None,
        _ => Some(format!("{at}: {want} became {got}")),
    }
}

/// `doc` as the typed object `K`: apiVersion and kind are `K`'s, it deserialises, and it
/// serialises back to exactly `doc`.
fn typed<K: Resource + DeserializeOwned + Serialize>(doc: &Value) -> Result<K, String> {
    let (api_version, kind) = kind_of(doc);
    if api_version != K::API_VERSION || kind != K::KIND {
        return Err(format!(
            "{api_version}/{kind} is not {}/{}",
            K::API_VERSION,
            K::KIND
        ));
    }
    let object: K = serde_json::from_value(doc.clone()).map_err(|e| format!("{kind}: {e}"))?;
    let back = serde_json::to_value(&object).expect("a typed object serialises");
    match first_difference(doc, &back, "") {
        None => Ok(object),
        Some(d) => Err(format!("{kind}: {d}")),
    }
}

/// The typed check for a document of a core kind this project ships.
fn check_typed(doc: &Value) -> Result<(), String> {
    match kind_of(doc) {
        (_, k) if k == Namespace::KIND => typed::<Namespace>(doc).map(drop),
        (_, k) if k == ServiceAccount::KIND => typed::<ServiceAccount>(doc).map(drop),
        (_, k) if k == ClusterRole::KIND => typed::<ClusterRole>(doc).map(drop),
        (_, k) if k == ClusterRoleBinding::KIND => typed::<ClusterRoleBinding>(doc).map(drop),
        (_, k) if k == ConfigMap::KIND => typed::<ConfigMap>(doc).map(drop),
        (_, k) if k == DaemonSet::KIND => typed::<DaemonSet>(doc).map(drop),
        (_, k) if k == Pod::KIND => typed::<Pod>(doc).map(drop),
        (v, k) => Err(format!("{v}/{k}: not a kind this test knows")),
    }
}

/// The single document of `manifests/<file>` as `K`.
fn manifest<K: Resource + DeserializeOwned + Serialize>(file: &str) -> (Value, K) {
    let path = manifests_dir().join(file);
    let docs = documents_of(&path);
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    let object = typed::<K>(&docs[0]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (docs[0].clone(), object)
}

fn set<'a>(doc: &'a mut Value, pointer: &str, value: Value) -> &'a mut Value {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in the document")) = value;
    doc
}

fn rename_key(doc: &mut Value, parent: &str, from: &str, to: &str) {
    let obj = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is an object"));
    let v = obj
        .remove(from)
        .unwrap_or_else(|| panic!("{parent}/{from}"));
    obj.insert(to.into(), v);
}

#[test]
fn every_document_parses_into_its_typed_object() {
    let mut checked = 0;
    for (dir, files) in [
        (manifests_dir(), yaml_files(&manifests_dir())),
        (multus_dir(), yaml_files(&multus_dir())),
    ] {
        for file in files {
            let path = dir.join(&file);
            let docs = documents_of(&path);
            assert!(!docs.is_empty(), "{}: no document", path.display());
            for (i, doc) in docs.iter().enumerate() {
                let result = match kind_of(doc).1.as_str() {
                    "Kustomization" => check_kustomization(doc).map(drop),
                    "NetworkAttachmentDefinition" => check_nad(doc).map(drop),
                    _ => check_typed(doc),
                };
                if let Err(e) = result {
                    panic!("{} document {}: {e}", path.display(), i + 1);
                }
                checked += 1;
            }
        }
    }
    // 6 resources, each twice (own file and the bundle), the kustomization, NAD and pod.
    assert_eq!(checked, 15, "documents checked");
}

#[test]
fn the_typed_check_refuses_misspelled_mistyped_missing_and_misnamed() {
    let (ds, _) = manifest::<DaemonSet>("daemonset.yaml");
    assert!(check_typed(&ds).is_ok());

    let mut bad = ds.clone();
    rename_key(
        &mut bad,
        "/spec/template/spec",
        "hostNetwork",
        "hostNetwrok",
    );
    let e = check_typed(&bad).unwrap_err();
    assert!(e.contains("hostNetwrok") && e.contains("unknown"), "{e}");

    let mut bad = ds.clone();
    set(&mut bad, "/spec/template/spec/hostNetwork", json!("yes"));
    let e = check_typed(&bad).unwrap_err();
    assert!(e.contains("invalid type"), "{e}");

    let mut bad = ds.clone();
    bad.pointer_mut("/spec/template/spec/containers/0")
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("name");
    let e = check_typed(&bad).unwrap_err();
    assert!(e.contains("containers[0].name: missing"), "{e}");
    let (role, _) = manifest::<ClusterRole>("clusterrole.yaml");
    let mut bad = role;
    bad["rules"][0].as_object_mut().unwrap().remove("verbs");
    let e = check_typed(&bad).unwrap_err();
    assert!(e.contains("rules[0].verbs: missing"), "{e}");

    let mut bad = ds.clone();
    set(&mut bad, "/apiVersion", json!("extensions/v1beta1"));
    let e = check_typed(&bad).unwrap_err();
    assert!(e.contains("is not apps/v1/DaemonSet"), "{e}");
    assert!(
        typed::<ConfigMap>(&ds).is_err(),
        "a DaemonSet is no ConfigMap"
    );

    let e = documents("a: 1\na: 2\n").unwrap_err();
    assert!(e.contains("duplicate"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// kustomization.yaml and the bundle

/// The kustomization's resources: it has only apiVersion, kind and resources, and they are
/// exactly the manifests in `files` but itself and the bundle, each once.
fn check_kustomization_against(doc: &Value, files: &[String]) -> Result<Vec<String>, String> {
    let obj = doc.as_object().ok_or("not a mapping")?;
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let allowed = BTreeSet::from(["apiVersion", "kind", "resources"]);
    if keys != allowed {
        return Err(format!("keys {keys:?}, want exactly {allowed:?}"));
    }
    if kind_of(doc)
        != (
            "kustomize.config.k8s.io/v1beta1".into(),
            "Kustomization".into(),
        )
    {
        return Err(format!("{:?} is not a v1beta1 Kustomization", kind_of(doc)));
    }
    let resources: Vec<String> =
        serde_json::from_value(obj["resources"].clone()).map_err(|e| format!("resources: {e}"))?;
    let listed: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
    if listed.len() != resources.len() {
        return Err(format!("resources {resources:?} list a file twice"));
    }
    let want: BTreeSet<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| *f != KUSTOMIZATION && *f != BUNDLE)
        .collect();
    if listed != want {
        return Err(format!(
            "resources {listed:?} are not the manifests {want:?} (missing: {:?}, not a file: {:?})",
            want.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&want).collect::<Vec<_>>()
        ));
    }
    Ok(resources)
}

fn check_kustomization(doc: &Value) -> Result<Vec<String>, String> {
    check_kustomization_against(doc, &yaml_files(&manifests_dir()))
}

fn kustomization() -> (Value, Vec<String>) {
    let docs = documents_of(&manifests_dir().join(KUSTOMIZATION));
    assert_eq!(docs.len(), 1);
    let resources = check_kustomization(&docs[0]).expect("kustomization");
    (docs[0].clone(), resources)
}

/// What hack/manifests.sh writes: a header, then per resource `---`, `# Source: FILE`, the file.
fn bundle(dir: &Path, resources: &[String]) -> String {
    let mut out = String::from(
        "# veth-xdp: every resource of manifests/ in one file, for kubectl apply -f.\n\
         # Generated by hack/manifests.sh from the files kustomization.yaml lists; do not edit.\n",
    );
    for file in resources {
        out.push_str(&format!("---\n# Source: {file}\n"));
        out.push_str(&read(&dir.join(file)));
    }
    out
}

fn check_bundle(text: &str, dir: &Path, resources: &[String]) -> Result<(), String> {
    let want = bundle(dir, resources);
    if text == want {
        return Ok(());
    }
    let line = text
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| text.lines().count().min(want.lines().count()));
    Err(format!(
        "{BUNDLE} is not the concatenation of {resources:?} (first difference at line {}): \
         run hack/manifests.sh",
        line + 1
    ))
}

#[test]
fn kustomization_lists_exactly_the_manifests() {
    let (doc, resources) = kustomization();
    assert_eq!(resources[0], "namespace.yaml", "the namespace comes first");
    let files = yaml_files(&manifests_dir());

    let mut bad = doc.clone();
    bad["resources"].as_array_mut().unwrap().pop();
    let e = check_kustomization_against(&bad, &files).unwrap_err();
    assert!(e.contains("missing"), "{e}");

    let mut bad = doc.clone();
    bad["resources"]
        .as_array_mut()
        .unwrap()
        .push(json!("service.yaml"));
    let e = check_kustomization_against(&bad, &files).unwrap_err();
    assert!(e.contains("service.yaml"), "{e}");

    let mut more = files.clone();
    more.push("priorityclass.yaml".into());
    assert!(check_kustomization_against(&doc, &more).is_err());

    let mut bad = doc.clone();
    bad["namespace"] = json!("kube-system");
    assert!(check_kustomization_against(&bad, &files).is_err());
}

#[test]
fn bundle_is_exactly_the_concatenation_of_the_parts() {
    let (_, resources) = kustomization();
    let dir = manifests_dir();
    let text = read(&dir.join(BUNDLE));
    check_bundle(&text, &dir, &resources).unwrap();

    let e = check_bundle(
        &text.replace("maxUnavailable: 1", "maxUnavailable: 2"),
        &dir,
        &resources,
    )
    .unwrap_err();
    assert!(e.contains("run hack/manifests.sh"), "{e}");
    let mut reordered = resources.clone();
    reordered.swap(0, 1);
    assert!(check_bundle(&text, &dir, &reordered).is_err());
}

/// kubectl's own kustomize (the one `kubectl apply -k` runs) renders the same objects as the
/// bundle. kubectl is built from source by conformance/kubernetes/build.sh into its cache
/// (`VETH_XDP_KUBECTL` overrides); without it the test says so and checks nothing.
#[test]
fn kubectl_kustomize_renders_the_bundle() {
    let kubectl = std::env::var_os("VETH_XDP_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::kube::cache_bin().join("kubectl"));
    if !kubectl.exists() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED kubectl_kustomize_renders_the_bundle: no {} (bash conformance/kubernetes/build.sh builds it)",
            kubectl.display()
        );
        return;
    }
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(manifests_dir())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = |d: &Value| {
        (
            kind_of(d),
            d["metadata"]["name"].as_str().unwrap_or("").to_string(),
        )
    };
    let index = |docs: Vec<Value>| -> BTreeMap<_, Value> {
        docs.into_iter().map(|d| (key(&d), d)).collect()
    };
    let rendered = index(documents(&String::from_utf8_lossy(&out.stdout)).unwrap());
    let bundle = index(documents_of(&manifests_dir().join(BUNDLE)));
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        bundle.keys().collect::<Vec<_>>(),
        "objects"
    );
    for (k, doc) in &bundle {
        assert_eq!(&rendered[k], doc, "{k:?} as kustomize renders it");
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC

/// The ClusterRole's grants as (apiGroup, resource, verb); refuses resourceNames,
/// nonResourceURLs and aggregation, then compares with exactly `GRANTS` × `VERBS`.
fn check_grants(role: &ClusterRole) -> Result<(), String> {
    if role.aggregation_rule.is_some() {
        return Err("an aggregationRule grants whatever other roles do".into());
    }
    let mut got = BTreeSet::new();
    for (i, rule) in role.rules.iter().flatten().enumerate() {
        if rule.resource_names.is_some() || rule.non_resource_urls.is_some() {
            return Err(format!("rules[{i}]: resourceNames/nonResourceURLs"));
        }
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    got.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    let want: BTreeSet<(String, String, String)> = GRANTS
        .iter()
        .flat_map(|(g, r)| {
            VERBS
                .iter()
                .map(|v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect();
    if got != want {
        return Err(format!(
            "grants too much {:?}, too little {:?}",
            got.difference(&want).collect::<Vec<_>>(),
            want.difference(&got).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

#[test]
fn cluster_role_grants_exactly_get_list_watch_on_nodes_and_servicecidrs() {
    let (doc, role) = manifest::<ClusterRole>("clusterrole.yaml");
    check_grants(&role).unwrap();

    for (pointer, value, why) in [
        (
            "/rules/0/verbs/2",
            json!("update"),
            "update instead of watch",
        ),
        ("/rules/1/resources/0", json!("services"), "services"),
        ("/rules/0/apiGroups/0", json!("*"), "any group"),
    ] {
        let mut bad = doc.clone();
        set(&mut bad, pointer, value);
        let role = typed::<ClusterRole>(&bad).unwrap();
        assert!(check_grants(&role).is_err(), "{why} accepted");
    }
    let mut bad = doc.clone();
    bad["rules"][0]["resourceNames"] = json!(["node-a"]);
    assert!(check_grants(&typed::<ClusterRole>(&bad).unwrap()).is_err());
    let mut bad = doc;
    bad["rules"][1]["verbs"]
        .as_array_mut()
        .unwrap()
        .push(json!("create"));
    let e = check_grants(&typed::<ClusterRole>(&bad).unwrap()).unwrap_err();
    assert!(e.contains("create"), "{e}");
}

/// The objects name each other: binding → role and service account, DaemonSet → service
/// account and ConfigMap; every namespaced object is in the veth-xdp namespace.
fn check_references(
    binding: &ClusterRoleBinding,
    ds: &DaemonSet,
    objects: &[(&str, Option<&str>)],
) -> Result<(), String> {
    let exists =
        |kind: &str, name: &str| objects.iter().any(|(k, n)| *k == kind && *n == Some(name));
    if binding.role_ref.kind != "ClusterRole" || !exists("ClusterRole", &binding.role_ref.name) {
        return Err(format!(
            "roleRef {:?} is not our ClusterRole",
            binding.role_ref
        ));
    }
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    if subjects.len() != 1
        || subjects[0].kind != "ServiceAccount"
        || !exists("ServiceAccount", &subjects[0].name)
        || subjects[0].namespace.as_deref() != Some(NAMESPACE)
    {
        return Err(format!("subjects {subjects:?} are not our service account"));
    }
    let pod = ds.spec.template.spec.as_ref().ok_or("no pod spec")?;
    let sa = pod.service_account_name.as_deref().unwrap_or("default");
    if !exists("ServiceAccount", sa) {
        return Err(format!("serviceAccountName {sa} is not ours"));
    }
    let container = only_container(ds)?;
    for from in container.env_from.iter().flatten() {
        let name = from.config_map_ref.as_ref().map(|c| c.name.as_str());
        if !name.is_some_and(|n| exists("ConfigMap", n)) {
            return Err(format!("envFrom {from:?} is not our ConfigMap"));
        }
    }
    for v in pod.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            if !exists("ConfigMap", &cm.name) {
                return Err(format!("volume {} names ConfigMap {}", v.name, cm.name));
            }
        }
    }
    Ok(())
}

#[test]
fn objects_refer_to_each_other_and_live_in_the_namespace() {
    let (_, ns) = manifest::<Namespace>("namespace.yaml");
    assert_eq!(ns.metadata.name.as_deref(), Some(NAMESPACE));
    let (_, sa) = manifest::<ServiceAccount>("serviceaccount.yaml");
    let (_, role) = manifest::<ClusterRole>("clusterrole.yaml");
    let (binding_doc, binding) = manifest::<ClusterRoleBinding>("clusterrolebinding.yaml");
    let (_, cm) = manifest::<ConfigMap>("configmap.yaml");
    let (_, ds) = manifest::<DaemonSet>("daemonset.yaml");
    for (kind, meta) in [
        ("ServiceAccount", &sa.metadata),
        ("ConfigMap", &cm.metadata),
        ("DaemonSet", &ds.metadata),
    ] {
        assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE), "{kind}");
        assert_eq!(meta.name.as_deref(), Some(NAME), "{kind}");
    }
    assert_eq!(role.metadata.namespace, None);
    let objects = [
        ("ServiceAccount", sa.metadata.name.as_deref()),
        ("ClusterRole", role.metadata.name.as_deref()),
        ("ConfigMap", cm.metadata.name.as_deref()),
    ];
    check_references(&binding, &ds, &objects).unwrap();

    let mut bad = binding_doc.clone();
    bad["subjects"][0]["namespace"] = json!("kube-system");
    let bad: ClusterRoleBinding = typed(&bad).unwrap();
    assert!(check_references(&bad, &ds, &objects).is_err());
    let mut bad = binding_doc;
    bad["roleRef"]["name"] = json!("cluster-admin");
    let bad: ClusterRoleBinding = typed(&bad).unwrap();
    assert!(check_references(&binding, &ds, &objects[..1]).is_err());
    assert!(check_references(&bad, &ds, &objects).is_err());
}

// ---------------------------------------------------------------------------------------------
// ConfigMap: the template, the env keys

fn config_map() -> ConfigMap {
    manifest::<ConfigMap>("configmap.yaml").1
}

fn template_of(cm: &ConfigMap) -> &str {
    cm.data
        .as_ref()
        .and_then(|d| d.get(TEMPLATE_KEY))
        .map(String::as_str)
        .expect("the ConfigMap holds conflist.template")
}

/// The ConfigMap's settings: every key but the template.
fn env_keys(cm: &ConfigMap) -> BTreeMap<String, String> {
    let mut data = cm.data.clone().unwrap_or_default();
    data.remove(TEMPLATE_KEY);
    data
}

fn node_values(mtu: Option<u32>, queues: Option<u32>) -> NodeValues {
    NodeValues {
        uplink: "eth1".into(),
        pod_cidr: "192.0.2.128/25".parse().unwrap(),
        subnet: "192.0.2.0/24".parse().unwrap(),
        gateway: "192.0.2.1".parse().unwrap(),
        service_cidrs: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ],
        mtu,
        queues,
    }
}

/// The template renders with the installer's placeholders (with and without the optional
/// values) into a conflist the plugin accepts, naming the uplink it was given.
fn check_template(template: &str) -> Result<(), String> {
    for values in [node_values(None, None), node_values(Some(1500), Some(4))] {
        let rendered = render(template, &values.placeholders().map_err(|e| e.to_string())?)?;
        let (_, conf) = check_conflist(&rendered)?;
        if conf.uplink.as_deref() != Some("eth1") || conf.mtu != values.mtu {
            return Err(format!(
                "rendered uplink {:?} mtu {:?}: the placeholders are not used",
                conf.uplink, conf.mtu
            ));
        }
    }
    Ok(())
}

#[test]
fn configmap_template_renders_into_a_conflist_the_plugin_accepts() {
    let cm = config_map();
    let template = template_of(&cm);
    assert_eq!(
        template, DEFAULT_TEMPLATE,
        "the ConfigMap ships the installer's built-in template"
    );
    check_template(template).unwrap();

    let e = check_template(&template.replace("{{uplink}}", "{{upLink}}")).unwrap_err();
    assert!(e.contains("unknown placeholder"), "{e}");
    let e = check_template(&template.replace("{{mtu}}", "\"{{mtu}}\"")).unwrap_err();
    assert!(e.contains("mtu"), "{e}");
    let e = check_template(&template.replace(
        "\"veth-xdp\",\n      \"uplink",
        "\"bridge\",\n      \"uplink",
    ))
    .unwrap_err();
    assert!(e.contains("no plugin"), "{e}");
    assert!(check_template(&template.replace("{{uplink}}", "eth0")).is_err());
}

#[test]
fn configmap_settings_default_to_not_given_and_cleanup_off() {
    let keys = env_keys(&config_map());
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "VETH_XDP_CLEANUP_ON_EXIT",
            "VETH_XDP_INTERVAL",
            "VETH_XDP_MTU",
            "VETH_XDP_POD_CIDR",
            "VETH_XDP_QUEUES",
            "VETH_XDP_SERVICE_CIDRS",
            "VETH_XDP_UPLINK",
        ]
    );
    assert_eq!(keys["VETH_XDP_CLEANUP_ON_EXIT"], "false");
    assert_eq!(keys["VETH_XDP_INTERVAL"], "10");
    for k in ["UPLINK", "POD_CIDR", "SERVICE_CIDRS", "MTU", "QUEUES"] {
        assert_eq!(
            keys[&format!("VETH_XDP_{k}")],
            "",
            "{k}: empty = the default"
        );
    }
}

/// The env names `text` (an `--help` output) mentions.
fn env_names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| w.starts_with("VETH_XDP_") || *w == "NODE_NAME" || *w == "KUBECONFIG")
        .map(str::to_string)
        .collect()
}

/// The ConfigMap's keys and the DaemonSet's own env are names the binary documents, and every
/// VETH_XDP_* name it documents is set (but those left out on purpose).
fn check_env_against_help(
    configmap_keys: &BTreeSet<String>,
    daemonset_env: &BTreeSet<String>,
    help: &str,
) -> Result<(), String> {
    let documented = env_names_in(help);
    let set: BTreeSet<String> = configmap_keys.union(daemonset_env).cloned().collect();
    let unknown: Vec<&String> = set.difference(&documented).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "set but not read by `veth-xdp install` (per --help): {unknown:?}"
        ));
    }
    let unset: Vec<&String> = documented
        .iter()
        .filter(|n| n.starts_with("VETH_XDP_"))
        .filter(|n| !set.contains(*n) && !ENV_NOT_IN_CONFIGMAP.contains(&n.as_str()))
        .collect();
    if !unset.is_empty() {
        return Err(format!(
            "read by the binary but not in the ConfigMap: {unset:?}"
        ));
    }
    Ok(())
}

fn only_container(ds: &DaemonSet) -> Result<&Container, String> {
    let pod = ds.spec.template.spec.as_ref().ok_or("no pod spec")?;
    match pod.containers.as_slice() {
        [c] if pod.init_containers.is_none() => Ok(c),
        _ => Err("the agent's pod has exactly one container".into()),
    }
}

fn daemonset() -> (Value, DaemonSet) {
    manifest::<DaemonSet>("daemonset.yaml")
}

/// The DaemonSet's env: the ConfigMap whole (envFrom) and NODE_NAME from the downward API.
fn daemonset_env(ds: &DaemonSet) -> BTreeSet<String> {
    let c = only_container(ds).unwrap();
    let from: Vec<Option<&str>> = c
        .env_from
        .iter()
        .flatten()
        .map(|f| f.config_map_ref.as_ref().map(|r| r.name.as_str()))
        .collect();
    assert_eq!(from, [Some(NAME)], "envFrom: the ConfigMap only");
    let env = c.env.as_deref().unwrap_or_default();
    assert_eq!(env.len(), 1, "env: NODE_NAME only");
    assert_eq!(env[0].name, "NODE_NAME");
    let field = env[0]
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("NODE_NAME from the downward API");
    assert_eq!(field.field_path, "spec.nodeName");
    env.iter().map(|e| e.name.clone()).collect()
}

fn run_binary(args: &[&str], env: &BTreeMap<String, String>) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veth-xdp"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env)
        .output()
        .expect("run veth-xdp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn env_keys_are_the_ones_the_binary_reads() {
    let cm = config_map();
    let (_, ds) = daemonset();
    let configmap_keys: BTreeSet<String> = env_keys(&cm).into_keys().collect();
    let ds_env = daemonset_env(&ds);

    // The rule itself, on a help text as the agent's will look (clap's `[env: NAME=]`).
    let mut fake_help: String = configmap_keys
        .iter()
        .chain(&ds_env)
        .map(|k| format!("  --x <V>  something [env: {k}=]\n"))
        .collect();
    fake_help.push_str("  --listen <ADDR:PORT>  [env: VETH_XDP_LISTEN=] [default: 0.0.0.0:9765]\n");
    check_env_against_help(&configmap_keys, &ds_env, &fake_help).unwrap();
    let mut typo = configmap_keys.clone();
    typo.insert("VETH_XDP_UPLNK".into());
    let e = check_env_against_help(&typo, &ds_env, &fake_help).unwrap_err();
    assert!(e.contains("VETH_XDP_UPLNK"), "{e}");
    let e = check_env_against_help(
        &configmap_keys,
        &ds_env,
        &(fake_help.clone() + "  --log-level <L>  [env: VETH_XDP_LOG_LEVEL=]\n"),
    )
    .unwrap_err();
    assert!(e.contains("VETH_XDP_LOG_LEVEL"), "{e}");

    let (code, help, err) = run_binary(&["install", "--help"], &BTreeMap::new());
    assert_eq!(code, 0, "veth-xdp install --help: {err}");
    assert!(
        help.contains("VETH_XDP_"),
        "install --help names its env variables: {help}"
    );
    check_env_against_help(&configmap_keys, &ds_env, &help).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The DaemonSet: host paths, and its shape

/// One host path: (hostPath, mountPath, propagation), propagation "None" when unset.
type HostPath = (String, String, String);

/// The DaemonSet's hostPath volumes with their mounts; each hostPath volume is mounted exactly
/// once.
fn daemonset_host_paths(ds: &DaemonSet) -> Result<BTreeSet<HostPath>, String> {
    let pod = ds.spec.template.spec.as_ref().ok_or("no pod spec")?;
    let mounts = only_container(ds)?
        .volume_mounts
        .as_deref()
        .unwrap_or_default();
    let mut out = BTreeSet::new();
    for v in pod.volumes.iter().flatten() {
        let Some(host) = &v.host_path else { continue };
        let of: Vec<_> = mounts.iter().filter(|m| m.name == v.name).collect();
        let [m] = of.as_slice() else {
            return Err(format!(
                "hostPath volume {} is mounted {} times",
                v.name,
                of.len()
            ));
        };
        out.insert((
            host.path.clone(),
            m.mount_path.clone(),
            m.mount_propagation.clone().unwrap_or_else(|| "None".into()),
        ));
    }
    Ok(out)
}

/// `--print-host-paths`'s JSON: objects with name, hostPath, mountPath, propagation.
fn parse_host_paths(json: &str) -> Result<BTreeSet<HostPath>, String> {
    let list: Vec<Value> =
        serde_json::from_str(json).map_err(|e| format!("--print-host-paths: {e}: {json}"))?;
    list.iter()
        .map(|p| {
            let s = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("--print-host-paths entry {p} lacks {k}"))
            };
            s("name")?;
            Ok((s("hostPath")?, s("mountPath")?, s("propagation")?))
        })
        .collect()
}

/// Both directions: every listed path is a volume + mount, and nothing else is.
fn compare_host_paths(
    daemonset: &BTreeSet<HostPath>,
    wanted: &BTreeSet<HostPath>,
) -> Result<(), String> {
    if daemonset == wanted {
        return Ok(());
    }
    Err(format!(
        "hostPath volumes differ: missing from the DaemonSet {:?}; in the DaemonSet only {:?}",
        wanted.difference(daemonset).collect::<Vec<_>>(),
        daemonset.difference(wanted).collect::<Vec<_>>()
    ))
}

/// The contract of `--print-host-paths` for the default host root and the shipped template
/// (the plugin's default stateDir and bpfRoot), as the agent's CLI specifies it.
fn contract_host_paths() -> BTreeSet<HostPath> {
    [
        ("/opt/cni/bin", "/host/opt/cni/bin", "None"),
        ("/etc/cni/net.d", "/host/etc/cni/net.d", "None"),
        ("/sys/fs/bpf", "/sys/fs/bpf", "Bidirectional"),
        (
            veth_xdp::defaults::STATE_DIR,
            veth_xdp::defaults::STATE_DIR,
            "None",
        ),
    ]
    .into_iter()
    .map(|(h, m, p)| (h.to_string(), m.to_string(), p.to_string()))
    .collect()
}

#[test]
fn daemonset_host_paths_match_the_agent_contract() {
    let (doc, ds) = daemonset();
    let paths = daemonset_host_paths(&ds).unwrap();
    compare_host_paths(&paths, &contract_host_paths()).unwrap();
    assert!(
        veth_xdp::defaults::BPF_ROOT.starts_with("/sys/fs/bpf/"),
        "the pin root lies on the bpffs mount"
    );

    let mut bad = doc.clone();
    let mounts = bad
        .pointer_mut("/spec/template/spec/containers/0/volumeMounts")
        .and_then(Value::as_array_mut)
        .unwrap();
    let bpf = mounts.iter_mut().find(|m| m["name"] == "bpffs").unwrap();
    bpf["mountPropagation"] = json!("HostToContainer");
    let bad: DaemonSet = typed(&bad).unwrap();
    let e = compare_host_paths(&daemonset_host_paths(&bad).unwrap(), &contract_host_paths())
        .unwrap_err();
    assert!(
        e.contains("Bidirectional") && e.contains("HostToContainer"),
        "{e}"
    );

    let mut bad = doc.clone();
    bad.pointer_mut("/spec/template/spec/volumes")
        .and_then(Value::as_array_mut)
        .unwrap()
        .push(json!({"name": "root", "hostPath": {"path": "/"}}));
    bad.pointer_mut("/spec/template/spec/containers/0/volumeMounts")
        .and_then(Value::as_array_mut)
        .unwrap()
        .push(json!({"name": "root", "mountPath": "/host"}));
    let bad: DaemonSet = typed(&bad).unwrap();
    assert!(
        compare_host_paths(&daemonset_host_paths(&bad).unwrap(), &contract_host_paths()).is_err()
    );

    let mut bad = doc;
    bad.pointer_mut("/spec/template/spec/containers/0/volumeMounts")
        .and_then(Value::as_array_mut)
        .unwrap()
        .retain(|m| m["name"] != "state");
    let bad: DaemonSet = typed(&bad).unwrap();
    let e = daemonset_host_paths(&bad).unwrap_err();
    assert!(e.contains("state is mounted 0 times"), "{e}");
}

#[test]
fn daemonset_host_paths_are_what_the_binary_prints() {
    let (_, ds) = daemonset();
    let cm = config_map();
    let dir = std::env::temp_dir().join(format!("veth-xdp-manifests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("conflist.template");
    std::fs::write(&template, template_of(&cm)).unwrap();

    let container = only_container(&ds).unwrap();
    let mut args: Vec<String> = container.args.clone().unwrap_or_default();
    let at = args
        .iter()
        .position(|a| a == TEMPLATE_MOUNT)
        .expect("the args name the mounted template");
    args[at] = template.display().to_string();
    args.push("--print-host-paths".into());
    let mut env = env_keys(&cm);
    env.insert("NODE_NAME".into(), "node-a".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run_binary(&argv, &env);
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(code, 0, "veth-xdp {argv:?}: {err}");
    let printed = parse_host_paths(&out).unwrap();
    compare_host_paths(&daemonset_host_paths(&ds).unwrap(), &printed).unwrap();
}

#[test]
fn printed_host_paths_are_parsed_and_compared_both_ways() {
    let (_, ds) = daemonset();
    let ours = daemonset_host_paths(&ds).unwrap();
    let entry = |h: &str, m: &str, p: &str| json!({"name": "x", "hostPath": h, "mountPath": m, "propagation": p});
    let mut list: Vec<Value> = ours.iter().map(|(h, m, p)| entry(h, m, p)).collect();
    let printed = parse_host_paths(&Value::Array(list.clone()).to_string()).unwrap();
    compare_host_paths(&ours, &printed).unwrap();

    list.push(entry("/var/log", "/var/log", "None"));
    let printed = parse_host_paths(&Value::Array(list.clone()).to_string()).unwrap();
    let e = compare_host_paths(&ours, &printed).unwrap_err();
    assert!(
        e.contains("missing from the DaemonSet [(\"/var/log\""),
        "{e}"
    );
    list.pop();
    list[0]["mountPath"] = json!("/elsewhere");
    let printed = parse_host_paths(&Value::Array(list.clone()).to_string()).unwrap();
    assert!(compare_host_paths(&ours, &printed).is_err());
    list[0].as_object_mut().unwrap().remove("propagation");
    assert!(parse_host_paths(&Value::Array(list).to_string()).is_err());
}

/// The pod spec's settings the brief fixes (what a DaemonSet of a CNI agent needs).
fn check_daemonset_shape(ds: &DaemonSet) -> Result<(), String> {
    let spec = &ds.spec;
    let pod = spec.template.spec.as_ref().ok_or("no pod spec")?;
    let c = only_container(ds)?;
    let mut wrong = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            wrong.push(what.to_string())
        }
    };
    let strategy = spec.update_strategy.as_ref();
    want(
        strategy.and_then(|s| s.type_.as_deref()) == Some("RollingUpdate")
            && strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref())
                == Some(&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
        "updateStrategy RollingUpdate, maxUnavailable 1",
    );
    want(pod.host_network == Some(true), "hostNetwork");
    want(
        pod.dns_policy.as_deref() == Some("ClusterFirstWithHostNet"),
        "dnsPolicy ClusterFirstWithHostNet",
    );
    want(
        pod.priority_class_name.as_deref() == Some("system-node-critical"),
        "priorityClassName system-node-critical",
    );
    let tolerations = pod.tolerations.as_deref().unwrap_or_default();
    want(
        tolerations.iter().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()
        }),
        "a toleration of everything (operator Exists, no key, no effect)",
    );
    want(
        pod.termination_grace_period_seconds.is_some(),
        "terminationGracePeriodSeconds",
    );
    want(
        c.image.as_deref() == Some("veth-xdp:0.1.0"),
        "image veth-xdp:0.1.0",
    );
    want(
        c.image_pull_policy.as_deref() == Some("IfNotPresent"),
        "imagePullPolicy IfNotPresent",
    );
    want(
        c.security_context.as_ref().and_then(|s| s.privileged) == Some(true),
        "privileged",
    );
    want(
        c.args.as_deref().is_some_and(|a| {
            a.starts_with(&["install".into(), "--template".into(), TEMPLATE_MOUNT.into()])
                && !a.iter().any(|x| x == "--once")
        }),
        "args install --template /etc/veth-xdp/conflist.template, no --once",
    );
    let port = c.ports.as_deref().unwrap_or_default();
    want(
        port.len() == 1
            && port[0].container_port == 9765
            && port[0].name.as_deref() == Some("metrics"),
        "containerPort 9765 named metrics",
    );
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
        want(
            get.is_some_and(|g| {
                g.path.as_deref() == Some(path)
                    && g.port
                        == k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9765)
            }),
            &format!("a probe on {path} at 9765"),
        );
    }
    want(
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
        "cpu and memory requests",
    );
    let template_mounted = pod.volumes.iter().flatten().any(|v| {
        v.config_map.as_ref().is_some_and(|cm| {
            cm.name == NAME
                && cm.items.as_deref().is_some_and(|i| {
                    i.len() == 1 && i[0].key == TEMPLATE_KEY && i[0].path == TEMPLATE_KEY
                })
        }) && c.volume_mounts.iter().flatten().any(|m| {
            m.name == v.name && m.mount_path == "/etc/veth-xdp" && m.read_only == Some(true)
        })
    });
    want(
        template_mounted,
        "the template mounted read-only at /etc/veth-xdp",
    );
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("the DaemonSet lacks: {}", wrong.join("; ")))
    }
}

#[test]
fn daemonset_has_what_a_cni_node_agent_needs() {
    let (doc, ds) = daemonset();
    check_daemonset_shape(&ds).unwrap();
    for (pointer, value, lacks) in [
        (
            "/spec/template/spec/hostNetwork",
            json!(false),
            "hostNetwork",
        ),
        (
            "/spec/updateStrategy/rollingUpdate/maxUnavailable",
            json!("100%"),
            "maxUnavailable 1",
        ),
        (
            "/spec/template/spec/tolerations/0",
            json!({"operator": "Exists", "effect": "NoSchedule"}),
            "toleration",
        ),
        (
            "/spec/template/spec/containers/0/imagePullPolicy",
            json!("Always"),
            "IfNotPresent",
        ),
        (
            "/spec/template/spec/containers/0/readinessProbe/httpGet/path",
            json!("/healthz"),
            "/readyz",
        ),
        (
            "/spec/template/spec/containers/0/args/0",
            json!("setup"),
            "args",
        ),
    ] {
        let mut bad = doc.clone();
        set(&mut bad, pointer, value);
        let e = check_daemonset_shape(&typed(&bad).unwrap()).unwrap_err();
        assert!(e.contains(lacks), "{pointer}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Multus: the NetworkAttachmentDefinition and the pod asking for it

/// What Multus reads of a NetworkAttachmentDefinition (k8s.cni.cncf.io/v1; not a core type, so
/// checked by hand): metadata.name/namespace, spec.config = a JSON string holding a CNI config
/// or conflist with cniVersion and name (here: the NAD's name). Nothing else may be there. The
/// config must be a conflist the installer's check accepts whose veth-xdp entry declares the
/// mac and ips capabilities (Multus passes runtimeConfig only for declared ones). Returns
/// (namespace, name, the veth-xdp entry with the list's cniVersion and name).
fn check_nad(doc: &Value) -> Result<(String, String, Value), String> {
    let only = |v: &Value, what: &str, keys: &[&str]| -> Result<(), String> {
        let obj = v.as_object().ok_or(format!("{what} is not a mapping"))?;
        match obj.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(format!("{what}.{k}: not a field Multus reads")),
            None => Ok(()),
        }
    };
    only(doc, "", &["apiVersion", "kind", "metadata", "spec"])?;
    if kind_of(doc)
        != (
            "k8s.cni.cncf.io/v1".into(),
            "NetworkAttachmentDefinition".into(),
        )
    {
        return Err(format!(
            "{:?} is not a k8s.cni.cncf.io/v1 NAD",
            kind_of(doc)
        ));
    }
    only(
        &doc["metadata"],
        "metadata",
        &["name", "namespace", "labels", "annotations"],
    )?;
    let name = doc["metadata"]["name"].as_str().ok_or("metadata.name")?;
    let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("default");
    only(&doc["spec"], "spec", &["config"])?;
    let text = doc["spec"]["config"]
        .as_str()
        .ok_or("spec.config must be a string holding JSON")?;
    let config: Value =
        serde_json::from_str(text).map_err(|e| format!("spec.config is not JSON: {e}"))?;
    if config["name"] != name {
        return Err(format!("spec.config name {} is not {name}", config["name"]));
    }
    check_conflist(text).map_err(|e| format!("spec.config: {e}"))?;
    let entry = config["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|e| e["type"] == "veth-xdp"))
        .ok_or("spec.config: a conflist with a veth-xdp entry")?;
    for cap in ["mac", "ips"] {
        if entry["capabilities"][cap] != json!(true) {
            return Err(format!("the veth-xdp entry lacks capabilities.{cap}: true"));
        }
    }
    let mut entry = entry.clone();
    entry["cniVersion"] = config["cniVersion"].clone();
    entry["name"] = config["name"].clone();
    Ok((namespace.into(), name.into(), entry))
}

/// The pod's `k8s.v1.cni.cncf.io/networks` request for the NAD, turned into what the plugin
/// gets from Multus (runtimeConfig.mac/ips for the declared capabilities) and parsed by the
/// plugin's own config parser: the requested MAC and IPs must come through.
fn check_pod_request(pod: &Pod, nad: &(String, String, Value)) -> Result<(), String> {
    let (nad_ns, nad_name, entry) = nad;
    let annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("k8s.v1.cni.cncf.io/networks"))
        .ok_or("no k8s.v1.cni.cncf.io/networks annotation")?;
    let requests: Vec<Value> =
        serde_json::from_str(annotation).map_err(|e| format!("the annotation: {e}"))?;
    let pod_ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let request = requests
        .iter()
        .find(|r| {
            r["name"] == nad_name.as_str()
                && r["namespace"].as_str().unwrap_or(pod_ns) == nad_ns.as_str()
        })
        .ok_or(format!("no request for {nad_ns}/{nad_name}"))?;
    let allowed = ["name", "namespace", "interface", "mac", "ips"];
    if let Some(k) = request
        .as_object()
        .unwrap()
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
    {
        return Err(format!("request key {k}: not used here"));
    }
    if request["interface"] != "net1" {
        return Err("the request names interface net1".into());
    }
    let mut stdin = entry.clone();
    stdin["runtimeConfig"] = json!({"mac": request["mac"], "ips": request["ips"]});
    let conf = veth_xdp::cni::config::parse(&serde_json::to_vec(&stdin).unwrap(), "")
        .map_err(|e| format!("the plugin refuses the request: {e}"))?;
    let mac = conf.requested_mac.map(|m| veth_xdp::mac::mac_to_string(&m));
    if mac.as_deref() != request["mac"].as_str() {
        return Err(format!(
            "MAC {mac:?} is not the requested {}",
            request["mac"]
        ));
    }
    let ips: Vec<String> = conf.requested_ips.iter().map(|i| i.to_string()).collect();
    if json!(ips) != request["ips"] {
        return Err(format!(
            "IPs {ips:?} are not the requested {}",
            request["ips"]
        ));
    }
    Ok(())
}

fn multus_example() -> (Value, Value) {
    let nad = documents_of(&multus_dir().join("network-attachment-definition.yaml"));
    let pod = documents_of(&multus_dir().join("pod.yaml"));
    assert_eq!((nad.len(), pod.len()), (1, 1));
    (nad[0].clone(), pod[0].clone())
}

#[test]
fn multus_nad_gives_the_pod_net1_with_its_mac_and_ip() {
    let (nad_doc, pod_doc) = multus_example();
    let nad = check_nad(&nad_doc).unwrap();
    assert_eq!(nad.2["uplink"], "eth1", "the second NIC");
    let pod: Pod = typed(&pod_doc).unwrap();
    check_pod_request(&pod, &nad).unwrap();

    let mut bad = nad_doc.clone();
    rename_key(&mut bad, "/spec", "config", "confg");
    assert!(check_nad(&bad).unwrap_err().contains("spec.confg"));
    let no_ips = nad_doc["spec"]["config"]
        .as_str()
        .unwrap()
        .replace("\"ips\": true", "\"ips\": false");
    let mut bad = nad_doc.clone();
    bad["spec"]["config"] = json!(no_ips);
    assert!(check_nad(&bad).unwrap_err().contains("capabilities.ips"));
    let mut bad = nad_doc.clone();
    bad["spec"]["config"] = json!(nad_doc["spec"]["config"]
        .as_str()
        .unwrap()
        .replace("\"uplink\"", "\"mtu\": \"x\", \"uplink\""));
    assert!(check_nad(&bad).unwrap_err().contains("mtu"));
    let mut bad = nad_doc.clone();
    bad["spec"]["config"] = json!({"cniVersion": "1.0.0"});
    assert!(
        check_nad(&bad).is_err(),
        "config as an object, not a string"
    );

    let annotation = |pod_doc: &Value| {
        pod_doc["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (from, to) in [
        ("02:42:c6:33:64:0a", "01:42:c6:33:64:0a"),
        ("198.51.100.10/24", "198.51.100.300/24"),
        ("\"veth-xdp-eth1\"", "\"veth-xdp-eth2\""),
    ] {
        let mut bad = pod_doc.clone();
        bad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] =
            json!(annotation(&pod_doc).replace(from, to));
        let pod: Pod = typed(&bad).unwrap();
        assert!(check_pod_request(&pod, &nad).is_err(), "{to} accepted");
    }
}

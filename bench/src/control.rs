//! Control-plane figures per plugin (with host-local IPAM).
use serde::Serialize;

/// Control-plane figures of one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginCp {
    pub plugin: String,
    pub na: Option<String>,
}

/// Markdown section for the control-plane figures.
pub fn markdown(rows: &[PluginCp]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from("### Control plane\n\n| plugin | |\n|---|---|\n");
    for r in rows {
        s.push_str(&format!("| {} | {} |\n", r.plugin, r.na.as_deref().unwrap_or("")));
    }
    s
}

/// Charts of the control-plane figures (ADD p50 against existing pods).
pub fn charts(rows: &[PluginCp], out: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let _ = (rows, out);
    Ok(vec![])
}

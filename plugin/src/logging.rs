//! The logger: a file for the plugin (CNI stdout belongs to the protocol, so
//! logs never go there), stderr for the node agent (`kubectl logs`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

struct FileLogger {
    file: Mutex<Box<dyn Write + Send>>,
    level: log::LevelFilter,
    /// false: only records whose target is this crate (the netlink and aya
    /// crates log every message they parse at trace level)
    dependencies: bool,
}

/// Log targets of this crate start with its name.
const OWN_TARGET: &str = "veth_xdp";

impl log::Log for FileLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= self.level && (self.dependencies || meta.target().starts_with(OWN_TARGET))
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{}.{:03} pid={} {} {}\n",
            now.as_secs(),
            now.subsec_millis(),
            std::process::id(),
            record.level(),
            record.args()
        );
        if let Ok(mut f) = self.file.lock() {
            // O_APPEND keeps concurrent plugin processes' lines whole.
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the file logger once. A log file that cannot be opened disables
/// logging rather than failing the CNI operation.
pub fn init(path: &Path, level: log::LevelFilter, dependencies: bool) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    install(Box::new(file), level, dependencies);
}

/// Logs to stderr (the node agent: its lines reach `kubectl logs`).
pub fn init_stderr(level: log::LevelFilter) {
    install(Box::new(std::io::stderr()), level, false);
}

fn install(out: Box<dyn Write + Send>, level: log::LevelFilter, dependencies: bool) {
    let logger = Box::new(FileLogger {
        file: Mutex::new(out),
        level,
        dependencies,
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

//! The plugin's operations as events, for the node agent's metrics: one JSON
//! line per verb appended to `<stateDir>/events` — only when that file exists.
//! The agent creates it, reads it incrementally and rotates it (to
//! `events.1`) when it grows past [`ROTATE_BYTES`]; a node without the agent
//! never has the file, so nothing grows there.
//!
//! Appends use O_APPEND with one `write(2)` per line: concurrent plugins never
//! interleave inside a line (a regular file's O_APPEND write is atomic with
//! respect to the file offset).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The events file under a state dir.
pub const FILE_NAME: &str = "events";
/// The reader rotates the file past this size.
pub const ROTATE_BYTES: u64 = 1 << 20;
/// A line longer than this is not ours (or torn): skipped.
const MAX_LINE: usize = 16 << 10;

/// One plugin invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// "ADD", "DEL", "CHECK", "GC", "STATUS"
    pub verb: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
    /// the pod (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME), when the runtime said
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// wall time of the verb, in seconds
    pub seconds: f64,
    /// the CNI error code; None = success
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Appends `event` if the events file exists (an agent reads it); a failure
/// is only logged: the verb's answer must not depend on the metrics.
pub fn append(state_dir: &Path, event: &Event) {
    let path = path(state_dir);
    let file = match OpenOptions::new().append(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log::warn!("open {} for the event: {e}", path.display());
            return;
        }
    };
    let mut line = serde_json::to_vec(event).expect("an event serialises");
    line.push(b'\n');
    if let Err(e) = (&file).write_all(&line) {
        log::warn!("append the event to {}: {e}", path.display());
    }
}

/// Reads the events file incrementally, across rotations.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    rotated: PathBuf,
    offset: u64,
    /// bytes of `events.1` read before the rotation (writers that opened the
    /// old file just before it may still append a line)
    rotated_offset: Option<u64>,
    /// an incomplete last line, kept for the next read
    partial: Vec<u8>,
}

impl Reader {
    /// Creates the events file (so plugins start writing) and reads from its
    /// current end: earlier events belong to an earlier agent.
    pub fn create(state_dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(state_dir)?;
        let path = path(state_dir);
        let file = OpenOptions::new().append(true).create(true).open(&path)?;
        let offset = file.metadata()?.len();
        Ok(Self {
            rotated: state_dir.join(format!("{FILE_NAME}.1")),
            path,
            offset,
            rotated_offset: None,
            partial: Vec::new(),
        })
    }

    /// Every complete event appended since the last call; rotates the file
    /// once it is past [`ROTATE_BYTES`]. Unparseable lines are skipped.
    pub fn read_new(&mut self) -> std::io::Result<Vec<Event>> {
        let mut out = Vec::new();
        if let Some(offset) = self.rotated_offset.take() {
            // Stragglers written into the old file after the rotation.
            let mut old = Vec::new();
            if let Ok(mut f) = File::open(&self.rotated) {
                f.seek(SeekFrom::Start(offset))?;
                f.read_to_end(&mut old)?;
            }
            parse_lines(&old, &mut out);
            let _ = fs::remove_file(&self.rotated);
        }
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Removed under us: start again.
                *self = Self::create(self.path.parent().unwrap_or(Path::new("/")))?;
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        if f.metadata()?.len() < self.offset {
            // Truncated by someone: read from the start.
            self.offset = 0;
            self.partial.clear();
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = std::mem::take(&mut self.partial);
        let read = f.read_to_end(&mut buf)?;
        self.offset += read as u64;
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        parse_lines(&buf[..complete], &mut out);
        if buf.len() - complete <= MAX_LINE {
            self.partial = buf[complete..].to_vec();
        }
        if self.offset >= ROTATE_BYTES {
            fs::rename(&self.path, &self.rotated)?;
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)?;
            self.rotated_offset = Some(self.offset);
            self.offset = 0;
        }
        Ok(out)
    }
}

fn parse_lines(bytes: &[u8], out: &mut Vec<Event>) {
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() || line.len() > MAX_LINE {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(e) => out.push(e),
            Err(e) => log::warn!("skipped an unreadable event line: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(verb: &str, code: Option<u32>) -> Event {
        Event {
            verb: verb.into(),
            network: "n".into(),
            container_id: "c".into(),
            ifname: "eth0".into(),
            namespace: Some("default".into()),
            pod: Some("p".into()),
            seconds: 0.012,
            code,
            msg: String::new(),
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vx-events-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn nothing_is_written_without_a_reader() {
        let d = tmpdir("noreader");
        append(&d, &event("ADD", None));
        assert!(!path(&d).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reader_sees_each_event_once_across_rotation() {
        let d = tmpdir("rotate");
        append(&d, &event("ADD", None)); // before the reader: not seen
        let mut r = Reader::create(&d).unwrap();
        append(&d, &event("ADD", None));
        append(&d, &event("DEL", Some(7)));
        let got = r.read_new().unwrap();
        assert_eq!(got, vec![event("ADD", None), event("DEL", Some(7))]);
        assert!(r.read_new().unwrap().is_empty());
        // A torn line waits for its end.
        let mut f = OpenOptions::new().append(true).open(path(&d)).unwrap();
        f.write_all(br#"{"verb":"ADD","network":"n","#).unwrap();
        assert!(r.read_new().unwrap().is_empty());
        f.write_all(b"\"seconds\":1.0}\n").unwrap();
        assert_eq!(r.read_new().unwrap().len(), 1);
        // Past the limit the file rotates; a straggler in the old file is still read.
        let mut n = 0;
        while fs::metadata(path(&d)).unwrap().len() < ROTATE_BYTES {
            append(&d, &event("ADD", None));
            n += 1;
        }
        assert_eq!(r.read_new().unwrap().len(), n);
        assert!(d.join("events.1").exists());
        let mut old = OpenOptions::new()
            .append(true)
            .open(d.join("events.1"))
            .unwrap();
        old.write_all(
            &[
                serde_json::to_vec(&event("CHECK", None)).unwrap(),
                b"\n".to_vec(),
            ]
            .concat(),
        )
        .unwrap();
        append(&d, &event("GC", None));
        let got: Vec<String> = r.read_new().unwrap().into_iter().map(|e| e.verb).collect();
        assert_eq!(got, vec!["CHECK", "GC"]);
        assert!(!d.join("events.1").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}

//! Namespaces owned by one benchmark run, removed on every exit path: by the
//! Drop of [`Netns`], and by the signal thread on SIGINT/SIGTERM.
use crate::sys;
use anyhow::Result;
use std::sync::Mutex;

/// Everything this process must remove if it is interrupted.
static OWNED: Mutex<Vec<Owned>> = Mutex::new(Vec::new());

#[derive(Clone, PartialEq)]
enum Owned {
    Netns(String),
    Dir(String),
}

fn own(o: Owned) {
    OWNED.lock().unwrap_or_else(|e| e.into_inner()).push(o);
}

fn disown(o: &Owned) {
    OWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|x| x != o);
}

fn remove(o: &Owned) {
    match o {
        Owned::Netns(n) => {
            let _ = sys::run("ip", &["netns", "del", n]);
        }
        Owned::Dir(d) => {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Removes everything still registered (namespaces first, newest first).
pub fn remove_all() {
    let all: Vec<Owned> = std::mem::take(&mut *OWNED.lock().unwrap_or_else(|e| e.into_inner()));
    for o in all.iter().rev().filter(|o| matches!(o, Owned::Netns(_))) {
        remove(o);
    }
    for o in all.iter().rev().filter(|o| matches!(o, Owned::Dir(_))) {
        remove(o);
    }
}

/// Blocks SIGINT/SIGTERM in every thread and starts a thread that, on either,
/// removes everything registered and exits 130. Call before spawning threads.
pub fn install_signal_cleanup() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            eprintln!("vx-bench: {sig:?}, removing namespaces");
            remove_all();
            std::process::exit(130);
        }
    });
    Ok(())
}

/// A network namespace created by this run, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Result<Self> {
        let _ = sys::run("ip", &["netns", "del", &name]);
        sys::run("ip", &["netns", "add", &name])?;
        own(Owned::Netns(name.clone()));
        sys::ip(&name, &["link", "set", "lo", "up"])?;
        Ok(Netns { name })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let o = Owned::Netns(self.name.clone());
        remove(&o);
        disown(&o);
    }
}

/// A directory (state, IPAM data, bpffs pins) removed on drop.
pub struct OwnedDir {
    pub path: String,
}

impl OwnedDir {
    pub fn new(path: String) -> Result<Self> {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        own(Owned::Dir(path.clone()));
        Ok(OwnedDir { path })
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let o = Owned::Dir(self.path.clone());
        remove(&o);
        disown(&o);
    }
}

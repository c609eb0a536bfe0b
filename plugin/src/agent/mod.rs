//! The node agent: `veth-xdp install` staying on in the DaemonSet's pod.
//! Every interval it makes the node match the configuration again (binary,
//! conflist, node datapath, each pod's host-veth programs and map entry —
//! [`reconcile`]), logging what it repaired; it serves Prometheus metrics and
//! health on one port ([`http`], [`metrics`]); on SIGTERM it stops, removing
//! the conflist first with `--cleanup-on-exit`.

pub mod http;
pub mod metrics;
pub mod reconcile;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{signal, SignalKind};

use crate::install::InstallArgs;

/// What the HTTP endpoints read; the reconcile loop writes it.
#[derive(Debug)]
pub struct Shared {
    pub health: Mutex<Health>,
    pub ops: metrics::Operations,
    /// the interval: /healthz fails when the loop has not ticked for 3 of them
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Health {
    /// when the reconcile loop last finished a pass
    pub last_pass: Instant,
    /// Ok once the conflist is written and the last pass succeeded; else why not
    pub ready: std::result::Result<(), String>,
    /// the plugin's state dir, from the conflist (where records and events are)
    pub state_dir: Option<std::path::PathBuf>,
}

impl Shared {
    pub fn new(interval: Duration) -> Self {
        Self {
            health: Mutex::new(Health {
                last_pass: Instant::now(),
                ready: Err("starting: the first reconciliation has not finished".into()),
                state_dir: None,
            }),
            ops: metrics::Operations::new(),
            interval,
        }
    }

    pub fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }
}

/// Runs the agent until SIGTERM/SIGINT; Ok(exit code).
pub fn run(args: &InstallArgs) -> Result<i32> {
    crate::logging::init_stderr(log::LevelFilter::Info);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &InstallArgs) -> Result<i32> {
    let shared = Arc::new(Shared::new(args.interval));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {} for /metrics: {e}", args.listen))?;
    log::info!(
        "veth-xdp agent {}: reconciling every {:?}, serving /metrics, /healthz, /readyz on {}",
        env!("CARGO_PKG_VERSION"),
        args.interval,
        args.listen
    );
    let server = tokio::spawn(http::serve(listener, shared.clone()));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut node = reconcile::Reconciler::new(args.clone(), shared.clone());
    loop {
        node.pass().await;
        tokio::select! {
            _ = tokio::time::sleep(args.interval) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    log::info!("stopping (signal)");
    if args.cleanup_on_exit {
        node.remove_conflist();
    }
    server.abort();
    Ok(0)
}

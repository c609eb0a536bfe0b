//! GC (CNI 1.1): removes every attachment of this network that is not in
//! `cni.dev/valid-attachments`, through the same teardown as DEL, then lets
//! the IPAM plugin collect its own garbage. With no list at all, nothing is
//! removed (cnitool sends GC that way after DELing what it knows).

use std::collections::BTreeSet;

use crate::cni::config::AttachmentId;
use crate::cni::{CniEnv, CniResult, Context, ErrorList, Request, Verb};
use crate::record::Store;
use crate::{ipam, lock};

pub async fn run(req: &Request) -> CniResult<()> {
    let Some(valid) = &req.conf.valid_attachments else {
        log::info!("GC without cni.dev/valid-attachments: nothing removed");
        return Ok(());
    };
    let valid: BTreeSet<&AttachmentId> = valid.iter().collect();
    crate::record::ensure_private_dir(&req.conf.state_dir)?;
    let _lock = lock::exclusive(&req.conf.state_dir)?;
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let records = store.list()?;
    let mut errors = ErrorList::default();
    for rec in records {
        let id = AttachmentId {
            container_id: rec.container_id.clone(),
            ifname: rec.ifname.clone(),
        };
        if valid.contains(&id) {
            continue;
        }
        log::info!(
            "GC: removing stale attachment {} {}",
            rec.container_id,
            rec.ifname
        );
        let del = Request {
            verb: Verb::Del,
            env: CniEnv {
                container_id: rec.container_id.clone(),
                ifname: rec.ifname.clone(),
                netns: None,
                ..req.env.clone()
            },
            conf: req.conf.clone(),
        };
        let who = format!("{} {}", rec.container_id, rec.ifname);
        errors.note(super::del::run(&del).await.context(who));
    }
    if req.conf.ipam.is_some() {
        errors.note(ipam::gc(req));
    }
    errors.into_result("GC incomplete")
}

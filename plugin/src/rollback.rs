//! The undo stack of an ADD: every step that changes the node pushes its undo;
//! unless the ADD commits, the caller runs the undos in reverse order. The
//! undos are async and borrow the verb's sockets, so they cannot run from
//! `Drop`: ADD runs its steps under `catch_unwind` and calls [`Rollback::run`]
//! on every outcome but success, a panic included (cmd/add.rs).

use std::future::Future;
use std::pin::Pin;

type Undo<'a> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>> + 'a>;

pub struct Rollback<'a> {
    steps: Vec<(String, Undo<'a>)>,
    committed: bool,
}

impl<'a> Default for Rollback<'a> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Rollback<'a> {
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            committed: false,
        }
    }

    /// Registers the undo of a step that just succeeded.
    pub fn push<F, Fut>(&mut self, what: impl Into<String>, undo: F)
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = anyhow::Result<()>> + 'a,
    {
        self.steps
            .push((what.into(), Box::new(move || Box::pin(undo()))));
    }

    /// The ADD succeeded: keep everything.
    pub fn commit(mut self) {
        self.committed = true;
        self.steps.clear();
    }

    /// Runs the undos, newest first, and logs (but does not stop on) failures.
    /// Returns the failures so the caller can mention them.
    pub async fn run(mut self) -> Vec<String> {
        let mut failures = Vec::new();
        while let Some((what, undo)) = self.steps.pop() {
            match undo().await {
                Ok(()) => log::info!("rollback: undid {what}"),
                Err(e) => {
                    log::error!("rollback: cannot undo {what}: {e:#}");
                    failures.push(format!("{what}: {e:#}"));
                }
            }
        }
        self.committed = true;
        failures
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.steps.is_empty() {
            // A bug in the caller: it neither committed nor ran the undos.
            let pending: Vec<&str> = self.steps.iter().map(|(w, _)| w.as_str()).collect();
            log::error!(
                "rollback dropped without run(): not undone: {}",
                pending.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn runs_in_reverse_unless_committed() {
        let log = RefCell::new(Vec::new());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rb = Rollback::new();
            rb.push("a", || async {
                log.borrow_mut().push("a");
                Ok(())
            });
            rb.push("b", || async {
                log.borrow_mut().push("b");
                anyhow::bail!("b failed")
            });
            let failures = rb.run().await;
            assert_eq!(failures.len(), 1);
        });
        assert_eq!(*log.borrow(), vec!["b", "a"]);
        let mut rb = Rollback::new();
        rb.push("c", || async {
            log.borrow_mut().push("c");
            Ok(())
        });
        rb.commit();
        assert_eq!(log.borrow().len(), 2);
    }
}

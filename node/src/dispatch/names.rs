//! The OBJECT inputs of a pipeline (hashes, pins, `ZONE/NAME`s) resolved
//! once for a run: every step that reads the same name reads the same
//! hash, even when the name moves while the pipeline runs.

use std::collections::BTreeMap;

use clive_cas::Hash;

use super::JobsHandle;
use crate::jobs::pipeline::Pipeline;

/// Each OBJECT a pipeline's steps read, resolved once: its hash, or why
/// it did not resolve (reported by the step that reads it, as when the
/// step resolved it itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved(BTreeMap<String, Result<Hash, String>>);

impl Resolved {
    /// What `object` resolved to, if it was resolved.
    pub fn get(&self, object: &str) -> Option<&Result<Hash, String>> {
        self.0.get(object)
    }
}

impl JobsHandle<'_> {
    /// Resolves each OBJECT that the steps of `pipeline` read
    /// ([`Pipeline::objects`]) once.
    pub async fn resolve_inputs(&self, pipeline: &Pipeline) -> Resolved {
        let mut resolved = BTreeMap::new();
        for object in pipeline.objects() {
            let hash = self
                .node
                .resolve_object(object)
                .await
                .map_err(|e| e.to_string());
            resolved.insert(object.to_owned(), hash);
        }
        Resolved(resolved)
    }
}

//! Running many small operations concurrently, a bounded number at a time.

use std::future::Future;

use tokio::task::JoinSet;

use crate::{CasError, Result};

/// Runs `op` on every item with at most `limit` running at once, and returns
/// the results in the items' order. Stops at the first error.
pub(crate) async fn for_each_bounded<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    op: F,
) -> Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R>> + Send + 'static,
{
    let mut results: Vec<Option<R>> = Vec::new();
    results.resize_with(items.len(), || None);
    let mut tasks = JoinSet::new();
    let mut next = items.into_iter().enumerate();
    loop {
        while tasks.len() < limit.max(1) {
            let Some((index, item)) = next.next() else {
                break;
            };
            let fut = op(item);
            tasks.spawn(async move { (index, fut.await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, res) = joined.map_err(|e| CasError::io("task", std::io::Error::other(e)))?;
        results[index] = Some(res?);
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| CasError::Blobs("a task did not finish".into())))
        .collect()
}

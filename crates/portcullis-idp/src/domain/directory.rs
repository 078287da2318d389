//! The user pools one process serves. Cognito has one API endpoint per region that answers for
//! every pool of the account; here each pool has its own listener, so a pool's endpoint finds its
//! siblings here to answer `ListUserPools` and requests naming another pool.
//!
//! A sibling is a pool of the same region that accepts the caller's access key with the same
//! secret: the key that signed the request could have signed it for that pool too, so nothing is
//! shown to a caller that could not ask the other pool directly.

pub use crate::domain::pool::Directory;

use crate::domain::pool::Pool;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use std::sync::Arc;

/// The pools a request signed by `access_key` at `pool`'s endpoint may see: `pool` itself and
/// its siblings (see the module comment), ordered by id.
pub fn visible(pool: &Arc<Pool>, access_key: &str) -> Vec<Arc<Pool>> {
    let mut out = vec![pool.clone()];
    if let (Some(dir), Some(secret)) =
        (pool.about.directory.get(), pool.access_keys.get(access_key))
    {
        for other in dir.live() {
            if other.id != pool.id
                && other.region == pool.region
                && other.access_keys.get(access_key).is_some_and(|s| {
                    verify_slices_are_equal(s.as_bytes(), secret.as_bytes()).is_ok()
                })
            {
                out.push(other);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

/// The pool called `id` among those [`visible`] to `access_key` at `pool`'s endpoint.
pub fn find(pool: &Arc<Pool>, access_key: &str, id: &str) -> Option<Arc<Pool>> {
    if id == pool.id {
        return Some(pool.clone());
    }
    visible(pool, access_key).into_iter().find(|p| p.id == id)
}

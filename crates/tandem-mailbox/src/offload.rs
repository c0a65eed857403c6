//! CPU-heavy request work (parsing a large XML body) off the async workers.
//!
//! The async workers carry every other request and, under `tandem up`, the Front End's SIP as
//! well, so a long parse on one of them stalls unrelated traffic. Jobs for bodies above
//! [`THRESHOLD`] run on tokio's blocking pool, at most one per core at a time (a parsed tree
//! takes several times its body in memory). Waiting for a slot ends with the request when the
//! client leaves, and a job whose client left before it started is skipped; a job already running
//! finishes, which tandem-xml's limits keep linear in the body. Small bodies parse in place: the
//! hand-off would cost more than the parse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

/// Bodies larger than this are parsed on the blocking pool.
pub(crate) const THRESHOLD: usize = 64 * 1024;

/// Blocking jobs running at once, shared by every mailbox router in the process.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    Arc::new(Semaphore::new(cores))
});

/// Sets its flag when dropped: the request future was dropped, so the client has gone.
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `job` (work on a request body of `size` bytes) in place when the body is small, else on
/// the blocking pool. `None` when the job could not run (the pool is shutting down or the job
/// panicked): the caller answers with a server error.
pub(crate) async fn run<T: Send + 'static>(size: usize, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    if size <= THRESHOLD {
        return Some(job());
    }
    let gone = Arc::new(AtomicBool::new(false));
    let _guard = Gone(gone.clone());
    let slot = SLOTS.clone().acquire_owned().await.ok()?;
    metrics::counter!("tandem_mailbox_offloaded_parses_total").increment(1);
    let handle = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if gone.load(Ordering::Relaxed) {
            return None;
        }
        Some(job())
    });
    match handle.await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "a request parse on the blocking pool failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn small_jobs_run_in_place_and_large_ones_on_the_pool() {
        let here = std::thread::current().id();
        assert_eq!(run(10, move || std::thread::current().id() == here).await, Some(true));
        assert_eq!(run(THRESHOLD + 1, move || std::thread::current().id() == here).await, Some(false));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_whose_client_left_is_skipped() {
        let ran = Arc::new(AtomicBool::new(false));
        // Hold every slot so the job waits, then drop the request while it waits.
        let held = SLOTS.clone().acquire_many_owned(SLOTS.available_permits() as u32).await.unwrap();
        let flag = ran.clone();
        let request = tokio::spawn(run(THRESHOLD + 1, move || flag.store(true, Ordering::Relaxed)));
        tokio::task::yield_now().await;
        request.abort();
        let _ = request.await;
        drop(held);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!ran.load(Ordering::Relaxed));
    }
}

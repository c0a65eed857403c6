//! Never lost: a recording is written to the Front End store (the `vm_spool` table, on disk)
//! before the first delivery attempt, and leaves it only once CreateItem put it in the Inbox.
//! A mailbox that cannot be reached gets the message later: the delivery task retries each due
//! row with a doubling delay (2 s up to a minute); a start tries every spooled row at once.

use std::sync::Arc;
use std::time::Duration;

use super::Service;
use super::deposit::{self, Voicemail};
use crate::media::wav;
use crate::store::SpooledVoicemail;

/// Longest wait between two attempts for one recording.
const MAX_BACKOFF_SECS: i64 = 60;
/// How often the spool is looked at when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);
/// How long the delivery task leaves a row alone while its first attempt runs elsewhere.
const IN_FLIGHT_SECS: i64 = 120;
/// Recordings tried per pass.
const BATCH: i64 = 16;

fn backoff(attempts: i64) -> i64 {
    2i64.saturating_pow(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16) + 1).min(MAX_BACKOFF_SECS)
}

/// Spools `vm`, then tries to deliver it at once; a failure leaves it for the delivery task.
pub async fn keep_and_deliver(svc: &Arc<Service>, vm: Voicemail) {
    let wav = match wav::to_wav(&vm.samples) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "a recording could not be encoded; it is lost");
            return;
        }
    };
    let row = SpooledVoicemail {
        id: crate::sip::random_token(),
        callee_smtp: vm.callee_smtp.clone(),
        caller_uri: vm.caller_uri.clone(),
        caller_name: vm.caller_name.clone(),
        started_at: vm.started_at,
        wav,
        attempts: 0,
        // The first attempt is this task's: the delivery task leaves the row alone until then
        // (a failure reschedules it, a success removes it, a crash is retried at the next start).
        next_attempt_at: tandem_store::now_unix() + IN_FLIGHT_SECS,
        last_error: None,
    };
    if let Err(e) = svc.store.spool_voicemail(&row).await {
        // The store is down: deliver from memory, the one copy left.
        tracing::error!(error = %e, "the voicemail spool cannot be written; delivering without it");
        if let Err(e) = deposit::deposit(&svc.connector, &vm).await {
            tracing::error!(error = %e, callee = %vm.callee_smtp, "a voicemail was lost: neither the spool nor the mailbox took it");
        }
        return;
    }
    deliver(svc, row).await;
}

/// One attempt for a spooled recording; true when the mailbox took it.
async fn deliver(svc: &Service, row: SpooledVoicemail) -> bool {
    let samples = match wav::from_wav(&row.wav) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(id = %row.id, error = %e, "a spooled recording cannot be read; it stays in the spool");
            let _ =
                svc.store.voicemail_retry(&row.id, tandem_store::now_unix() + MAX_BACKOFF_SECS, &e.to_string()).await;
            return false;
        }
    };
    let vm = Voicemail {
        caller_uri: row.caller_uri,
        caller_name: row.caller_name,
        callee_smtp: row.callee_smtp,
        started_at: row.started_at,
        samples,
    };
    match deposit::deposit(&svc.connector, &vm).await {
        Ok(item) => {
            metrics::counter!("tandem_voicemail_delivered_total").increment(1);
            tracing::info!(id = %row.id, callee = %vm.callee_smtp, attempts = row.attempts + 1, item = %item.id, "voicemail delivered");
            if let Err(e) = svc.store.voicemail_delivered(&row.id).await {
                // Delivered but still spooled: the next pass would deliver it twice.
                tracing::error!(id = %row.id, error = %e, "a delivered voicemail could not be removed from the spool");
            }
            true
        }
        Err(e) => {
            metrics::counter!("tandem_voicemail_delivery_failures_total").increment(1);
            let wait = backoff(row.attempts);
            tracing::warn!(id = %row.id, callee = %vm.callee_smtp, error = %e, retry_in_secs = wait, "voicemail kept in the spool");
            let _ = svc.store.voicemail_retry(&row.id, tandem_store::now_unix() + wait, &e.to_string()).await;
            false
        }
    }
}

/// One pass over the recordings due at `now` (`i64::MAX`: every one); how many were delivered.
pub async fn deliver_due(svc: &Service, now: i64) -> usize {
    let due = match svc.store.due_voicemails(now, BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "the voicemail spool cannot be read");
            return 0;
        }
    };
    let mut n = 0;
    for row in due {
        n += usize::from(deliver(svc, row).await);
    }
    n
}

/// The delivery task: a pass over everything spooled at start, then over what is due every
/// 2 s (or when woken) until shutdown.
pub fn spawn(svc: Arc<Service>) {
    let tasks = svc.tasks.clone();
    tasks.spawn(async move {
        // What a previous run left: all of it now (whatever its schedule said), a batch at a time.
        while deliver_due(&svc, i64::MAX).await == BATCH as usize {}
        loop {
            tokio::select! {
                _ = svc.shutdown.cancelled() => break,
                _ = svc.spool_wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            deliver_due(&svc, tandem_store::now_unix()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_delay_doubles_up_to_five_minutes() {
        let d: Vec<i64> = (0..10).map(super::backoff).collect();
        assert_eq!(&d[..4], &[2, 4, 8, 16]);
        assert_eq!(d[9], 60);
        assert_eq!(super::backoff(1000), 60);
    }
}

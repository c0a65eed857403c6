//! Message waiting (RFC 3842) from the mailbox: for every user someone subscribes to
//! `message-summary` for, an EWS streaming subscription on their Inbox (read over the shared
//! GetStreamingEvents connections of `calendar_presence::hub`), and on each event the voicemail
//! counts read again with FindItem (class `IPM.Note.Microsoft.Voicemail.UM.CA`, unread and
//! all). A new voicemail, one marked read, or one deleted, in any EWS client, changes the
//! counts; the SIP side NOTIFYs the user's phones when they changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tandem_directory::Directory;
use tandem_ews_client::Mailbox;
use tandem_ews_proto::ops::{find_item, subscribe};
use tandem_ews_proto::types::{
    BaseShape, Comparison, FolderRef, IndexedPage, Operand, PropertyPath, Restriction, Shape,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::deposit::ITEM_CLASS;
use crate::calendar_presence::hub::{Heard, Hub};
use crate::exchange_connector::{ConnectorError, ExchangeConnector, Hop, at};
use crate::sip::SipCore;
use crate::sip::presence::{forget_voice_counts, set_voice_counts};

const EVENT_TYPES: &[&str] = &["NewMailEvent", "CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent"];
/// How often the wanted watches are compared with the running ones.
const MANAGE: Duration = Duration::from_millis(250);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The counts of one Inbox: (unread voicemails, read ones).
pub async fn counts(connector: &ExchangeConnector, mailbox: &Mailbox) -> Result<(u32, u32), ConnectorError> {
    let field = |f: &str| PropertyPath::Field(f.to_owned());
    let class = Restriction::Compare {
        path: field("item:ItemClass"),
        op: Comparison::Equal,
        value: Operand::Constant(ITEM_CLASS.to_owned()),
    };
    let unread = Restriction::And(vec![
        class.clone(),
        Restriction::Compare {
            path: field("message:IsRead"),
            op: Comparison::Equal,
            value: Operand::Constant("false".into()),
        },
    ]);
    let mut total = [0usize; 2];
    for (i, restriction) in [class, unread].into_iter().enumerate() {
        let req = find_item::Request {
            restriction: Some(restriction),
            page: Some(IndexedPage { max: Some(1), offset: 0, from_end: false }),
            ..find_item::Request::new(Shape::base(BaseShape::IdOnly), vec![FolderRef::distinguished("inbox")])
        };
        let found = connector.client().find_item(mailbox, &req).await.map_err(at(Hop::Ews))?;
        total[i] = found.iter().map(|f| f.total).sum();
    }
    let all = u32::try_from(total[0]).unwrap_or(u32::MAX);
    let new = u32::try_from(total[1]).unwrap_or(u32::MAX).min(all);
    Ok((new, all - new))
}

/// Starts the manager: watches follow the message-summary subscriptions.
pub fn spawn(
    core: Arc<SipCore>,
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
) {
    let hub = Hub::start(connector.clone(), tasks, shutdown.clone());
    let tasks2 = tasks.clone();
    tasks.spawn(async move {
        let mut running: HashMap<String, CancellationToken> = HashMap::new();
        let mut tick = tokio::time::interval(MANAGE);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let wanted = core.presence.message_summary_targets();
            running.retain(|aor, stop| {
                let keep = wanted.binary_search(aor).is_ok();
                if !keep {
                    stop.cancel();
                    forget_voice_counts(&core, aor);
                }
                keep
            });
            for aor in wanted {
                if running.contains_key(&aor) {
                    continue;
                }
                let stop = shutdown.child_token();
                running.insert(aor.clone(), stop.clone());
                let (core, directory, connector, hub) =
                    (core.clone(), directory.clone(), connector.clone(), hub.clone());
                tasks2.spawn(async move { watch(core, directory, connector, hub, aor, stop).await });
            }
        }
    });
}

/// One user's Inbox, followed until `stop`.
async fn watch(
    core: Arc<SipCore>,
    directory: Directory,
    connector: Arc<ExchangeConnector>,
    hub: Hub,
    aor: String,
    stop: CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    while !stop.is_cancelled() {
        let smtp = match directory.find_cached(&aor).await {
            Ok(Some(u)) if u.can_use_mailbox() => u.smtp_address.to_string(),
            _ => {
                // No mailbox: nothing waits, ever (asked again after a while).
                set_voice_counts(&core, &aor, 0, 0);
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(BACKOFF_MAX) => continue }
            }
        };
        match round(&core, &connector, &hub, &aor, &smtp, &stop, &mut backoff).await {
            Ok(()) => {}
            Err(e) => {
                tracing::info!(%aor, error = %e, "message waiting: the Inbox cannot be followed; retrying");
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(backoff) => {} }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Subscribe, read the counts, then read them again at each event until the stream is lost.
async fn round(
    core: &Arc<SipCore>,
    connector: &ExchangeConnector,
    hub: &Hub,
    aor: &str,
    smtp: &str,
    stop: &CancellationToken,
    backoff: &mut Duration,
) -> Result<(), ConnectorError> {
    let mailbox = connector.mailbox(smtp).await?;
    let req = subscribe::Request::streaming(vec![FolderRef::distinguished("inbox")], EVENT_TYPES);
    let sub = connector.client().subscribe(&mailbox, &req).await.map_err(at(Hop::Ews))?;
    let (tx, mut heard) = mpsc::channel(1);
    hub.add(&sub.id, &mailbox, tx);
    let result = async {
        // Subscribed before this read: a change after it is in the subscription's events.
        let (new, old) = counts(connector, &mailbox).await?;
        set_voice_counts(core, aor, new, old);
        *backoff = BACKOFF_FIRST;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                h = heard.recv() => match h {
                    Some(Heard::Changed) => {
                        let (new, old) = counts(connector, &mailbox).await?;
                        set_voice_counts(core, aor, new, old);
                    }
                    Some(Heard::Lost { gone: true, .. }) | None => return Ok(()),
                    Some(Heard::Lost { error, .. }) => return Err(error),
                }
            }
        }
    }
    .await;
    hub.remove(&sub.id);
    if stop.is_cancelled() {
        let _ = connector.client().unsubscribe(&mailbox, &sub.id).await;
    }
    result
}

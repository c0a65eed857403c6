//! The writer: takes the item writes that are due from the store and puts each transcript into
//! its owner's Conversation History through EWS, acting as the owner with an S2S token. Before
//! creating an item it looks for one of the same conversation (a PublicStrings property names
//! the conversation): an attempt interrupted after the mailbox took the item (a crash, a lost
//! answer) left it there, and it is continued with UpdateItem instead of written twice. That
//! look-up is MaxContinuedConversationRetry's: when it keeps failing, after that many attempts
//! the item is created without it. A failed write is retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use tandem_ews_proto::ops::create_item::{self, ItemData};
use tandem_ews_proto::ops::{find_item, update_item};
use tandem_ews_proto::types::{
    BaseShape, Comparison, ExtendedField, FolderRef, ItemRef, Operand, PropertyPath, Restriction, Shape,
};
use tokio_util::sync::CancellationToken;

use super::transcript::{self, Person};
use super::{Shared, item_class, now_ms};
use crate::exchange_connector::{ConnectorError, Hop, at};
use crate::store::{DataError, PendingItem};

/// How often the writer looks for due items when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// Item writes taken from the store at once.
const DUE_BATCH: i64 = 32;
/// Item writes in flight at once (Exchange's EwsMaxConcurrency per user is 27).
const PARALLEL: usize = 8;
/// The first retry waits this long, each further one twice as long, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 2_000;
const MAX_BACKOFF_MS: i64 = 300_000;

/// The PublicStrings property naming the conversation an item is the transcript of.
pub fn conversation_property() -> ExtendedField {
    ExtendedField {
        distinguished_set: Some("PublicStrings".into()),
        set_id: None,
        tag: None,
        name: Some("TandemConversationId".into()),
        id: None,
        property_type: "String".into(),
    }
}

/// The wait before the attempt after `attempts` failed ones.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    FIRST_BACKOFF_MS.saturating_mul(1_i64 << doublings).min(MAX_BACKOFF_MS)
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("directory: {0}")]
    Directory(String),
}

/// What an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    Created,
    /// An item of the conversation was there already and now holds the whole transcript.
    Continued,
    /// The owner has no mailbox (or no longer exists): nothing to write.
    NoMailbox,
    /// The conversation is gone from the store (written meanwhile).
    Gone,
    /// The owner's client policy does not archive this kind (EnableIMAutoArchiving,
    /// EnableCallLogAutoArchiving false).
    NotArchived,
}

pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        write_due(&shared, &shutdown).await;
    }
}

/// One pass: every item due now, up to [`DUE_BATCH`], [`PARALLEL`] at a time (each item is its
/// own mailbox write; two copies of one conversation never race, as each has its own row);
/// returns how many were attempted.
pub(super) async fn write_due(shared: &Arc<Shared>, shutdown: &CancellationToken) -> usize {
    let due = match shared.store.due_history_items(now_ms(), DUE_BATCH).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "conversation history: the queue cannot be read");
            return 0;
        }
    };
    let mut n = 0;
    let mut running = tokio::task::JoinSet::new();
    for item in due {
        if shutdown.is_cancelled() {
            // What is not written now is written after the restart.
            break;
        }
        while running.len() >= PARALLEL {
            let _ = running.join_next().await;
        }
        let (shared, stop) = (shared.clone(), shutdown.clone());
        running.spawn(async move {
            // A stop does not wait for the mailbox: an attempt cut short is made again after the
            // restart, and finds the item if the mailbox took it.
            tokio::select! {
                _ = stop.cancelled() => {}
                () = attempt(&shared, &item) => {}
            }
        });
        n += 1;
    }
    while running.join_next().await.is_some() {}
    n
}

async fn attempt(shared: &Shared, item: &PendingItem) {
    match write(shared, item).await {
        Ok(wrote) => {
            let label = match wrote {
                Wrote::Created => "created",
                Wrote::Continued => "continued",
                Wrote::NoMailbox => "no_mailbox",
                Wrote::Gone => "gone",
                Wrote::NotArchived => "policy",
            };
            metrics::counter!("tandem_conversation_history_items_total", "outcome" => label).increment(1);
            if let Err(e) = shared.store.history_item_written(item).await {
                // The next attempt finds the item by its conversation and continues it.
                tracing::warn!(error = %e, "conversation history: a written item is not recorded yet");
            }
        }
        Err(e) => {
            metrics::counter!("tandem_conversation_history_items_total", "outcome" => "failed").increment(1);
            let wait = backoff_ms(item.attempts);
            tracing::warn!(
                owner = %item.owner,
                folder = %item.folder,
                conversation = %item.conversation_id,
                attempt = item.attempts + 1,
                retry_in_ms = wait,
                error = %e,
                "conversation history: the transcript is not in the mailbox yet; retrying"
            );
            if let Err(e2) = shared.store.history_item_failed(item, &e.to_string(), now_ms() + wait).await {
                tracing::warn!(error = %e2, "conversation history: the failure is not recorded");
            }
        }
    }
}

async fn person(shared: &Shared, sip_uri: &str) -> Result<(Person, bool), WriteError> {
    match shared.directory.find(sip_uri).await {
        Ok(Some(u)) => Ok((
            Person {
                sip_uri: sip_uri.to_owned(),
                display_name: u.display_name.clone(),
                smtp: Some(u.smtp_address.to_string()),
            },
            u.can_use_mailbox(),
        )),
        Ok(None) => Ok((Person { sip_uri: sip_uri.to_owned(), display_name: String::new(), smtp: None }, false)),
        Err(e) => Err(WriteError::Directory(e.to_string())),
    }
}

fn mailbox_xml(p: &Person) -> String {
    format!(
        "<t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>",
        tandem_xml::escape(if p.display_name.is_empty() { &p.sip_uri } else { &p.display_name }),
        tandem_xml::escape(p.smtp.as_deref().unwrap_or_default())
    )
}

async fn write(shared: &Shared, item: &PendingItem) -> Result<Wrote, WriteError> {
    let Some(conversation) = shared.store.conversation(&item.conversation_id).await? else {
        return Ok(Wrote::Gone);
    };
    if !super::archiving_allowed(&shared.store.client_policies().await?, &item.owner, conversation.kind) {
        return Ok(Wrote::NotArchived);
    }
    // The archived copy is kept only where the owner's archiving policy asks for it.
    if item.folder == super::ARCHIVE_FOLDER && !shared.store.archives_internal_for(&item.owner).await? {
        return Ok(Wrote::NotArchived);
    }
    let messages = shared.store.conversation_messages(&conversation.id).await?;
    let mut people = Vec::with_capacity(2);
    let mut owner_mailbox = None;
    for uri in &conversation.participants {
        let (p, has_mailbox) = person(shared, uri).await?;
        if *uri == item.owner && has_mailbox {
            owner_mailbox = p.smtp.clone();
        }
        people.push(p);
    }
    let Some(smtp) = owner_mailbox else { return Ok(Wrote::NoMailbox) };
    // The initiator first: the item is from them, to the others.
    people.sort_by_key(|p| p.sip_uri != conversation.initiator);
    let (subject, body) = if conversation.kind.is_call() {
        (
            transcript::call_subject(&conversation, &people, &item.owner),
            transcript::call_body(&conversation, &people, &item.owner),
        )
    } else {
        (transcript::subject(&messages, &people), transcript::html_body(&conversation, &messages, &people))
    };

    let mailbox = shared.connector.mailbox(&smtp).await?;
    let client = shared.connector.client();
    let lookup = find_item::Request {
        restriction: Some(Restriction::Compare {
            path: PropertyPath::Extended(conversation_property()),
            op: Comparison::Equal,
            value: Operand::Constant(conversation.id.clone()),
        }),
        ..find_item::Request::new(Shape::base(BaseShape::IdOnly), vec![FolderRef::distinguished(&item.folder)])
    };
    let retries = shared.settings().max_continued_conversation_retry;
    let earlier: Option<ItemRef> = match client.find_item(&mailbox, &lookup).await {
        Ok(found) => found.into_iter().flat_map(|f| f.items).map(|(id, _)| id).next(),
        Err(e) if item.attempts >= retries => {
            tracing::info!(error = %e, attempts = item.attempts, "conversation history: the earlier item cannot be looked up; writing a new one");
            None
        }
        Err(e) => return Err(at(Hop::Ews)(e).into()),
    };
    if let Some(id) = earlier {
        let set = |name: &str, data: ItemData| (PropertyPath::Field(format!("item:{name}")), data);
        let req = update_item::Request::set(
            ItemRef { id: id.id, change_key: None },
            vec![
                set("Subject", ItemData::new("Message").with_subject(&subject)),
                set("Body", ItemData::new("Message").with_body("HTML", &body)),
            ],
        );
        client.update_item(&mailbox, &req).await.map_err(at(Hop::Ews))?;
        return Ok(Wrote::Continued);
    }
    let from = people.first().map(mailbox_xml).unwrap_or_default();
    let to: String = people.iter().skip(1).map(mailbox_xml).collect();
    let data = ItemData::new("Message")
        .with_item_class(item_class(conversation.kind))
        .with_subject(&subject)
        .with_body("HTML", &body)
        .with_extended(conversation_property(), vec![conversation.id.clone()])
        .with_field("ToRecipients", format!("<t:ToRecipients>{to}</t:ToRecipients>"))
        .with_field("From", format!("<t:From>{from}</t:From>"))
        .with_is_read(true);
    let req = create_item::Request::save(FolderRef::distinguished(&item.folder), vec![data]);
    client.create_item(&mailbox, &req).await.map_err(at(Hop::Ews))?;
    Ok(Wrote::Created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_ms(0), 2_000);
        assert_eq!(backoff_ms(1), 4_000);
        assert_eq!(backoff_ms(3), 16_000);
        assert_eq!(backoff_ms(8), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(i64::MAX), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(-3), 2_000);
    }
}

//! Server-side conversation history: the durable queue between the SIP MESSAGE relay and the
//! mailbox. Every relayed message of a conversation is kept here until its transcript is in each
//! participant's Conversation History; a conversation that ends queues one item write per
//! participant, retried with backoff until the mailbox accepts it, and everything of a
//! conversation is removed in one transaction once every item is written. So a restart or an
//! unreachable mailbox delays a transcript, and never loses or doubles it. The configuration
//! (Set-CsConversationHistoryConfiguration) lives in the store's settings map.

use sqlx::Row;

use super::{DataError, FrontendStore};

/// What a conversation's transcript records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConversationKind {
    /// IMs an endpoint of the recipient accepted: both participants get the transcript.
    #[default]
    Im,
    /// IMs to a user with no endpoint signed in, or that no endpoint accepted: a missed
    /// conversation for the recipient.
    Missed,
    /// An answered call, from the answer to the BYE: a call log for both parties.
    Call,
    /// A call not answered (no answer, busy, declined, cancelled, offline): for the callee.
    MissedCall,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Im => "im",
            ConversationKind::Missed => "missed",
            ConversationKind::Call => "call",
            ConversationKind::MissedCall => "missed_call",
        }
    }

    fn parse(s: &str) -> ConversationKind {
        match s {
            "missed" => ConversationKind::Missed,
            "call" => ConversationKind::Call,
            "missed_call" => ConversationKind::MissedCall,
            _ => ConversationKind::Im,
        }
    }

    /// Calls carry no messages.
    pub fn is_call(self) -> bool {
        matches!(self, ConversationKind::Call | ConversationKind::MissedCall)
    }
}

/// One conversation between two users, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversationRow {
    pub id: String,
    pub kind: ConversationKind,
    /// The participants' SIP URIs, in sorted order.
    pub participants: [String; 2],
    /// Who sent the first message.
    pub initiator: String,
    /// Unix milliseconds of the first and the last message.
    pub started_at: i64,
    pub last_at: i64,
    pub message_count: i64,
    /// Ended: no further message joins it; its items are queued (or written).
    pub ended: bool,
    /// A call's SIP Call-ID (its BYE ends it).
    pub sip_call_id: Option<String>,
    /// A missed call's reason (`no answer`, `busy`, `declined`, `cancelled`, `unavailable`).
    pub detail: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMessage {
    pub conversation_id: String,
    /// Its place in the conversation, from 0.
    pub seq: i64,
    /// Unix milliseconds.
    pub sent_at: i64,
    pub sender: String,
    pub text: String,
}

/// A change to the queue, applied with others in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryWrite {
    /// A message joins `conversation` (created on its first message), whose row gives the
    /// state after it.
    Message { conversation: ConversationRow, message: ConversationMessage },
    /// A conversation without messages starts (a call).
    Start { conversation: ConversationRow },
    /// A conversation ended (at `last_at`, when given): an item write is queued for each
    /// target, due at `at`.
    End { conversation_id: String, targets: Vec<ItemTarget>, at: i64, last_at: Option<i64> },
}

/// Where one copy of a transcript goes: a user's mailbox folder (a distinguished folder id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemTarget {
    pub owner: String,
    pub folder: String,
}

/// One participant's transcript still to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingItem {
    pub conversation_id: String,
    /// The participant whose mailbox gets the item (SIP URI).
    pub owner: String,
    /// The distinguished folder it goes to.
    pub folder: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Unix milliseconds of the next attempt.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// What waits for the mailbox, for status output.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryBacklog {
    /// Conversations still open (messages being exchanged).
    pub open_conversations: i64,
    /// Item writes queued and not yet accepted by the mailbox.
    pub pending_items: i64,
    /// Of those, the ones whose last attempt failed.
    pub failing_items: i64,
    /// The last error of a failing item, if any.
    pub last_error: Option<String>,
}

/// Set-CsConversationHistoryConfiguration as stored; `None` leaves a setting at its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryConfigRow {
    pub enable_server_conversation_history: Option<bool>,
    pub idle_timeout_secs: Option<i64>,
    pub max_continued_conversation_retry: Option<i64>,
}

/// Set-CsArchivingConfiguration and the global Set-CsArchivingPolicy as stored; `None` leaves a
/// setting at its default (archiving off, as the cmdlets have it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchivingConfigRow {
    /// `None`, `ImOnly` or `ImAndWebConf`.
    pub enable_archiving: Option<String>,
    pub enable_exchange_archiving: Option<bool>,
    pub archive_internal: Option<bool>,
    pub archive_external: Option<bool>,
}

const ARCHIVING: [&str; 4] = [
    "archiving.enable_archiving",
    "archiving.enable_exchange_archiving",
    "archiving.archive_internal",
    "archiving.archive_external",
];

/// A tag archiving policy (New-CsArchivingPolicy -Identity tag:NAME) is kept in the settings map
/// as `archiving.policy.tag:name` (its existence) with `.archive_internal` / `.archive_external`;
/// a grant (Grant-CsArchivingPolicy) as `archiving.grant.sip:user@domain` = `tag:name`.
const TAG_POLICY: &str = "archiving.policy.";
const GRANT: &str = "archiving.grant.";

/// A tag archiving policy as stored (`None`: false, the cmdlet's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchivingPolicyRow {
    /// `tag:name`, lowercased.
    pub identity: String,
    pub archive_internal: Option<bool>,
    pub archive_external: Option<bool>,
}

const SET_ENABLED: &str = "conversation_history.enable_server_conversation_history";
const SET_IDLE: &str = "conversation_history.idle_timeout_secs";
const SET_RETRY: &str = "conversation_history.max_continued_conversation_retry";

fn read_conversation(r: &sqlx::any::AnyRow) -> Result<ConversationRow, sqlx::Error> {
    Ok(ConversationRow {
        id: r.try_get("id")?,
        kind: ConversationKind::parse(&r.try_get::<String, _>("kind")?),
        participants: [r.try_get("participant_a")?, r.try_get("participant_b")?],
        initiator: r.try_get("initiator")?,
        started_at: r.try_get("started_at")?,
        last_at: r.try_get("last_at")?,
        message_count: r.try_get("message_count")?,
        ended: r.try_get::<i64, _>("ended")? != 0,
        sip_call_id: r.try_get("sip_call_id")?,
        detail: r.try_get("detail")?,
    })
}

fn read_pending(r: &sqlx::any::AnyRow) -> Result<PendingItem, sqlx::Error> {
    Ok(PendingItem {
        conversation_id: r.try_get("conversation_id")?,
        owner: r.try_get("owner")?,
        folder: r.try_get("folder")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl FrontendStore {
    /// Applies queue changes in order, all or none.
    pub async fn apply_history(&self, writes: &[HistoryWrite]) -> Result<(), DataError> {
        let mut tx = self.store.begin_write().await?;
        for w in writes {
            match w {
                HistoryWrite::Message { conversation: c, message: m } => {
                    sqlx::query(
                        "INSERT INTO ch_conversations (id, kind, participant_a, participant_b, initiator, started_at,
                             last_at, message_count, ended)
                         VALUES ($1, $8, $2, $3, $4, $5, $6, $7, 0)
                         ON CONFLICT (id) DO UPDATE SET last_at = $6, message_count = $7",
                    )
                    .bind(&c.id)
                    .bind(&c.participants[0])
                    .bind(&c.participants[1])
                    .bind(&c.initiator)
                    .bind(c.started_at)
                    .bind(c.last_at)
                    .bind(c.message_count)
                    .bind(c.kind.as_str())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO ch_messages (conversation_id, seq, sent_at, sender, body) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&m.conversation_id)
                    .bind(m.seq)
                    .bind(m.sent_at)
                    .bind(&m.sender)
                    .bind(&m.text)
                    .execute(&mut *tx)
                    .await?;
                }
                HistoryWrite::Start { conversation: c } => {
                    sqlx::query(
                        "INSERT INTO ch_conversations (id, kind, participant_a, participant_b, initiator, started_at,
                             last_at, message_count, ended, sip_call_id, detail)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&c.id)
                    .bind(c.kind.as_str())
                    .bind(&c.participants[0])
                    .bind(&c.participants[1])
                    .bind(&c.initiator)
                    .bind(c.started_at)
                    .bind(c.last_at)
                    .bind(&c.sip_call_id)
                    .bind(&c.detail)
                    .execute(&mut *tx)
                    .await?;
                }
                HistoryWrite::End { conversation_id, targets, at, last_at } => {
                    sqlx::query("UPDATE ch_conversations SET ended = 1, last_at = COALESCE($2, last_at) WHERE id = $1")
                        .bind(conversation_id)
                        .bind(*last_at)
                        .execute(&mut *tx)
                        .await?;
                    for t in targets {
                        sqlx::query(
                            "INSERT INTO ch_items (conversation_id, owner, folder, attempts, next_attempt_at, done)
                             VALUES ($1, $2, $3, 0, $4, 0) ON CONFLICT (conversation_id, owner, folder) DO NOTHING",
                        )
                        .bind(conversation_id)
                        .bind(&t.owner)
                        .bind(&t.folder)
                        .bind(*at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The conversations not ended yet (to carry on with after a restart).
    pub async fn open_conversations(&self) -> Result<Vec<ConversationRow>, DataError> {
        let rows = sqlx::query(
            "SELECT id, kind, participant_a, participant_b, initiator, started_at, last_at, message_count, ended,
                    sip_call_id, detail
             FROM ch_conversations WHERE ended = 0 ORDER BY started_at, id",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(read_conversation).collect::<Result<_, _>>()?)
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>, DataError> {
        let row = sqlx::query(
            "SELECT id, kind, participant_a, participant_b, initiator, started_at, last_at, message_count, ended,
                    sip_call_id, detail
             FROM ch_conversations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(read_conversation).transpose()?)
    }

    /// A conversation's messages in order.
    pub async fn conversation_messages(&self, id: &str) -> Result<Vec<ConversationMessage>, DataError> {
        let rows = sqlx::query(
            "SELECT conversation_id, seq, sent_at, sender, body FROM ch_messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<ConversationMessage, sqlx::Error> {
            Ok(ConversationMessage {
                conversation_id: r.try_get("conversation_id")?,
                seq: r.try_get("seq")?,
                sent_at: r.try_get("sent_at")?,
                sender: r.try_get("sender")?,
                text: r.try_get("body")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Item writes due at `now` (Unix milliseconds), the longest waiting first.
    pub async fn due_history_items(&self, now: i64, limit: i64) -> Result<Vec<PendingItem>, DataError> {
        let rows = sqlx::query(
            "SELECT conversation_id, owner, folder, attempts, next_attempt_at, last_error FROM ch_items
             WHERE done = 0 AND next_attempt_at <= $1 ORDER BY next_attempt_at, conversation_id, owner, folder LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(read_pending).collect::<Result<_, _>>()?)
    }

    /// Every item write not done yet, for status output.
    pub async fn pending_history_items(&self) -> Result<Vec<PendingItem>, DataError> {
        let rows = sqlx::query(
            "SELECT conversation_id, owner, folder, attempts, next_attempt_at, last_error FROM ch_items
             WHERE done = 0 ORDER BY next_attempt_at, conversation_id, owner, folder",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(read_pending).collect::<Result<_, _>>()?)
    }

    /// Records that the mailbox holds the item. When that was the conversation's last item, the
    /// conversation, its messages and its items are removed in the same transaction. False:
    /// nothing was pending (written already).
    pub async fn history_item_written(&self, item: &PendingItem) -> Result<bool, DataError> {
        let conversation_id = item.conversation_id.as_str();
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE ch_items SET done = 1 WHERE conversation_id = $1 AND owner = $2 AND folder = $3 AND done = 0",
        )
        .bind(conversation_id)
        .bind(&item.owner)
        .bind(&item.folder)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ch_items WHERE conversation_id = $1 AND done = 0")
            .bind(conversation_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if left == 0 {
            sqlx::query("DELETE FROM ch_items WHERE conversation_id = $1")
                .bind(conversation_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM ch_messages WHERE conversation_id = $1")
                .bind(conversation_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM ch_conversations WHERE id = $1").bind(conversation_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a failed attempt and when to try again.
    pub async fn history_item_failed(
        &self,
        item: &PendingItem,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), DataError> {
        sqlx::query(
            "UPDATE ch_items SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5
             WHERE conversation_id = $1 AND owner = $2 AND folder = $3 AND done = 0",
        )
        .bind(&item.conversation_id)
        .bind(&item.owner)
        .bind(&item.folder)
        .bind(error)
        .bind(next_attempt_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// How much waits for the mailbox.
    pub async fn history_backlog(&self) -> Result<HistoryBacklog, DataError> {
        let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ch_conversations WHERE ended = 0")
            .fetch_one(self.store.pool())
            .await?
            .try_get("n")?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS failing
             FROM ch_items WHERE done = 0",
        )
        .fetch_one(self.store.pool())
        .await?;
        let last_error: Option<String> = sqlx::query(
            "SELECT last_error FROM ch_items WHERE done = 0 AND last_error IS NOT NULL
             ORDER BY next_attempt_at DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await?
        .map(|r| r.try_get("last_error"))
        .transpose()?;
        Ok(HistoryBacklog {
            open_conversations: open,
            pending_items: row.try_get("n")?,
            failing_items: row.try_get("failing")?,
            last_error,
        })
    }

    /// Set-CsArchivingConfiguration and the global archiving policy as stored.
    pub async fn archiving_configuration(&self) -> Result<ArchivingConfigRow, DataError> {
        let flag = |v: Option<String>| v.map(|s| s == "true");
        Ok(ArchivingConfigRow {
            enable_archiving: self.store.setting(ARCHIVING[0]).await?,
            enable_exchange_archiving: flag(self.store.setting(ARCHIVING[1]).await?),
            archive_internal: flag(self.store.setting(ARCHIVING[2]).await?),
            archive_external: flag(self.store.setting(ARCHIVING[3]).await?),
        })
    }

    /// A tag archiving policy (`tag:name`, any case), if it exists.
    pub async fn archiving_policy(&self, tag: &str) -> Result<Option<ArchivingPolicyRow>, DataError> {
        let id = tag.to_lowercase();
        let base = format!("{TAG_POLICY}{id}");
        if self.store.setting(&base).await?.is_none() {
            return Ok(None);
        }
        let flag = |v: Option<String>| v.map(|s| s == "true");
        Ok(Some(ArchivingPolicyRow {
            archive_internal: flag(self.store.setting(&format!("{base}.archive_internal")).await?),
            archive_external: flag(self.store.setting(&format!("{base}.archive_external")).await?),
            identity: id,
        }))
    }

    /// Every tag archiving policy, by identity.
    pub async fn archiving_policies(&self) -> Result<Vec<ArchivingPolicyRow>, DataError> {
        let rows = sqlx::query("SELECT name FROM tandem_settings WHERE name LIKE $1 ORDER BY name")
            .bind(format!("{TAG_POLICY}tag:%"))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let id = &name[TAG_POLICY.len()..];
            if !id.contains('.')
                && let Some(p) = self.archiving_policy(id).await?
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Creates (`create`) or changes a tag archiving policy, setting what is given; false when
    /// it already exists (create) or does not (change).
    pub async fn put_archiving_policy(&self, p: &ArchivingPolicyRow, create: bool) -> Result<bool, DataError> {
        let base = format!("{TAG_POLICY}{}", p.identity.to_lowercase());
        if self.store.setting(&base).await?.is_some() == create {
            return Ok(false);
        }
        self.store.set_setting(&base, "1").await?;
        let b = |v: bool| if v { "true" } else { "false" };
        for (name, v) in [("archive_internal", p.archive_internal), ("archive_external", p.archive_external)] {
            if let Some(v) = v {
                self.store.set_setting(&format!("{base}.{name}"), b(v)).await?;
            }
        }
        Ok(true)
    }

    /// Grants a tag policy to a user (`None`: back to the global policy).
    pub async fn grant_archiving_policy(&self, user: &str, tag: Option<&str>) -> Result<(), DataError> {
        let name = format!("{GRANT}{}", user.to_lowercase());
        match tag {
            Some(t) => self.store.set_setting(&name, &t.to_lowercase()).await?,
            None => {
                sqlx::query("DELETE FROM tandem_settings WHERE name = $1")
                    .bind(&name)
                    .execute(self.store.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// The tag policy granted to a user, if any.
    pub async fn granted_archiving_policy(&self, user: &str) -> Result<Option<String>, DataError> {
        Ok(self.store.setting(&format!("{GRANT}{}", user.to_lowercase())).await?)
    }

    /// Whether a user's conversations with users of the organisation are archived: the
    /// ArchiveInternal of the policy granted to them, else of the global policy (false).
    pub async fn archives_internal_for(&self, user: &str) -> Result<bool, DataError> {
        if let Some(tag) = self.granted_archiving_policy(user).await?
            && let Some(p) = self.archiving_policy(&tag).await?
        {
            return Ok(p.archive_internal.unwrap_or(false));
        }
        Ok(self.archiving_configuration().await?.archive_internal.unwrap_or(false))
    }

    /// Sets the given archiving settings, leaving the others as they were.
    pub async fn set_archiving_configuration(&self, c: &ArchivingConfigRow) -> Result<(), DataError> {
        let b = |v: bool| if v { "true" } else { "false" };
        if let Some(v) = &c.enable_archiving {
            self.store.set_setting(ARCHIVING[0], v).await?;
        }
        for (name, v) in [
            (ARCHIVING[1], c.enable_exchange_archiving),
            (ARCHIVING[2], c.archive_internal),
            (ARCHIVING[3], c.archive_external),
        ] {
            if let Some(v) = v {
                self.store.set_setting(name, b(v)).await?;
            }
        }
        Ok(())
    }

    /// Set-CsConversationHistoryConfiguration as stored.
    pub async fn history_configuration(&self) -> Result<HistoryConfigRow, DataError> {
        let flag = |v: Option<String>| v.map(|s| s == "true");
        let num = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
        Ok(HistoryConfigRow {
            enable_server_conversation_history: flag(self.store.setting(SET_ENABLED).await?),
            idle_timeout_secs: num(self.store.setting(SET_IDLE).await?),
            max_continued_conversation_retry: num(self.store.setting(SET_RETRY).await?),
        })
    }

    /// Sets the given settings, leaving the others as they were.
    pub async fn set_history_configuration(&self, c: &HistoryConfigRow) -> Result<(), DataError> {
        if let Some(v) = c.enable_server_conversation_history {
            self.store.set_setting(SET_ENABLED, if v { "true" } else { "false" }).await?;
        }
        if let Some(v) = c.idle_timeout_secs {
            self.store.set_setting(SET_IDLE, &v.to_string()).await?;
        }
        if let Some(v) = c.max_continued_conversation_retry {
            self.store.set_setting(SET_RETRY, &v.to_string()).await?;
        }
        Ok(())
    }
}

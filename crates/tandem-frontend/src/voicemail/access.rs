//! Calling in (Exchange UM's subscriber access, Outlook Voice Access): a UM-enabled user calls
//! the voicemail number (`sip:voicemail@DOMAIN`); the call is already digest-authenticated as
//! the user, and when a PIN is set it is asked for too (a short high tone, then the digits and
//! `#`; three tries). Tandem has no speech, so counts are beeps: one 600 Hz beep per new
//! message (a low tone for none). The new messages then play oldest first; after each, within
//! four seconds, `7` deletes it (to Deleted Items), `1` plays it again, anything else or nothing
//! marks it read and goes on. A falling two-note tone says goodbye and the agent hangs up. What
//! the caller did is written back to the mailbox through EWS (read, deleted), so message waiting
//! follows.

use std::sync::Arc;
use std::time::Duration;

use tandem_ews_client::Mailbox;
use tandem_ews_proto::ops::create_item::ItemData;
use tandem_ews_proto::ops::delete_folder::DeleteType;
use tandem_ews_proto::ops::{delete_item, find_item, get_attachment, get_item, update_item};
use tandem_ews_proto::types::{
    BaseShape, Comparison, FolderRef, ItemRef, Operand, PropertyPath, Restriction, Shape, SortKey,
};
use tokio_util::sync::CancellationToken;

use super::deposit::ITEM_CLASS;
use super::{Service, pin};
use crate::exchange_connector::{ConnectorError, Hop, at};
use crate::media::stream::{Ended, RecordLimits, RtpStream};
use crate::media::{self, MediaIoError, wav};
use crate::store::UmMailboxRow;

const PIN_TRIES: usize = 3;
/// Time for the PIN's digits and `#`.
const PIN_WAIT: Duration = Duration::from_secs(15);
/// Time for a choice after a message.
const CHOICE_WAIT: Duration = Duration::from_secs(4);
/// Beeps said at most for a count.
const MAX_BEEPS: u32 = 9;

fn beep(hz: f64, ms: u32) -> Vec<i16> {
    let mut b = media::tone(hz, ms, 0.35);
    b.extend(std::iter::repeat_n(0, 8 * 150));
    b
}

/// "Enter your PIN": two short high beeps.
fn pin_prompt() -> Vec<i16> {
    [beep(1400.0, 120), beep(1400.0, 120)].concat()
}

fn goodbye() -> Vec<i16> {
    [beep(700.0, 200), beep(500.0, 300)].concat()
}

fn error_tone() -> Vec<i16> {
    beep(300.0, 500)
}

/// One unread voicemail: its id and recording.
struct Message {
    id: ItemRef,
    samples: Vec<i16>,
}

/// Waits for digits up to `end` (not kept) or `wait`; None when the caller hung up.
async fn digits(stream: &mut RtpStream, stop: &CancellationToken, end: Option<char>, wait: Duration) -> Option<String> {
    let mut got = String::new();
    let started = tokio::time::Instant::now();
    loop {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Some(got);
        }
        let limits =
            RecordLimits { max: left, silence: Duration::from_secs(3600), silence_dbov: 0, stop_on_digit: true };
        match stream.record(limits, stop).await.ended {
            Ended::Digit(d) if Some(d) == end => return Some(got),
            Ended::Digit(d) => {
                got.push(d);
                if end.is_none() {
                    return Some(got);
                }
            }
            Ended::Stopped => return None,
            _ => return Some(got),
        }
    }
}

async fn unread(svc: &Service, mailbox: &Mailbox) -> Result<Vec<ItemRef>, ConnectorError> {
    let field = |f: &str| PropertyPath::Field(f.to_owned());
    let req = find_item::Request {
        restriction: Some(Restriction::And(vec![
            Restriction::Compare {
                path: field("item:ItemClass"),
                op: Comparison::Equal,
                value: Operand::Constant(ITEM_CLASS.to_owned()),
            },
            Restriction::Compare {
                path: field("message:IsRead"),
                op: Comparison::Equal,
                value: Operand::Constant("false".into()),
            },
        ])),
        sort: vec![SortKey { path: field("item:DateTimeReceived"), ascending: true }],
        ..find_item::Request::new(Shape::base(BaseShape::IdOnly), vec![FolderRef::distinguished("inbox")])
    };
    let found = svc.connector.client().find_item(mailbox, &req).await.map_err(at(Hop::Ews))?;
    Ok(found.into_iter().flat_map(|f| f.items).map(|(id, _)| id).collect())
}

/// A voicemail's recording (its first WAV attachment).
async fn recording(svc: &Service, mailbox: &Mailbox, id: &ItemRef) -> Result<Vec<i16>, ConnectorError> {
    let mut shape = Shape::base(BaseShape::IdOnly);
    shape.additional = vec![PropertyPath::Field("item:Attachments".into())];
    let got = svc.connector.client().get_item(mailbox, &get_item::Request::new(shape, vec![id.clone()])).await;
    let got = got.map_err(at(Hop::Ews))?;
    let ids: Vec<String> =
        got.iter().flat_map(|(_, d)| d.attachments.iter()).filter_map(|a| a.id.clone()).take(1).collect();
    let fail = |m: &str| ConnectorError { hop: Hop::Ews, message: m.to_owned(), hint: "see the mailbox's log".into() };
    if ids.is_empty() {
        return Err(fail("the voicemail has no attachment"));
    }
    let atts = svc.connector.client().get_attachments(mailbox, &get_attachment::Fetch { ids }).await;
    let atts = atts.map_err(at(Hop::Ews))?;
    let wav_bytes = atts.into_iter().next().map(|a| a.content).ok_or_else(|| fail("GetAttachment returned nothing"))?;
    wav::from_wav(&wav_bytes).map_err(|e| fail(&e.to_string()))
}

async fn mark_read(svc: &Service, mailbox: &Mailbox, id: &ItemRef) -> Result<(), ConnectorError> {
    let req = update_item::Request::set(
        ItemRef { id: id.id.clone(), change_key: None },
        vec![(PropertyPath::Field("message:IsRead".into()), ItemData::new("Message").with_is_read(true))],
    );
    svc.connector.client().update_item(mailbox, &req).await.map_err(at(Hop::Ews)).map(|_| ())
}

async fn delete(svc: &Service, mailbox: &Mailbox, id: &ItemRef) -> Result<(), ConnectorError> {
    let req = delete_item::Request::new(
        DeleteType::MoveToDeletedItems,
        vec![ItemRef { id: id.id.clone(), change_key: None }],
    );
    svc.connector.client().delete_item(mailbox, &req).await.map_err(at(Hop::Ews))
}

/// One call to the voicemail number by `um`'s owner. Returns how it ended (anything but
/// `Stopped` makes the dialog side hang up).
pub async fn serve(
    svc: &Arc<Service>,
    mut stream: RtpStream,
    um: UmMailboxRow,
    stop: &CancellationToken,
) -> Result<Ended, MediaIoError> {
    if let Some(hash) = um.pin_hash.clone() {
        let mut accepted = false;
        for _ in 0..PIN_TRIES {
            if !stream.play(&pin_prompt(), stop).await? {
                return Ok(Ended::Stopped);
            }
            let Some(entered) = digits(&mut stream, stop, Some('#'), PIN_WAIT).await else {
                return Ok(Ended::Stopped);
            };
            let h = hash.clone();
            if tokio::task::spawn_blocking(move || pin::verify(&entered, &h)).await.unwrap_or(false) {
                accepted = true;
                break;
            }
            tracing::info!(aor = %um.aor, "voicemail access: wrong PIN");
            if !stream.play(&error_tone(), stop).await? {
                return Ok(Ended::Stopped);
            }
        }
        if !accepted {
            metrics::counter!("tandem_voicemail_access_refused_total").increment(1);
            stream.play(&goodbye(), stop).await?;
            return Ok(Ended::MaxLength);
        }
    }
    let messages = async {
        let mailbox = svc.connector.mailbox(&um.smtp).await?;
        let ids = unread(svc, &mailbox).await?;
        Ok::<_, ConnectorError>((mailbox, ids))
    }
    .await;
    let (mailbox, ids) = match messages {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(aor = %um.aor, error = %e, "voicemail access: the mailbox cannot be read");
            stream.play(&[error_tone(), goodbye()].concat(), stop).await?;
            return Ok(Ended::MaxLength);
        }
    };
    let count: Vec<i16> = if ids.is_empty() {
        beep(300.0, 700)
    } else {
        (0..(ids.len() as u32).min(MAX_BEEPS)).flat_map(|_| beep(600.0, 150)).collect()
    };
    if !stream.play(&count, stop).await? {
        return Ok(Ended::Stopped);
    }
    tracing::info!(aor = %um.aor, new = ids.len(), "voicemail access");
    for id in ids {
        let samples = match recording(svc, &mailbox, &id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(aor = %um.aor, error = %e, "voicemail access: a message cannot be read");
                continue;
            }
        };
        let message = Message { id, samples };
        loop {
            if !stream.play(&message.samples, stop).await? {
                return Ok(Ended::Stopped);
            }
            let Some(choice) = digits(&mut stream, stop, None, CHOICE_WAIT).await else { return Ok(Ended::Stopped) };
            let done = match choice.as_str() {
                "1" => continue,
                "7" => delete(svc, &mailbox, &message.id).await,
                _ => mark_read(svc, &mailbox, &message.id).await,
            };
            if let Err(e) = done {
                tracing::warn!(aor = %um.aor, error = %e, "voicemail access: the mailbox was not updated");
            }
            break;
        }
    }
    stream.play(&goodbye(), stop).await?;
    Ok(Ended::MaxLength)
}

//! Instant messages in page mode (RFC 3428): forked to every registered endpoint of the target,
//! or kept for an offline user and delivered at their next registration.

use std::sync::Arc;

use tandem_directory::User;
use tandem_sip_proto::{HeaderView, Method, Request, Uri};

use super::dispatch::Ctx;
use super::{SipCore, random_token};
use crate::store::{DataError, OfflineMessage};

/// Handles a MESSAGE from an authenticated user to `target`, the address of record of this
/// domain its Request-URI names (`None`: not one of ours).
pub(super) async fn message(core: &Arc<SipCore>, ctx: Ctx, target: Option<String>) {
    let Ctx { req, user: sender, reply } = ctx;
    let Some(aor) = target else {
        reply.send(req.response(404).with_to_tag(&random_token())).await;
        return;
    };
    match core.directory.find_cached(&aor).await {
        Ok(Some(u)) if u.can_use_sip() => {}
        Ok(_) => {
            reply.send(req.response(404).with_to_tag(&random_token())).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "directory lookup failed");
            reply.send(req.response(500).with_to_tag(&random_token())).await;
            return;
        }
    }
    // The user's open web sessions are endpoints too (`crate::ucwa`): each gets the message.
    let on_web = to_web(core, &sender.sip_uri.key(), &aor, &req);
    let targets = core.location.targets(&aor);
    if targets.is_empty() && on_web > 0 {
        metrics::counter!("tandem_sip_im_total", "delivery" => "web").increment(1);
        if let Some(o) = core.conversations.on_final(&sender.sip_uri.key(), &aor, req.content_type(), &req.body) {
            (o.0)(200);
        }
        reply.send(req.response(200).with_to_tag(&random_token())).await;
        return;
    }
    if !targets.is_empty() {
        metrics::counter!("tandem_sip_im_total", "delivery" => "forwarded").increment(1);
        let (key, flow) = reply.into_transaction();
        if let Some(o) = core.conversations.on_final(&sender.sip_uri.key(), &aor, req.content_type(), &req.body) {
            core.observe_final(&key, o);
        }
        core.forward(req, flow, key, targets).await;
        return;
    }
    let status = match store(core, &aor, &req, &sender).await {
        Ok(true) => {
            metrics::counter!("tandem_sip_im_total", "delivery" => "stored").increment(1);
            core.conversations.missed(&sender.sip_uri.key(), &aor, req.content_type(), &req.body).await;
            202
        }
        Ok(false) => {
            metrics::counter!("tandem_sip_im_total", "delivery" => "refused_store_full").increment(1);
            tracing::warn!(
                %aor,
                limit = core.policy.max_offline_messages_per_user,
                "offline message refused: the user's store is full (frontend.sip_max_offline_messages_per_user)"
            );
            480
        }
        Err(e) => {
            tracing::error!(error = %e, %aor, "offline message not stored");
            500
        }
    };
    let mut r = req.response(status).with_to_tag(&random_token());
    if status == 480 {
        r.reason = "Temporarily Unavailable (offline message store full)".into();
    }
    reply.send(r).await;
}

/// The text of an IM for a web session: text bodies as they are, anything else not shown.
fn text_of(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let ctype = content_type.unwrap_or("text/plain").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ctype.starts_with("text/").then(|| String::from_utf8_lossy(body).into_owned())
}

/// Hands a MESSAGE to `aor`'s open web sessions; how many took it.
fn to_web(core: &SipCore, from: &str, aor: &str, req: &Request) -> usize {
    let Some(text) = text_of(req.content_type(), &req.body) else { return 0 };
    let event = super::web::WebEvent::Message {
        conversation: req.call_id().unwrap_or_default().to_owned(),
        from: from.to_owned(),
        to: aor.to_owned(),
        text,
        time: tandem_store::now_unix(),
    };
    core.presence.web.deliver(aor, &event)
}

/// How an IM sent from a web session went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebSend {
    /// Taken by at least one endpoint of the recipient (a phone or a web session).
    Delivered,
    /// Kept for the offline recipient.
    Stored,
    /// No endpoint took it and the recipient's offline store is full.
    Refused,
}

/// Why an IM from a web session was not sent.
#[derive(Debug, thiserror::Error)]
pub enum WebSendError {
    #[error("no SIP user {0} in this deployment")]
    UnknownRecipient(String),
    #[error("the directory cannot be read: {0}")]
    Directory(String),
    #[error("the message could not be kept for the offline user: {0}")]
    Store(#[from] DataError),
}

/// Sends an IM from `sender`'s web session to `aor` as a SIP MESSAGE from the user, through the
/// same delivery a MESSAGE from their phone gets: every registered endpoint of the recipient and
/// their web sessions, else the offline store. The conversation is the MESSAGE's Call-ID.
pub(crate) async fn send_from_web(
    core: &Arc<SipCore>,
    sender: &User,
    aor: &str,
    text: &str,
    conversation: &str,
) -> Result<WebSend, WebSendError> {
    match core.directory.find_cached(aor).await {
        Ok(Some(u)) if u.can_use_sip() => {}
        Ok(_) => return Err(WebSendError::UnknownRecipient(aor.to_owned())),
        Err(e) => return Err(WebSendError::Directory(e.to_string())),
    }
    let from_aor = sender.sip_uri.key();
    let from = format!("\"{}\" <{from_aor}>;tag={}", sender.display_name.replace('"', ""), random_token());
    let call_id = conversation.to_owned();
    let Ok(target) = Uri::parse(aor) else { return Err(WebSendError::UnknownRecipient(aor.to_owned())) };
    let mut req = Request::new(Method::Message, target);
    req.headers.push("From", from.clone());
    req.headers.push("To", format!("<{aor}>"));
    req.headers.push("Call-ID", call_id.clone());
    req.headers.push("CSeq", "1 MESSAGE");
    req.headers.push("Content-Type", "text/plain;charset=UTF-8");
    req.body = text.as_bytes().to_vec();
    let mut delivered = to_web(core, &from_aor, aor, &req) > 0;
    // The sender's other web sessions see what was sent, as a client shows its own messages.
    core.presence.web.deliver(
        &from_aor,
        &super::web::WebEvent::Message {
            conversation: call_id.clone(),
            from: from_aor.clone(),
            to: aor.to_owned(),
            text: text.to_owned(),
            time: tandem_store::now_unix(),
        },
    );
    for b in core.location.lookup(aor) {
        let mut r = req.clone();
        r.uri = b.contact_uri.clone();
        let Some(flow) = core.flow_for(&b.contact_uri, b.route()).await else { continue };
        if let Some(resp) = core.request(r, flow).await
            && (200..300).contains(&resp.status)
        {
            delivered = true;
        }
    }
    let observer = core.conversations.on_final(&from_aor, aor, req.content_type(), &req.body);
    if delivered {
        metrics::counter!("tandem_sip_im_total", "delivery" => "from_web").increment(1);
        if let Some(o) = observer {
            (o.0)(200);
        }
        return Ok(WebSend::Delivered);
    }
    if store(core, aor, &req, sender).await? {
        metrics::counter!("tandem_sip_im_total", "delivery" => "stored").increment(1);
        core.conversations.missed(&from_aor, aor, req.content_type(), &req.body).await;
        Ok(WebSend::Stored)
    } else {
        Ok(WebSend::Refused)
    }
}

/// Keeps a message for later; false when the user's store is full.
async fn store(core: &SipCore, aor: &str, req: &Request, sender: &User) -> Result<bool, DataError> {
    if core.store.offline_message_count(aor).await? >= core.policy.max_offline_messages_per_user {
        return Ok(false);
    }
    let message = OfflineMessage {
        id: random_token(),
        target_aor: aor.to_owned(),
        sender: sender.sip_uri.to_string(),
        from_header: req.headers.get("From").unwrap_or_default().to_owned(),
        content_type: req.content_type().unwrap_or("text/plain").to_owned(),
        body: req.body.clone(),
        received_at: tandem_store::now_unix(),
    };
    core.store.insert_offline_message(&message).await?;
    Ok(true)
}

/// Delivers stored messages to a user who just registered, oldest first; each is removed once an
/// endpoint accepted it.
pub(super) fn deliver_stored(core: Arc<SipCore>, aor: String) {
    let tasks = core.tasks.clone();
    tasks.spawn(async move {
        let messages = match core.store.offline_messages_for(&aor).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, %aor, "stored messages not read");
                return;
            }
        };
        for m in messages {
            let mut delivered = false;
            for b in core.location.lookup(&aor) {
                let req = stored_request(&core, &aor, &b.contact_uri, &m.from_header, &m.content_type, m.body.clone());
                let Some(flow) = core.flow_for(&b.contact_uri, b.route()).await else { continue };
                if let Some(resp) = core.request(req, flow).await
                    && (200..300).contains(&resp.status)
                {
                    delivered = true;
                }
            }
            if delivered {
                metrics::counter!("tandem_sip_im_total", "delivery" => "stored_delivered").increment(1);
                if let Err(e) = core.store.delete_offline_message(&m.id).await {
                    tracing::warn!(error = %e, "delivered message not removed");
                }
            } else {
                // Try again at the next registration.
                break;
            }
        }
    });
}

fn stored_request(core: &SipCore, aor: &str, contact: &Uri, from: &str, ctype: &str, body: Vec<u8>) -> Request {
    let mut r = Request::new(Method::Message, contact.clone());
    r.headers.push("From", from.to_owned());
    r.headers.push("To", format!("<{aor}>"));
    r.headers.push("Call-ID", format!("{}@{}", random_token(), core.settings.advertised_host));
    r.headers.push("CSeq", "1 MESSAGE");
    r.headers.push("Content-Type", ctype.to_owned());
    r.body = body;
    r
}

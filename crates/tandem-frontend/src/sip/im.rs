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
    let targets = core.location.targets(&aor);
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

//! The voicemail user agent's SIP side (call answering, MS-OXOUM's "call answering" calls): a
//! UAS on the proxy's server transaction. It answers an INVITE the routing sent here (the
//! callee UM-enabled and offline, busy everywhere, or not answering within the ring time) with
//! an SDP answer (PCMU or PCMA; 488 when the offer has neither, 400 when it cannot be read),
//! keeps the dialog by Call-ID so the caller's ACK and BYE end here, and hands the media to
//! `crate::voicemail::Service::take_message`. When the recording ends on its own (maximum
//! length, long silence) this side hangs up with a BYE of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tandem_sip_proto::sdp::{self, SdpError, Session};
use tandem_sip_proto::{HeaderView, Method, NameAddr, Request, Transport};
use tokio_util::sync::CancellationToken;

use super::transport::Flow;
use super::txn::ServerKey;
use super::{ALLOW, SipCore, random_token};
use crate::media::stream::{Ended, RtpStream};
use crate::store::UmMailboxRow;
use crate::voicemail::{CallParty, Service};

/// The user part of the voicemail number (`sip:voicemail@DOMAIN`) users call to listen.
pub(crate) const ACCESS_USER: &str = "voicemail";

/// One call the voicemail user agent holds.
#[derive(Debug)]
pub(crate) struct VmDialog {
    local_tag: String,
    stop: CancellationToken,
    /// The caller's ACK came: the 200 is no longer resent.
    acked: Arc<AtomicBool>,
}

/// Why a call went to voicemail (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    NoEndpoint,
    Busy,
    NoAnswer,
    /// The user called the voicemail number to listen (`voicemail::access`).
    Access,
}

impl SipCore {
    fn vm_dialogs(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, VmDialog>> {
        self.vm_dialogs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an in-dialog request belongs to a call the voicemail user agent holds.
    pub(super) fn is_vm_dialog(&self, req: &Request) -> bool {
        let (Some(call_id), Ok(to)) = (req.call_id(), req.to()) else { return false };
        let tag = to.tag().map(str::to_owned);
        self.vm_dialogs().get(call_id).is_some_and(|d| Some(&d.local_tag) == tag.as_ref())
    }

    /// The caller's ACK for the voicemail user agent's 200: ends its retransmissions.
    pub(super) fn vm_acked(&self, req: &Request) {
        if let Some(call_id) = req.call_id()
            && let Some(d) = self.vm_dialogs().get(call_id)
        {
            d.acked.store(true, Ordering::Relaxed);
        }
    }

    /// A BYE (or another in-dialog request) for a voicemail call: 200, and the recording ends.
    pub(super) async fn vm_in_dialog(&self, req: Request, flow: Flow, key: ServerKey) {
        if req.method == Method::Bye
            && let Some(call_id) = req.call_id()
            && let Some(d) = self.vm_dialogs().remove(call_id)
        {
            d.stop.cancel();
        }
        let status = match req.method {
            Method::Bye | Method::Info | Method::Update | Method::Options => 200,
            Method::Invite => 488, // no re-INVITE (hold) for a recording
            _ => 405,
        };
        self.respond(&key, &flow, req.response(status).with_header("Allow", ALLOW)).await;
    }

    /// Answers `req` (an INVITE in server transaction `key` from `upstream`) as the voicemail
    /// of `um`.
    pub(super) async fn answer_with_voicemail(
        self: &Arc<Self>,
        req: Request,
        upstream: Flow,
        key: ServerKey,
        um: UmMailboxRow,
        why: Why,
    ) {
        let Some(svc) = self.voicemail.get().cloned() else {
            self.respond(&key, &upstream, req.response(480).with_to_tag(&random_token())).await;
            return;
        };
        // A retransmission of an INVITE already answered (its transaction ended with the 2xx):
        // the 200's own resends answer it.
        if req.call_id().is_some_and(|c| self.vm_dialogs().contains_key(c)) {
            return;
        }
        if matches!(why, Why::NoEndpoint | Why::Access) {
            // Nothing was forwarded, so no 100 went yet: stop the caller's INVITE resends.
            self.respond(&key, &upstream, req.response(100)).await;
        }
        let local_tag = random_token();
        let refuse = |status: u16, warning: Option<String>| {
            let mut r = req.response(status).with_to_tag(&local_tag);
            if let Some(w) = warning {
                r.headers.push("Warning", format!("399 {} \"{}\"", self.settings.advertised_host, w.replace('"', "'")));
            }
            r
        };
        // The offer: an INVITE without SDP (a late offer) is not supported by this agent.
        let is_sdp = req.content_type().is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if req.body.is_empty() || !is_sdp {
            let r = refuse(488, Some("voicemail needs an SDP offer in the INVITE".into()));
            self.respond(&key, &upstream, r).await;
            return;
        }
        let offer = match Session::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                self.respond(&key, &upstream, refuse(400, Some(format!("malformed SDP: {e}")))).await;
                return;
            }
        };
        let remote_ip: Option<IpAddr> = offer.audio_target().and_then(|(a, _)| a.parse().ok());
        let Some(remote_ip) = remote_ip else {
            let negotiable = sdp::answer(&offer, "0.0.0.0", 9, 1);
            let r = match negotiable {
                Err(SdpError::NoCommonCodec) => refuse(488, Some(SdpError::NoCommonCodec.to_string())),
                _ => refuse(488, Some("the offer has no audio stream at an IP address".into())),
            };
            self.respond(&key, &upstream, r).await;
            return;
        };
        let advertised = svc.advertised_ip(remote_ip);
        // Negotiate before taking a port, so a refused offer costs nothing.
        if let Err(e) = sdp::answer(&offer, &advertised.to_string(), 9, 1) {
            let status = if e == SdpError::NoCommonCodec { 488 } else { 400 };
            self.respond(&key, &upstream, refuse(status, Some(e.to_string()))).await;
            return;
        }
        let (socket, lease) = match svc.ports.bind().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "voicemail cannot answer: no RTP port");
                let r = refuse(503, Some(e.to_string())).with_header("Retry-After", "30");
                self.respond(&key, &upstream, r).await;
                return;
            }
        };
        let session_id = u64::from(lease.port) << 32 | u64::from(tandem_store::now_unix() as u32);
        let (answer, negotiated) = match sdp::answer(&offer, &advertised.to_string(), lease.port, session_id) {
            Ok(x) => x,
            Err(e) => {
                self.respond(&key, &upstream, refuse(488, Some(e.to_string()))).await;
                return;
            }
        };
        let remote_port = negotiated.remote.1;
        let stream = RtpStream::new(
            socket,
            lease,
            SocketAddr::new(remote_ip, remote_port),
            Service::law_of(&negotiated.codec.encoding),
            negotiated.telephone_event,
            u32::from_be_bytes(random_ssrc()),
        );
        let Some(call_id) = req.call_id().map(str::to_owned) else {
            self.respond(&key, &upstream, refuse(400, None)).await;
            return;
        };
        let from = req.from().ok();
        let caller_uri = from.as_ref().map(|f| f.uri.to_string()).unwrap_or_default();
        let caller_aor = from.as_ref().and_then(|f| self.local_aor(&f.uri));
        let mut caller_name = from.as_ref().and_then(|f| f.display_name.clone()).filter(|n| !n.trim().is_empty());
        if caller_name.is_none()
            && let Some(aor) = &caller_aor
            && let Ok(Some(u)) = self.directory.find_cached(aor).await
        {
            caller_name = Some(u.display_name.clone()).filter(|n| !n.trim().is_empty());
        }
        let transport = upstream.transport();
        let port = match transport {
            Transport::Udp => self.settings.udp.port(),
            Transport::Tcp => self.settings.tcp.port(),
            _ => self.settings.tls.port(),
        };
        let param = match transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.as_str().to_ascii_lowercase()),
        };
        let contact = format!("<sip:voicemail@{}:{port}{param}>", self.settings.advertised_host);
        let ok = req
            .response(200)
            .with_to_tag(&local_tag)
            .with_header("Contact", contact)
            .with_header("Allow", ALLOW)
            .with_header("Server", concat!("tandem-voicemail/", env!("CARGO_PKG_VERSION")))
            .with_body("application/sdp", answer.render().into_bytes());
        let stop = svc.shutdown.child_token();
        let acked = Arc::new(AtomicBool::new(false));
        self.vm_dialogs().insert(
            call_id.clone(),
            VmDialog { local_tag: local_tag.clone(), stop: stop.clone(), acked: acked.clone() },
        );
        tracing::info!(callee = %um.aor, caller = %caller_uri, ?why, codec = %negotiated.codec.encoding, "voicemail answers");
        metrics::counter!("tandem_voicemail_calls_total", "why" => match why {
            Why::NoEndpoint => "no_endpoint",
            Why::Busy => "busy",
            Why::NoAnswer => "no_answer",
            Why::Access => "access",
        })
        .increment(1);
        let ok_bytes = ok.to_bytes();
        if let Some(observer) = self.take_observer(&key) {
            // For conversation history the callee missed the call (Skype for Business shows a
            // missed call beside the voicemail).
            (observer.0)(match why {
                Why::NoEndpoint => 480,
                Why::Busy => 486,
                Why::NoAnswer => 408,
                Why::Access => 200,
            });
        }
        self.respond(&key, &upstream, ok).await;
        if !upstream.transport().is_reliable() {
            // RFC 3261 §13.3.1.4: over UDP the UAS core resends its 2xx (T1, doubling up to
            // T2) until the ACK comes, for at most 64·T1.
            let (core, flow, stop, acked) = (self.clone(), upstream.clone(), stop.clone(), acked.clone());
            svc.tasks.spawn(async move {
                let mut wait = super::txn::T1;
                let mut spent = Duration::ZERO;
                while spent < super::txn::T1 * 64 {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    spent += wait;
                    if acked.load(Ordering::Relaxed) {
                        return;
                    }
                    let _ = core.out.send(&flow, ok_bytes.clone()).await;
                    wait = (wait * 2).min(super::txn::T2);
                }
                tracing::info!("voicemail: no ACK for the 200; the call is ended");
                stop.cancel();
            });
        }

        let party = CallParty { caller_uri: caller_uri.clone(), caller_name, callee: um };
        let core = self.clone();
        let remote_target = req
            .headers
            .get("Contact")
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|c| c.uri)
            .unwrap_or_else(|| from.as_ref().map(|f| f.uri.clone()).unwrap_or_else(|| req.uri.clone()));
        let to_header = req.headers.get("To").map(|t| format!("{t};tag={local_tag}")).unwrap_or_default();
        let from_header = req.headers.get("From").unwrap_or_default().to_owned();
        let tasks = svc.tasks.clone();
        tasks.spawn(async move {
            let ended = if why == Why::Access {
                crate::voicemail::access::serve(&svc, stream, party.callee, &stop).await
            } else {
                svc.take_message(stream, party, &stop).await
            };
            let still_ours = core.vm_dialogs().remove(&call_id).is_some();
            match ended {
                Ok(Ended::Stopped) => {}
                Ok(_) | Err(_) if still_ours => {
                    if let Err(e) = &ended {
                        tracing::warn!(error = %e, "voicemail media failed; hanging up");
                    }
                    // The recording ended on its own: hang up (RFC 3261 §15.1.1).
                    let mut bye = Request::new(Method::Bye, remote_target);
                    bye.headers.push("From", to_header);
                    bye.headers.push("To", from_header);
                    bye.headers.push("Call-ID", call_id);
                    bye.headers.push("CSeq", "1 BYE");
                    let _ = core.request(bye, upstream).await;
                }
                _ => {}
            }
        });
    }
}

fn random_ssrc() -> [u8; 4] {
    let t = random_token();
    let b = t.as_bytes();
    // The token is 18 hex digits; its first eight give 32 bits.
    let n = u32::from_str_radix(t.get(..8).unwrap_or("1"), 16).unwrap_or(u32::from(b.first().copied().unwrap_or(1)));
    n.to_be_bytes()
}

/// Whether a call's final answer from the callee's endpoints sends it to voicemail.
pub(super) fn diverts(status: u16, ring_time_over: bool) -> bool {
    matches!(status, 486 | 600 | 603 | 480 | 408 | 500..=599) || (status == 487 && ring_time_over)
}

#[cfg(test)]
mod tests {
    use super::diverts;

    #[test]
    fn busy_unavailable_and_rung_out_calls_divert_and_refusals_do_not() {
        for status in [486, 600, 603, 480, 408, 500, 503] {
            assert!(diverts(status, false), "{status}");
        }
        assert!(diverts(487, true), "the 487 of our own CANCEL at the ring time");
        assert!(!diverts(487, false), "a 487 we did not cause");
        for status in [401, 403, 404, 407, 484] {
            assert!(!diverts(status, true), "{status}");
        }
    }
}

//! Transaction state (RFC 3261 §17) as enums of per-state structs.
//!
//! Server transactions absorb retransmitted requests by replaying what was last sent; client
//! transactions retransmit over UDP (timers A/E) and time out (timers B/F). Transitions that the
//! RFC does not allow are errors, not silent changes.

use std::time::{Duration, Instant};

use tandem_sip_proto::{Method, Response};
use tokio::sync::oneshot;

use super::transport::Flow;

/// T1, the round-trip estimate that scales every timer.
pub const T1: Duration = Duration::from_millis(500);
/// T2, the cap on non-INVITE and INVITE-response retransmission intervals.
pub const T2: Duration = Duration::from_secs(4);
/// 64·T1: how long a transaction waits for a final response, and how long a completed INVITE
/// transaction lingers.
pub const TIMEOUT: Duration = Duration::from_secs(32);
/// How long a proxied non-INVITE branch waits before the proxy answers 408 itself: less than the
/// client's own 64·T1, so the client hears a final response before it gives up (Kamailio's
/// `fr_timer` is 30 s for the same reason).
pub const PROXY_NON_INVITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a completed non-INVITE transaction over UDP keeps its answer for retransmissions.
/// RFC 3261 says 64·T1 (timer J); like Kamailio's `wait_timer` we keep 5 s, which covers a client
/// that retransmits at T2 after losing our answer, and keeps memory flat under load (at 6,000
/// requests a second, 32 s of answers is ~200 MB). A later retransmission is processed again,
/// which registrations and refreshes tolerate by design.
pub const COMPLETED_LINGER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("transaction cannot go from {from} on {event}")]
pub struct TransitionError {
    pub from: &'static str,
    pub event: &'static str,
}

/// Server transaction key (RFC 3261 §17.2.3): the top Via's branch and sent-by, and the method
/// (ACK matches INVITE, CANCEL its own). The sent-by keeps two clients that happen to pick (or
/// copy) the same branch from answering or cancelling each other's requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub branch: String,
    /// `host:port` of the top Via as the client wrote it (the port its transport's default when
    /// absent), the host without case.
    pub sent_by: String,
    pub method: Method,
}

impl ServerKey {
    /// The key of a request with top Via `via` for `method` (its own, or INVITE for an ACK or
    /// CANCEL), when that Via has a branch.
    pub fn of_via(via: &tandem_sip_proto::Via, method: Method) -> Option<ServerKey> {
        let branch = via.branch()?.to_owned();
        let port = via.port.unwrap_or(match via.transport {
            tandem_sip_proto::Transport::Tls | tandem_sip_proto::Transport::Wss => 5061,
            _ => 5060,
        });
        let sent_by = format!("{}:{port}", via.host.to_string().to_ascii_lowercase());
        Some(ServerKey { branch, sent_by, method })
    }
}

#[derive(Debug)]
pub struct Proceeding {
    pub flow: Flow,
    pub invite: bool,
    /// The last provisional response sent, replayed on a retransmitted request.
    pub last: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct Completed {
    pub flow: Flow,
    pub invite: bool,
    pub final_bytes: Vec<u8>,
    pub until: Instant,
    /// INVITE over UDP: when to resend the final response if no ACK came (timer G).
    pub resend: Option<(Instant, Duration)>,
}

#[derive(Debug)]
pub struct Confirmed {
    pub until: Instant,
}

#[derive(Debug)]
pub enum ServerTxn {
    Proceeding(Proceeding),
    Completed(Completed),
    /// INVITE only: the ACK for a non-2xx final came (timer I absorbs further ACKs).
    Confirmed(Confirmed),
}

impl ServerTxn {
    pub fn new(flow: Flow, invite: bool) -> ServerTxn {
        ServerTxn::Proceeding(Proceeding { flow, invite, last: None })
    }

    pub fn state_name(&self) -> &'static str {
        match self {
            ServerTxn::Proceeding(_) => "Proceeding",
            ServerTxn::Completed(_) => "Completed",
            ServerTxn::Confirmed(_) => "Confirmed",
        }
    }

    /// Records a response being sent; returns the next state. A 2xx to INVITE ends the
    /// transaction (`None`): the dialog's ends retransmit it themselves.
    pub fn on_send(self, response: &Response, bytes: &[u8]) -> Result<Option<ServerTxn>, TransitionError> {
        match self {
            ServerTxn::Proceeding(mut p) => {
                if response.status < 200 {
                    p.last = Some(bytes.to_vec());
                    return Ok(Some(ServerTxn::Proceeding(p)));
                }
                if p.invite && response.status < 300 {
                    return Ok(None);
                }
                let reliable = p.flow.transport().is_reliable();
                let now = Instant::now();
                Ok(Some(ServerTxn::Completed(Completed {
                    resend: (p.invite && !reliable).then(|| (now + T1, T1)),
                    until: now
                        + match (p.invite, reliable) {
                            (false, true) => Duration::ZERO,
                            (false, false) => COMPLETED_LINGER,
                            (true, _) => TIMEOUT,
                        },
                    flow: p.flow,
                    invite: p.invite,
                    final_bytes: bytes.to_vec(),
                })))
            }
            other => Err(TransitionError { from: other.state_name(), event: "send response" }),
        }
    }

    /// The ACK for a non-2xx final arrived.
    pub fn on_ack(self) -> Result<ServerTxn, TransitionError> {
        match self {
            ServerTxn::Completed(c) if c.invite => {
                Ok(ServerTxn::Confirmed(Confirmed { until: Instant::now() + T2 * 2 }))
            }
            ServerTxn::Confirmed(c) => Ok(ServerTxn::Confirmed(c)),
            other => Err(TransitionError { from: other.state_name(), event: "ACK" }),
        }
    }

    /// What to resend when the request is retransmitted.
    pub fn replay(&self) -> Option<(&Flow, &[u8])> {
        match self {
            ServerTxn::Proceeding(p) => p.last.as_deref().map(|b| (&p.flow, b)),
            ServerTxn::Completed(c) => Some((&c.flow, &c.final_bytes)),
            ServerTxn::Confirmed(_) => None,
        }
    }

    pub fn expired(&self, now: Instant) -> bool {
        match self {
            ServerTxn::Proceeding(_) => false,
            ServerTxn::Completed(c) => now >= c.until,
            ServerTxn::Confirmed(c) => now >= c.until,
        }
    }
}

/// Who waits for a client transaction's outcome.
#[derive(Debug)]
pub enum Owner {
    /// A request this server originated (NOTIFY, a stored MESSAGE): the final response goes here.
    Local(Option<oneshot::Sender<Response>>),
    /// A branch of a proxied request.
    Proxy { context: u64 },
}

#[derive(Debug)]
pub struct Calling {
    pub retransmit: Option<(Instant, Duration)>,
    pub deadline: Instant,
}

#[derive(Debug)]
pub struct ClientProceeding {
    pub deadline: Instant,
}

#[derive(Debug)]
pub enum ClientState {
    /// Sent, nothing heard yet (retransmitting over UDP).
    Calling(Calling),
    /// A provisional response came.
    Proceeding(ClientProceeding),
}

#[derive(Debug)]
pub struct ClientTxn {
    pub method: Method,
    pub flow: Flow,
    pub bytes: Vec<u8>,
    pub owner: Owner,
    pub state: ClientState,
    /// The request as sent, for building ACK and CANCEL.
    pub request: tandem_sip_proto::Request,
}

impl ClientTxn {
    pub fn new(request: tandem_sip_proto::Request, flow: Flow, owner: Owner) -> ClientTxn {
        let now = Instant::now();
        let retransmit = (!flow.transport().is_reliable()).then_some((now + T1, T1));
        let wait = match owner {
            Owner::Proxy { .. } if request.method != Method::Invite => PROXY_NON_INVITE_TIMEOUT,
            _ => TIMEOUT,
        };
        ClientTxn {
            method: request.method.clone(),
            bytes: request.to_bytes(),
            flow,
            owner,
            state: ClientState::Calling(Calling { retransmit, deadline: now + wait }),
            request,
        }
    }

    /// A provisional response: stop retransmitting (INVITE) or slow down to T2 (non-INVITE).
    pub fn on_provisional(&mut self) {
        let deadline = match &self.state {
            ClientState::Calling(c) => c.deadline,
            ClientState::Proceeding(p) => p.deadline,
        };
        let deadline = if self.method == Method::Invite { Instant::now() + Duration::from_secs(180) } else { deadline };
        self.state = ClientState::Proceeding(ClientProceeding { deadline });
    }

    /// When a retransmission is due: the bytes to send, and the state is advanced.
    pub fn due_retransmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let ClientState::Calling(c) = &mut self.state else { return None };
        let (at, interval) = c.retransmit?;
        if now < at {
            return None;
        }
        let next = if self.method == Method::Invite { interval * 2 } else { (interval * 2).min(T2) };
        c.retransmit = Some((now + next, next));
        Some(self.bytes.clone())
    }

    pub fn timed_out(&self, now: Instant) -> bool {
        match &self.state {
            ClientState::Calling(c) => now >= c.deadline,
            ClientState::Proceeding(p) => now >= p.deadline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_sip_proto::{Request, Uri};

    fn response(status: u16) -> Response {
        let r = Request::new(Method::Invite, Uri::parse("sip:a@b.c").unwrap());
        r.response(status)
    }

    #[test]
    fn server_transitions() {
        let flow = Flow::Udp { peer: "127.0.0.1:5070".parse().unwrap() };
        let t = ServerTxn::new(flow.clone(), true);
        let t = t.on_send(&response(180), b"180").unwrap().unwrap();
        assert_eq!(t.replay().unwrap().1, b"180");
        let t = t.on_send(&response(486), b"486").unwrap().unwrap();
        assert_eq!(t.state_name(), "Completed");
        assert!(t.on_send(&response(200), b"200").is_err(), "a final after a final is refused");
        let t = ServerTxn::new(flow.clone(), true).on_send(&response(486), b"486").unwrap().unwrap();
        let t = t.on_ack().unwrap();
        assert_eq!(t.state_name(), "Confirmed");
        assert!(ServerTxn::new(flow.clone(), true).on_send(&response(200), b"200").unwrap().is_none());
        assert!(ServerTxn::new(flow, false).on_ack().is_err(), "ACK only in Completed INVITE");
    }
}

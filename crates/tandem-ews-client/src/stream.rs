//! A GetStreamingEvents connection: one HTTP answer carrying an envelope per batch of
//! notifications, read as it arrives and split into envelopes by `tandem-ews-proto`.

use std::collections::VecDeque;

use tandem_ews_proto::ops::get_streaming_events::{self, Batch};
use tandem_ews_proto::reply;

use crate::EwsClientError;

const OP: &str = "GetStreamingEvents";

/// The open stream; [`EventStream::next`] gives each batch until the server closes it.
#[derive(Debug)]
pub struct EventStream {
    url: String,
    resp: reqwest::Response,
    buf: Vec<u8>,
    ready: VecDeque<String>,
    max_envelope_bytes: usize,
    done: bool,
}

impl EventStream {
    pub(crate) fn new(url: String, resp: reqwest::Response, max_envelope_bytes: usize) -> EventStream {
        EventStream { url, resp, buf: Vec::new(), ready: VecDeque::new(), max_envelope_bytes, done: false }
    }

    /// The next batch, `None` once the connection has ended. A batch whose status is `Closed`
    /// is the last; an error message (an unknown subscription…) is an [`EwsClientError::Ews`].
    pub async fn next(&mut self) -> Option<Result<Batch, EwsClientError>> {
        loop {
            if let Some(text) = self.ready.pop_front() {
                return Some(self.read(&text));
            }
            if self.done {
                return None;
            }
            match self.resp.chunk().await {
                Err(source) => {
                    self.done = true;
                    let cause = tandem_http::client::root_cause(&source);
                    return Some(Err(EwsClientError::Transport { url: self.url.clone(), cause, source }));
                }
                Ok(None) => self.done = true,
                Ok(Some(chunk)) => {
                    self.buf.extend_from_slice(&chunk);
                    self.ready.extend(get_streaming_events::take_envelopes(&mut self.buf));
                    if self.buf.len() > self.max_envelope_bytes {
                        self.done = true;
                        return Some(Err(EwsClientError::TooLarge {
                            url: self.url.clone(),
                            limit: self.max_envelope_bytes,
                        }));
                    }
                }
            }
        }
    }

    fn read(&mut self, text: &str) -> Result<Batch, EwsClientError> {
        let doc = reply::parse(text).map_err(EwsClientError::reply(OP))?;
        let batch = get_streaming_events::parse_response(&doc)
            .map_err(EwsClientError::reply(OP))?
            .map_err(EwsClientError::message(OP))?;
        if batch.status == "Closed" {
            self.done = true;
        }
        Ok(batch)
    }
}

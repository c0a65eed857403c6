//! Telephone events (RFC 4733 §2.3): the 4-byte payload of a DTMF digit, and a receiver that
//! turns a stream of them into digits once each, however many times the end is repeated.

use crate::MediaError;

/// The payload type this server offers for `telephone-event/8000` (dynamic, RFC 3551 §3).
pub const DEFAULT_PAYLOAD_TYPE: u8 = 101;

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D (RFC 4733 §3.2).
    pub code: u8,
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// In timestamp units since the event began.
    pub duration: u16,
}

impl Event {
    pub fn parse(b: &[u8]) -> Result<Event, MediaError> {
        let head: [u8; 4] = b.get(..4).and_then(|s| s.try_into().ok()).ok_or(MediaError::Truncated(b.len()))?;
        let [code, flags, d0, d1] = head;
        Ok(Event { code, end: flags & 0x80 != 0, volume: flags & 0x3f, duration: u16::from_be_bytes([d0, d1]) })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.code, u8::from(self.end) << 7 | (self.volume & 0x3f), d[0], d[1]]
    }

    /// The digit a DTMF event is, when it is one.
    pub fn digit(self) -> Option<char> {
        match self.code {
            0..=9 => char::from_digit(u32::from(self.code), 10),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + self.code - 12)),
            _ => None,
        }
    }

    /// The event of a digit (`0`–`9`, `*`, `#`, `A`–`D`).
    pub fn code_of(digit: char) -> Option<u8> {
        match digit {
            '0'..='9' => digit.to_digit(10).map(|d| d as u8),
            '*' => Some(10),
            '#' => Some(11),
            'A'..='D' => Some(digit as u8 - b'A' + 12),
            _ => None,
        }
    }
}

/// Digits from a telephone-event stream: an event is one digit, known by its RTP timestamp
/// (all packets of one event share it), reported at its first packet; retransmitted ends and
/// late packets of a reported event are ignored.
#[derive(Debug, Default)]
pub struct DigitReceiver {
    last: Option<u32>,
}

impl DigitReceiver {
    /// The digit this packet starts, if it starts one.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = Event::parse(payload).ok()?;
        if self.last == Some(timestamp) {
            return None;
        }
        self.last = Some(timestamp);
        event.digit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_name_their_digits() {
        let e = Event { code: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(Event::parse(&e.to_bytes()).unwrap(), e);
        assert_eq!(e.digit(), Some('#'));
        for d in "0123456789*#ABCD".chars() {
            let code = Event::code_of(d).unwrap();
            assert_eq!(Event { code, end: false, volume: 0, duration: 0 }.digit(), Some(d));
        }
        assert_eq!(Event::code_of('x'), None);
        assert_eq!(Event { code: 16, end: false, volume: 0, duration: 0 }.digit(), None);
        assert_eq!(Event::parse(&[1, 2, 3]), Err(MediaError::Truncated(3)));
    }

    #[test]
    fn a_digit_is_reported_once_however_often_its_packets_come() {
        let mut r = DigitReceiver::default();
        let pkt = |code: u8, end: bool, duration: u16| Event { code, end, volume: 10, duration }.to_bytes();
        assert_eq!(r.push(1000, &pkt(5, false, 160)), Some('5'));
        assert_eq!(r.push(1000, &pkt(5, false, 320)), None);
        for _ in 0..3 {
            assert_eq!(r.push(1000, &pkt(5, true, 480)), None, "the end is sent three times");
        }
        assert_eq!(r.push(2000, &pkt(5, false, 160)), Some('5'), "the same digit again is a new event");
        assert_eq!(r.push(3000, &pkt(11, true, 160)), Some('#'), "an event seen only by its end");
    }
}

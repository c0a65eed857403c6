//! Opaque EWS identifiers: base64 of a kind byte and 16 random bytes for folders and items, and a
//! change key that is base64 of the object's change number. Anything else is malformed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{ProtoError, ResponseCode};

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Folder = 1,
    Item = 2,
    Attachment = 3,
}

/// Builds an id string from a kind and 16 bytes.
pub fn encode(kind: IdKind, raw: [u8; 16]) -> String {
    let mut bytes = [0u8; 17];
    bytes[0] = kind as u8;
    bytes[1..].copy_from_slice(&raw);
    STANDARD.encode(bytes)
}

/// Checks an id string's form and kind; returns it unchanged (it is the storage key).
pub fn decode(id: &str, kind: IdKind) -> Result<String, ProtoError> {
    let malformed = || ProtoError::new(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed.");
    let bytes = STANDARD.decode(id.trim()).map_err(|_| malformed())?;
    if bytes.len() != 17 {
        return Err(malformed());
    }
    match (bytes[0], kind) {
        (1, IdKind::Folder) | (2, IdKind::Item) | (3, IdKind::Attachment) => Ok(id.trim().to_owned()),
        (3, _) => Err(ProtoError::new(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed.")),
        (1 | 2, IdKind::Attachment) => {
            Err(ProtoError::new(ResponseCode::ErrorInvalidIdNotAnItemAttachmentId, "Id is not an attachment id."))
        }
        (1, IdKind::Item) | (2, IdKind::Folder) => {
            // Exchange answers a folder id used as an item id (and back) with "not found".
            Err(ProtoError::new(
                if kind == IdKind::Item { ResponseCode::ErrorItemNotFound } else { ResponseCode::ErrorFolderNotFound },
                "The specified object was not found in the store.",
            ))
        }
        _ => Err(malformed()),
    }
}

/// The change key for a change number.
pub fn change_key(change: i64) -> String {
    let mut bytes = *b"CK\0\0\0\0\0\0\0\0";
    bytes[2..].copy_from_slice(&change.to_be_bytes());
    STANDARD.encode(bytes)
}

/// The change number in a change key, if it is one of ours.
pub fn parse_change_key(key: &str) -> Option<i64> {
    let bytes = STANDARD.decode(key.trim()).ok()?;
    if bytes.len() != 10 || &bytes[..2] != b"CK" {
        return None;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[2..]);
    Some(i64::from_be_bytes(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_junk() {
        let f = encode(IdKind::Folder, [7; 16]);
        assert_eq!(decode(&f, IdKind::Folder).unwrap(), f);
        assert_eq!(decode(&f, IdKind::Item).unwrap_err().code, ResponseCode::ErrorItemNotFound);
        assert_eq!(decode("DUMMY", IdKind::Item).unwrap_err().code, ResponseCode::ErrorInvalidIdMalformed);
        assert_eq!(decode("AAAA", IdKind::Item).unwrap_err().code, ResponseCode::ErrorInvalidIdMalformed);
        assert_eq!(parse_change_key(&change_key(42)), Some(42));
        assert_eq!(parse_change_key("x"), None);
    }
}

//! Voicemail PINs (Set-UMMailboxPIN): digits only, 6 to 24 of them (Exchange UM's default
//! MinPINLength is 6), kept as an argon2 PHC string like passwords, checked off the async
//! workers.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub const MIN_PIN_LEN: usize = 6;
pub const MAX_PIN_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("a PIN is {MIN_PIN_LEN} to {MAX_PIN_LEN} digits (0-9), nothing else")]
    Form,
    #[error("the PIN cannot be hashed: {0}")]
    Hash(String),
}

/// Checks a PIN's form and hashes it (argon2, tens of milliseconds: call it from a command or
/// the blocking pool).
pub fn hash(pin: &str) -> Result<String, PinError> {
    let pin = pin.trim();
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PinError::Form);
    }
    Argon2::default().hash_password(pin.as_bytes()).map(|h| h.to_string()).map_err(|e| PinError::Hash(e.to_string()))
}

/// Whether `pin` matches the stored hash.
pub fn verify(pin: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(pin.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_digits_and_verify() {
        let h = hash("246810").unwrap();
        assert!(verify("246810", &h) && !verify("246811", &h));
        for bad in ["12345", "12345a", "", "1234567890123456789012345"] {
            assert!(matches!(hash(bad), Err(PinError::Form)), "{bad}");
        }
    }
}

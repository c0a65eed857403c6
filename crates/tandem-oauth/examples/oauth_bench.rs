//! S2S token cost: issuing (RS256 signing) and validating (MS-XOAUTH checks + RSA verify), first
//! and cached. Run through bench/oauth/run.sh (release build); prints one JSON object.

use std::sync::Arc;
use std::time::Instant;

use tandem_oauth::token::{
    Audience, TrustLevel, TrustedPartner, UserIdentity, ValidationPolicy, mint_user_token, validate,
};
use tandem_oauth::{EXCHANGE_APP_ID, IssuedTokenCache, LYNC_APP_ID, SigningKey, ValidationCache};

fn per_op_us(n: usize, f: impl FnMut(usize)) -> f64 {
    let mut f = f;
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[allow(clippy::unwrap_used)] // a benchmark: any failure is a bug to see at once
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "litwareinc.com");
    let cert = params.self_signed(&key).unwrap();
    let signing = SigningKey::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
    let realm = "litwareinc.com";
    let aud = Audience::new(EXCHANGE_APP_ID, "mail.litwareinc.com", realm);
    let policy = ValidationPolicy::new(
        EXCHANGE_APP_ID,
        vec!["mail.litwareinc.com".into()],
        vec![realm.into()],
        vec![realm.into()],
    );
    let partners = vec![TrustedPartner {
        name: "Lync".into(),
        application_id: LYNC_APP_ID.into(),
        realm: Some(realm.into()),
        enabled: true,
        trust_level: TrustLevel::Full,
        keys: vec![signing.certificate().clone()],
    }];
    let now = 1_800_000_000;
    let user = |i: usize| UserIdentity { smtp: format!("user{i}@litwareinc.com"), sip: None };

    // Issue, first: a fresh actor + outer token (one RSA-2048 signature).
    let mut tokens = Vec::with_capacity(n);
    let issue_first = per_op_us(n, |i| {
        tokens.push(mint_user_token(&signing, LYNC_APP_ID, realm, &aud, &user(i), now, 3600).unwrap())
    });
    // Issue, cached: the issuer cache hit the Front End takes for every later call.
    let issued = IssuedTokenCache::new();
    for (i, t) in tokens.iter().enumerate() {
        issued.insert(&format!("k|{i}"), Arc::from(t.as_str()), now + 3600);
    }
    let keys: Vec<String> = (0..n).map(|i| format!("k|{i}")).collect();
    let issue_cached = per_op_us(n, |i| assert!(issued.get(&keys[i], now).is_some()));
    // Validate, first: every rule and the RSA verify, each token seen once.
    let validate_first = per_op_us(n, |i| {
        validate(&tokens[i], &policy, &partners, now).unwrap();
    });
    // Validate, cached: the validation cache hit (SHA-256 of the token + map lookup).
    let cache = ValidationCache::new(n * 2);
    for t in &tokens {
        cache.insert(t, 1, Arc::new(validate(t, &policy, &partners, now).unwrap()), now);
    }
    let validate_cached = per_op_us(n, |i| assert!(cache.get(&tokens[i], 1, now).is_some()));
    // Raw RSA-2048 verify alone, the floor of a first validation.
    let msg = b"x".repeat(600);
    let sig = signing.sign(&msg).unwrap();
    let rsa_verify = per_op_us(n, |_| assert!(signing.certificate().verify(&msg, &sig)));
    println!(
        "{{\"iterations\": {n}, \"token_bytes\": {}, \"issue_first_us\": {issue_first:.1}, \"issue_cached_us\": {issue_cached:.2}, \"validate_first_us\": {validate_first:.1}, \"validate_cached_us\": {validate_cached:.2}, \"rsa2048_verify_us\": {rsa_verify:.1}}}",
        tokens[0].len()
    );
    // A sample token for the peer (PyJWT) to verify.
    if let Some(path) = std::env::args().nth(2) {
        std::fs::write(&path, format!("{}\n{}", tokens[0], cert.pem())).unwrap();
    }
}

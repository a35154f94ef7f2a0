//! The body of the `sip_parse` fuzz target (fuzz/fuzz_targets/sip_parse.rs): RFC 3261 parsing of
//! arbitrary bytes. `sip/tests/fuzz_corpus.rs` replays the target's seed corpus through it in an
//! ordinary `cargo test`.

// Panicking is how a fuzz target reports a failed property.
#![allow(clippy::expect_used, clippy::panic)]

use crate::{Error, Message, SipUri};

/// Parses `data` as a datagram and exercises what a parsed message offers. Properties (it panics
/// only when one fails): no panic; a parsed message is written back by [`Message::to_bytes`]
/// (unless canonical names and the Content-Length line make it longer than
/// [`crate::MAX_MESSAGE_LEN`]) and parses to itself; a response to a parsed request (RFC 3261
/// §8.2.6.2, with a To tag) is written and parses to itself too.
pub fn sip_parse(data: &[u8]) {
    let _ = Message::parse_syntax(data);
    let Ok(m) = Message::parse(data) else { return };
    let _ = (m.vias(), m.top_via(), m.from(), m.to(), m.contacts(), m.asserted_identities(), m.warnings());
    let _ = (m.cseq(), m.call_id(), m.max_forwards(), m.content_type(), m.header_values("Allow"));
    if let Some(uri) = m.request_uri() {
        let _ = SipUri::parse(uri);
    }
    if let Ok(contacts) = m.contacts() {
        for c in contacts {
            let _ = c.sip_uri();
        }
    }
    match m.to_bytes() {
        Ok(bytes) => {
            let again = Message::parse(&bytes);
            assert_eq!(again.as_ref(), Ok(&m), "a written message parses to itself");
        }
        Err(Error::TooLarge(_)) => {}
        Err(e) => panic!("a parsed message is refused by to_bytes: {e}"),
    }
    if m.is_request() {
        let mut r = Message::response_to(&m, 200, "OK");
        r.set_to_tag("fuzz").expect("the request's To parsed");
        if let Ok(bytes) = r.to_bytes() {
            assert_eq!(Message::parse(&bytes).as_ref(), Ok(&r), "a response parses to itself");
        }
        let mut popped = m.clone();
        assert!(popped.pop_top_via().is_ok(), "a parsed message has a Via");
    }
}

/// The body of the `sdp_parse` fuzz target: RFC 8866 parsing of arbitrary bytes. Properties: no
/// panic; a parsed description that can be written parses back to itself; every `a=crypto` and
/// `a=key-mgmt` attribute in it goes through [`sdes_parse`].
pub fn sdp_parse(data: &[u8]) {
    let Ok(sd) = crate::sdp::SessionDescription::parse(data) else { return };
    if let Ok(text) = sd.to_text() {
        let again = crate::sdp::SessionDescription::parse(text.as_bytes());
        assert_eq!(again.as_ref(), Ok(&sd), "a written description parses to itself");
    }
    for m in &sd.media {
        for a in &m.attributes {
            sdes_parse(a.to_string().as_bytes());
        }
    }
}

/// The body of the `sdes_parse` fuzz target: an attribute line without `a=` (`crypto:…` or
/// `key-mgmt:…`). Properties: no panic; a parsed crypto attribute is written back and parses to
/// the same text; a parsed key-mgmt attribute round-trips.
pub fn sdes_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(a) = crate::sdes::CryptoAttribute::parse_line(text)
        && let Ok(line) = a.to_line()
    {
        let again = crate::sdes::CryptoAttribute::parse_line(&line).expect("a written attribute parses");
        assert_eq!(again.to_line().as_ref(), Ok(&line), "a written attribute parses to itself");
    }
    if let Ok(k) = crate::sdes::KeyMgmt::parse_line(text) {
        assert_eq!(crate::sdes::KeyMgmt::parse_line(&k.to_line()).as_ref(), Ok(&k));
    }
}

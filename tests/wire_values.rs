//! Wire values that a public registry or specification settles, written out here as literals from
//! those sources (not from keysim's constants), so that a change to a constant that breaks interop
//! fails here. docs/spec-values.md lists each value with its source.

use wire::mbms_key_management::{self as mbms_http, RequestType};

#[test]
fn mbms_media_types_are_the_iana_registrations() {
    // IANA media-types registry, application/mbms-*+xml, published by TS 26.346 Annex C.
    assert_eq!(RequestType::Register.request_content_type(), "application/mbms-register+xml");
    assert_eq!(RequestType::Deregister.request_content_type(), "application/mbms-deregister+xml");
    assert_eq!(RequestType::MskRequest.request_content_type(), "application/mbms-msk+xml");
    assert_eq!(RequestType::MskRequest.response_content_type(), "application/mbms-msk-response+xml");
    // TS 26.346 Annex C.12: the MSK response's XML scheme.
    assert_eq!(mbms_http::NS_MSK_RESPONSE, "urn:3GPP:metadata:2005:MBMS:mskResponse");
    // TS 26.237 §10.4.2.1: the BM-SC's answer to a (de)registration.
    assert_eq!(RequestType::Register.response_content_type(), "application/mbms-register-response+xml");
    // TS 26.237 §10.4.2.1 and TS 33.328 Annex A: "/keymanagement?requesttype=…".
    assert!(RequestType::MskRequest.path_and_query().starts_with("/keymanagement?requesttype="));
}

#[test]
fn ub_body_is_the_ts_24_109_document() {
    // IANA application/vnd.3gpp.bsf+xml; TS 24.109 Annex C schema.
    assert_eq!(wire::ub::BSF_CONTENT_TYPE, "application/vnd.3gpp.bsf+xml");
    assert_eq!(wire::ub::BOOTSTRAPPING_INFO_NAMESPACE, "uri:3gpp-gba");
    assert_eq!(wire::ub::BOOTSTRAPPING_INFO_ELEMENT, "BootstrappingInfo");
}

#[test]
fn mbms_authenticate_framing_matches_the_nokia_tsy() {
    // Nokia Symbian modem TSY, cmmcustommesshandler.cpp: KOddInstructionCode 0x89,
    // KFirstBlockOfAuthenticationData 0x80, KMBMSAuthenticationContext 0x85,
    // KMBMSDataObjectTag 0x53, KMskUpdateMode 1, KMtkGenerationMode 2, KMskDeletionMode 3.
    use uicc_vocab::authenticate as a;
    use uicc_vocab::open_values as m;
    assert_eq!((a::INS_AUTHENTICATE_ODD, m::P1_ODD_FIRST_BLOCK, a::P2_MBMS_CONTEXT), (0x89, 0x80, 0x85));
    assert_eq!(m::TAG_MBMS_DATA, 0x53);
    assert_eq!((m::MODE_MSK_UPDATE, m::MODE_MTK_GENERATION, m::MODE_MSK_DELETION), (1, 2, 3));
}

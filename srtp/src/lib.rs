//! SRTP and SRTCP (RFC 3711): AES-CM-128 with HMAC-SHA1-80/32, key derivation, index estimation,
//! replay protection and MKI-based master key lookup (the MKI names the MTK in MBMS, TS 33.246 §6.6).
#![deny(unsafe_code)]

//! A BM-SC's MIKEY messages to one UE under one MUK (TS 33.246 §6.3.2: MSK messages and
//! solicited pulls; §6.3.3: MTK messages) and the MUK ID naming that MUK on the card (TS 31.102
//! §4.2.81): the network side of one card's MBMS key management, for the card conformance suite
//! and the card tests, which choose every RAND, key and counter themselves.

use mikey::Timestamp;
use mikey::mbms::{self, KeyDomainId, Msk, MskId, MskMessageParams, Mtk, MtkId, MtkMessageParams, MtkSalt};
use uicc_vocab::EncodeError;
use uicc_vocab::ef::muk::{encode_muk_id, muk_id_len};

/// Room for one message: IDi and IDr are an FQDN and a B-TID, far below this.
const MESSAGE_MAX: usize = 1024;

/// A BM-SC that shares one MUK with one UE.
#[derive(Debug, Clone)]
pub struct MukBmsc {
    /// MUK = Ks_int_NAF (UICC-based) or the MUK derived in the ME (TS 33.246 §6.1).
    pub muk: [u8; 32],
    /// IDi: the BM-SC's FQDN.
    pub idi: Vec<u8>,
    /// IDr: the B-TID of the bootstrap behind the MUK.
    pub idr: Vec<u8>,
    /// Key Domain ID = MCC ‖ MNC.
    pub key_domain_id: KeyDomainId,
}

impl MukBmsc {
    /// An MSK message carrying `msk` as MSK `msk_id`, protected with the MUK; `v_bit` asks for a
    /// verification message.
    pub fn msk_message(
        &self,
        rand: &[u8; 16],
        msk_id: u32,
        msk: &[u8; 16],
        timestamp: Timestamp,
        v_bit: bool,
    ) -> Result<Vec<u8>, mikey::Error> {
        let params =
            MskMessageParams::new(&self.idi, &self.idr, self.key_domain_id, MskId(msk_id), timestamp, rand)
                .with_v_bit(v_bit);
        let mut out = [0u8; MESSAGE_MAX];
        let n = mbms::build_msk_message(&mbms::Muk::new(self.muk), &params, &Msk::new(*msk), &mut out)?;
        Ok(out[..n].to_vec())
    }

    /// A solicited pull for `key_group` (TS 33.246 §6.3.2.2.4).
    pub fn solicited_pull(
        &self,
        rand: &[u8; 16],
        key_group: u16,
        timestamp: Timestamp,
    ) -> Result<Vec<u8>, mikey::Error> {
        let params = mbms::SolicitedPullParams::new(
            &self.idi,
            &self.idr,
            self.key_domain_id,
            key_group,
            timestamp,
            rand,
        );
        let mut out = [0u8; MESSAGE_MAX];
        let n = mbms::build_solicited_pull(&mbms::Muk::new(self.muk), &params, &mut out)?;
        Ok(out[..n].to_vec())
    }

    /// An MTK message carrying `mtk` (and `salt`) as MTK `mtk_id` with timestamp counter
    /// `counter`, protected with `msk`, the MSK `msk_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn mtk_message(
        &self,
        msk_id: u32,
        msk: &[u8; 16],
        mtk_id: u32,
        counter: u32,
        mtk: &[u8; 16],
        salt: Option<&[u8; 14]>,
    ) -> Result<Vec<u8>, mikey::Error> {
        let params = MtkMessageParams::new(
            self.key_domain_id,
            MskId(msk_id),
            MtkId(mtk_id),
            Timestamp::Counter(counter),
        );
        let salt = salt.map(|s| MtkSalt::new(*s));
        let mut out = [0u8; MESSAGE_MAX];
        let n = mbms::build_mtk_message(&Msk::new(*msk), &params, &Mtk::new(*mtk), salt.as_ref(), &mut out)?;
        Ok(out[..n].to_vec())
    }

    /// The MUK ID of MUK Deletion and EF.MUK: `A0 L { 80 L IDr, 82 L IDi }` (TS 31.102 §4.2.81).
    pub fn muk_id_tlv(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![0u8; muk_id_len(self.idr.len(), self.idi.len())];
        let n = encode_muk_id(&self.idr, &self.idi, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bmsc() -> MukBmsc {
        MukBmsc {
            muk: [0x4D; 32],
            idi: b"bmsc.example.org".to_vec(),
            idr: b"I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org".to_vec(),
            key_domain_id: KeyDomainId([0x00, 0xF1, 0x10]),
        }
    }

    #[test]
    fn messages_open_with_the_keys_they_were_built_with() {
        let b = bmsc();
        let msk = [0x11; 16];
        let m = b.msk_message(&[0x5A; 16], 0x0001_0002, &msk, Timestamp::Counter(7), true).expect("MSK");
        let parsed = mbms::parse_msk_message(&m).expect("parses");
        assert_eq!((parsed.idi().data, parsed.idr().data), (&b.idi[..], &b.idr[..]));
        assert!(parsed.v_bit());
        let mbms::MskUpdate::Msk(d) =
            mbms::verify_and_decrypt_msk(&mbms::Muk::new(b.muk), &parsed).expect("MAC")
        else {
            panic!("an MSK, not a pull")
        };
        assert_eq!((d.msk_id, *d.msk.as_bytes()), (MskId(0x0001_0002), msk));
        let pull = b.solicited_pull(&[0xA5; 16], 3, Timestamp::Counter(8)).expect("pull");
        assert!(mbms::parse_msk_message(&pull).expect("parses").is_solicited_pull());
    }

    #[test]
    fn the_muk_id_names_idr_then_idi() {
        let b = bmsc();
        let id = b.muk_id_tlv().expect("MUK ID");
        let (idr, idi) = (b.idr.len() as u8, b.idi.len() as u8);
        assert_eq!(&id[..4], &[0xA0, 2 + idr + 2 + idi, 0x80, idr]);
        assert_eq!(&id[4..4 + b.idr.len()], &b.idr[..]);
        assert_eq!(&id[4 + b.idr.len()..6 + b.idr.len()], &[0x82, idi]);
    }
}

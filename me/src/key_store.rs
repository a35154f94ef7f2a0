//! The ME key store of ME-based MBMS key management (TS 33.246 §6.1 as changed by CR 001 and
//! CR 027): MUK, MRK, MSK and MTK in non-volatile memory, bound to the ICCID of the card.
//!
//! * A different UICC wipes every MBMS key ([`KeyStore::on_card_inserted`]).
//! * At power-down MRK, MSK and MTK are dropped or kept, by configuration
//!   ([`KeyStore::power_down`]); the last successfully used MUK of each BM-SC is always kept, to
//!   verify the first message of a solicited pull.
//! * One file, kept through [`statefile`]: locked against other processes for as long as the
//!   [`KeyStore`] lives, private (`0600`), written atomically (temporary file, fsync, rename, fsync
//!   of the directory), sealed with a format version and a SHA-256. A file that is corrupted,
//!   truncated, foreign or of another version is refused and left untouched: the ME never starts
//!   over with an empty store behind the user's back (that would forget the replay counters).
//!
//! Payload layout inside the [`statefile`] envelope (magic "KSIMMEKS", [`STORE_VERSION`];
//! integers big-endian):
//!
//! ```text
//! ICCID length u8 | ICCID digits
//! | u16 n, n × MUK | u16 n, n × MRK | u16 n, n × MSK | u16 n, n × MTK | next MSK order u64
//! MUK: L16 IDi | L16 IDr | key 32 | L8 lifetime | flags u8 (1 counter, 2 last used) | counter u64
//! MRK: L16 IDi | L16 IDr | key 32 | L8 lifetime
//! MSK: Key Domain ID 3 | MSK ID u32 | key 16 | has MTK ID u8 | MTK ID u32 | order u64
//! MTK: Key Domain ID 3 | MSK ID u32 | MTK ID u32 | key 16 | has salt u8 | [salt 14]
//! ```

use std::path::{Path, PathBuf};

use mikey::mbms::{KeyDomainId, Msk, MskId, Mtk, MtkId, MtkSalt, Muk};
use statefile::StateFile;
pub use statefile::WriteStep;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// First bytes of a key store file.
pub const STORE_MAGIC: [u8; 8] = *b"KSIMMEKS";
/// Format version written and read (version 1, before the [`statefile`] envelope, is refused).
pub const STORE_VERSION: u16 = 2;
/// The key store's [`statefile`] format.
pub const STORE_FORMAT: statefile::Format =
    statefile::Format { magic: STORE_MAGIC, version: STORE_VERSION, what: "ME key store", legacy_len: None };
/// Longest ICCID (ITU-T E.118: 19 or 20 digits).
pub const ICCID_MAX_LEN: usize = 20;
/// MUKs kept per BM-SC (IDi): the last successfully used one (kept for a solicited pull, TS 33.246
/// §6.1 as changed by CR 027), the newest one, and one more; older ones go as bootstraps renew.
pub const MUKS_PER_IDI: usize = 3;
/// MRKs kept per BM-SC: the newest bootstrap's and the one before it.
pub const MRKS_PER_IDI: usize = 2;

/// A MUK kept by the ME, named by IDi (BM-SC FQDN) and IDr (B-TID).
#[derive(Debug)]
pub struct StoredMuk {
    /// IDi: the BM-SC (NAF) FQDN.
    pub idi: Vec<u8>,
    /// IDr: the B-TID of the bootstrap.
    pub idr: Vec<u8>,
    /// The MUK.
    pub muk: Muk,
    /// Key lifetime of the bootstrap, as the BSF sent it.
    pub lifetime: String,
    /// Timestamp of the last MSK message accepted under this MUK (its replay counter).
    pub ts_counter: Option<u64>,
    /// The last successfully used MUK of this IDi.
    pub last_used: bool,
}

/// An MRK kept by the ME.
#[derive(Debug)]
pub struct StoredMrk {
    /// The BM-SC (NAF) FQDN.
    pub idi: Vec<u8>,
    /// The B-TID.
    pub idr: Vec<u8>,
    /// The MRK.
    pub mrk: gba::Mrk,
    /// Key lifetime.
    pub lifetime: String,
}

/// An MSK kept by the ME.
#[derive(Debug)]
pub struct StoredMsk {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID.
    pub msk_id: MskId,
    /// The MSK.
    pub msk: Msk,
    /// MTK ID of the last MTK accepted under this MSK.
    pub last_mtk_id: Option<MtkId>,
    /// Delivery order (larger is newer), to delete the older of two MSKs of a Key Group.
    pub order: u64,
}

/// An MTK kept by the ME (the latest of each MSK).
#[derive(Debug)]
pub struct StoredMtk {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID.
    pub msk_id: MskId,
    /// MTK ID.
    pub mtk_id: MtkId,
    /// The MTK.
    pub mtk: Mtk,
    /// The salt, when delivered.
    pub salt: Option<MtkSalt>,
}

/// What [`KeyStore::on_card_inserted`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardChange {
    /// The same UICC as before: keys kept.
    SameCard,
    /// No UICC recorded before: the store now belongs to this one (anything in it is wiped).
    FirstCard,
    /// A different UICC: every MBMS key was deleted.
    DifferentCard,
}

/// How a [`KeyStore`] holds its file.
#[derive(Debug)]
enum Holding {
    /// Opened and locked: the store can be saved.
    Locked(StateFile),
    /// A copy read from this path without the lock.
    Snapshot(PathBuf),
}

/// The ME key store (see the module documentation).
#[derive(Debug)]
pub struct KeyStore {
    file: Holding,
    iccid: Option<String>,
    muks: Vec<StoredMuk>,
    mrks: Vec<StoredMrk>,
    msks: Vec<StoredMsk>,
    mtks: Vec<StoredMtk>,
    next_order: u64,
}

impl KeyStore {
    /// Opens the store at `path` and locks it until the store is dropped: empty when the file does
    /// not exist (nothing is written until a change is saved), [`Error::State`] when it is not a
    /// sound key store (the file is left untouched), or when another process keeps it locked.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let (file, payload) = StateFile::open(path.as_ref(), STORE_FORMAT)?;
        let mut store = KeyStore::empty(Holding::Locked(file));
        store.load(payload)?;
        Ok(store)
    }

    /// The store at `path` as it is on disk now, read without taking its lock (a process or a UE
    /// holding it may be running): a copy to look at, which cannot be saved. Every save replaces
    /// the file atomically, so the copy is a state the store had.
    pub fn snapshot(path: impl AsRef<Path>) -> Result<Self> {
        let payload = StateFile::peek(path.as_ref(), STORE_FORMAT)?;
        let mut store = KeyStore::empty(Holding::Snapshot(path.as_ref().to_owned()));
        store.load(payload)?;
        Ok(store)
    }

    /// Reads the file again under the lock this store holds: what the ME has after a power cycle.
    /// On an error the store in memory is left as it was.
    pub fn reload(&mut self) -> Result<()> {
        let Holding::Locked(file) = &self.file else {
            return Err(Error::InvalidInput("a key store snapshot cannot be reloaded".into()));
        };
        let payload = file.read()?;
        let mut fresh = KeyStore::empty(Holding::Snapshot(PathBuf::new()));
        fresh.load(payload)?;
        self.iccid = fresh.iccid.take();
        self.muks = std::mem::take(&mut fresh.muks);
        self.mrks = std::mem::take(&mut fresh.mrks);
        self.msks = std::mem::take(&mut fresh.msks);
        self.mtks = std::mem::take(&mut fresh.mtks);
        self.next_order = fresh.next_order;
        Ok(())
    }

    fn empty(file: Holding) -> Self {
        KeyStore {
            file,
            iccid: None,
            muks: Vec::new(),
            mrks: Vec::new(),
            msks: Vec::new(),
            mtks: Vec::new(),
            next_order: 0,
        }
    }

    fn load(&mut self, payload: Option<statefile::Payload>) -> Result<()> {
        let Some(payload) = payload else { return Ok(()) };
        let loaded = decode(&payload).map_err(|reason| match &self.file {
            Holding::Locked(file) => file.refuse(reason),
            Holding::Snapshot(path) => statefile::Error::Invalid {
                what: STORE_FORMAT.what,
                path: path.clone(),
                reason: statefile::Invalid::Content(reason.into()),
            },
        })?;
        self.iccid = loaded.iccid;
        self.muks = loaded.muks;
        self.mrks = loaded.mrks;
        self.msks = loaded.msks;
        self.mtks = loaded.mtks;
        self.next_order = loaded.next_order;
        Ok(())
    }

    /// The file (a symbolic link's target; for a snapshot, the path it was read from).
    pub fn path(&self) -> &Path {
        match &self.file {
            Holding::Locked(file) => file.path(),
            Holding::Snapshot(path) => path,
        }
    }

    /// The companion lock file, which stays beside the store (`None` for a snapshot).
    pub fn lock_path(&self) -> Option<&Path> {
        match &self.file {
            Holding::Locked(file) => Some(file.lock_path()),
            Holding::Snapshot(_) => None,
        }
    }

    /// The ICCID the keys belong to.
    pub fn iccid(&self) -> Option<&str> {
        self.iccid.as_deref()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.muks.is_empty() && self.mrks.is_empty() && self.msks.is_empty() && self.mtks.is_empty()
    }

    /// Binds the store to the inserted card (power-on or UICC change, TS 33.246 §6.1 / CR 001):
    /// another ICCID than the recorded one deletes every MBMS key. Saves the store.
    pub fn on_card_inserted(&mut self, iccid: &str) -> Result<CardChange> {
        if iccid.is_empty() || iccid.len() > ICCID_MAX_LEN || !iccid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidInput(format!("'{iccid}' is no ICCID")));
        }
        let change = match self.iccid.as_deref() {
            Some(old) if old == iccid => return Ok(CardChange::SameCard),
            Some(_) => CardChange::DifferentCard,
            None => CardChange::FirstCard,
        };
        if change == CardChange::DifferentCard {
            tracing::info!("a different UICC was inserted: deleting every MBMS key of the ME");
        }
        self.wipe_keys();
        self.iccid = Some(iccid.to_owned());
        self.save()?;
        Ok(change)
    }

    /// Power-down (TS 33.246 §6.1 / CR 001): with `keep` every key stays in the file; without it
    /// MRK, MSK and MTK are deleted and only the last successfully used MUK of each BM-SC stays.
    /// Saves the store.
    pub fn power_down(&mut self, keep: bool) -> Result<()> {
        if !keep {
            self.mrks.clear();
            self.msks.clear();
            self.mtks.clear();
            self.muks.retain(|m| m.last_used);
        }
        self.save()
    }

    /// Deletes every key (the ICCID binding stays).
    pub fn wipe_keys(&mut self) {
        self.muks.clear();
        self.mrks.clear();
        self.msks.clear();
        self.mtks.clear();
    }

    /// Writes the store to its file atomically.
    pub fn save(&self) -> Result<()> {
        let Holding::Locked(file) = &self.file else {
            return Err(Error::InvalidInput("a key store snapshot cannot be saved".into()));
        };
        let payload = encode(self);
        file.store_with(&payload, fault::before_step)
            .map_err(|source| Error::Store { path: file.given_path().to_owned(), source })
    }

    /// The store as file bytes (the sealed envelope).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        statefile::seal(&STORE_FORMAT, &encode(self))
    }

    // --- MUK -----------------------------------------------------------------------------------

    /// Every MUK.
    pub fn muks(&self) -> &[StoredMuk] {
        &self.muks
    }

    /// The MUK named by IDi and IDr.
    pub fn muk(&self, idi: &[u8], idr: &[u8]) -> Option<&StoredMuk> {
        self.muks.iter().find(|m| m.idi == idi && m.idr == idr)
    }

    /// The MUK named by IDi and IDr, mutably.
    pub fn muk_mut(&mut self, idi: &[u8], idr: &[u8]) -> Option<&mut StoredMuk> {
        self.muks.iter_mut().find(|m| m.idi == idi && m.idr == idr)
    }

    /// Adds or replaces (same IDi and IDr) a MUK; a replaced MUK keeps its counter and last-used
    /// mark (the same bootstrap gives the same key).
    pub fn put_muk(&mut self, muk: StoredMuk) {
        match self.muks.iter_mut().find(|m| m.idi == muk.idi && m.idr == muk.idr) {
            Some(old) => {
                old.muk = muk.muk;
                old.lifetime = muk.lifetime;
            }
            None => {
                // Each bootstrap brings a new MUK: drop the oldest ones of this IDi that are not
                // the last used (which must stay for a solicited pull).
                while self.muks.iter().filter(|m| m.idi == muk.idi).count() >= MUKS_PER_IDI {
                    match self.muks.iter().position(|m| m.idi == muk.idi && !m.last_used) {
                        Some(i) => drop(self.muks.remove(i)),
                        None => break,
                    }
                }
                self.muks.push(muk);
            }
        }
    }

    /// Marks the MUK (IDi, IDr) as the last successfully used MUK of its IDi.
    pub fn mark_muk_used(&mut self, idi: &[u8], idr: &[u8]) {
        for m in self.muks.iter_mut().filter(|m| m.idi == idi) {
            m.last_used = m.idr == idr;
        }
    }

    /// Deletes the MUK (IDi, IDr); false if there was none.
    pub fn remove_muk(&mut self, idi: &[u8], idr: &[u8]) -> bool {
        let before = self.muks.len();
        self.muks.retain(|m| !(m.idi == idi && m.idr == idr));
        self.muks.len() != before
    }

    // --- MRK -----------------------------------------------------------------------------------

    /// Every MRK.
    pub fn mrks(&self) -> &[StoredMrk] {
        &self.mrks
    }

    /// Adds or replaces the MRK of (IDi, IDr).
    pub fn put_mrk(&mut self, mrk: StoredMrk) {
        self.mrks.retain(|m| !(m.idi == mrk.idi && m.idr == mrk.idr));
        while self.mrks.iter().filter(|m| m.idi == mrk.idi).count() >= MRKS_PER_IDI {
            match self.mrks.iter().position(|m| m.idi == mrk.idi) {
                Some(i) => drop(self.mrks.remove(i)),
                None => break,
            }
        }
        self.mrks.push(mrk);
    }

    // --- MSK -----------------------------------------------------------------------------------

    /// Every MSK.
    pub fn msks(&self) -> &[StoredMsk] {
        &self.msks
    }

    /// The MSK (Key Domain ID, MSK ID).
    pub fn msk(&self, kd: KeyDomainId, msk_id: MskId) -> Option<&StoredMsk> {
        self.msks.iter().find(|m| m.key_domain_id == kd && m.msk_id == msk_id)
    }

    /// The MSK (Key Domain ID, MSK ID), mutably.
    pub fn msk_mut(&mut self, kd: KeyDomainId, msk_id: MskId) -> Option<&mut StoredMsk> {
        self.msks.iter_mut().find(|m| m.key_domain_id == kd && m.msk_id == msk_id)
    }

    /// Stores a delivered MSK: a re-delivered MSK ID gets the new key and keeps its MTK counter and
    /// its age (as on the card); otherwise, when `per_key_group` MSKs of the same Key Domain and Key
    /// Group are held, the older one is deleted with its MTK (TS 33.246 §6.3.2.1).
    pub fn put_msk(&mut self, kd: KeyDomainId, msk_id: MskId, msk: Msk, per_key_group: usize) {
        if let Some(old) = self.msk_mut(kd, msk_id) {
            old.msk = msk;
            return;
        }
        let order = self.next_order;
        self.next_order += 1;
        let same_group = |m: &StoredMsk| m.key_domain_id == kd && m.msk_id.key_group() == msk_id.key_group();
        while self.msks.iter().filter(|m| same_group(m)).count() >= per_key_group.max(1) {
            let Some(oldest) = self.msks.iter().filter(|m| same_group(m)).map(|m| m.order).min() else {
                break;
            };
            let gone = self.msks.iter().find(|m| m.order == oldest).map(|m| m.msk_id);
            self.msks.retain(|m| m.order != oldest);
            if let Some(gone) = gone {
                self.mtks.retain(|t| !(t.key_domain_id == kd && t.msk_id == gone));
            }
        }
        self.msks.push(StoredMsk { key_domain_id: kd, msk_id, msk, last_mtk_id: None, order });
    }

    /// Deletes every MSK (and its MTKs) of a Key Domain and Key Group; returns how many.
    pub fn remove_msks(&mut self, kd: KeyDomainId, key_group: u16) -> usize {
        let before = self.msks.len();
        self.msks.retain(|m| !(m.key_domain_id == kd && m.msk_id.key_group() == key_group));
        self.mtks.retain(|t| !(t.key_domain_id == kd && t.msk_id.key_group() == key_group));
        before - self.msks.len()
    }

    // --- MTK -----------------------------------------------------------------------------------

    /// Every MTK (the latest of each MSK).
    pub fn mtks(&self) -> &[StoredMtk] {
        &self.mtks
    }

    /// Stores the latest MTK of its MSK, replacing the previous one.
    pub fn put_mtk(&mut self, mtk: StoredMtk) {
        self.mtks.retain(|t| !(t.key_domain_id == mtk.key_domain_id && t.msk_id == mtk.msk_id));
        self.mtks.push(mtk);
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

struct Loaded {
    iccid: Option<String>,
    muks: Vec<StoredMuk>,
    mrks: Vec<StoredMrk>,
    msks: Vec<StoredMsk>,
    mtks: Vec<StoredMtk>,
    next_order: u64,
}

fn put_l8(out: &mut Vec<u8>, v: &[u8]) {
    let n = v.len().min(usize::from(u8::MAX));
    out.push(n as u8);
    out.extend_from_slice(&v[..n]);
}

fn put_l16(out: &mut Vec<u8>, v: &[u8]) {
    let n = v.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&v[..n]);
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

/// The payload: ICCID and body.
fn encode(s: &KeyStore) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::new());
    let b = &mut *body;
    put_l8(b, s.iccid.as_deref().unwrap_or("").as_bytes());
    put_count(b, s.muks.len());
    for m in s.muks.iter().take(usize::from(u16::MAX)) {
        put_l16(b, &m.idi);
        put_l16(b, &m.idr);
        b.extend_from_slice(m.muk.as_bytes());
        put_l8(b, m.lifetime.as_bytes());
        b.push(u8::from(m.ts_counter.is_some()) | (u8::from(m.last_used) << 1));
        b.extend_from_slice(&m.ts_counter.unwrap_or(0).to_be_bytes());
    }
    put_count(b, s.mrks.len());
    for m in s.mrks.iter().take(usize::from(u16::MAX)) {
        put_l16(b, &m.idi);
        put_l16(b, &m.idr);
        b.extend_from_slice(m.mrk.expose());
        put_l8(b, m.lifetime.as_bytes());
    }
    put_count(b, s.msks.len());
    for m in s.msks.iter().take(usize::from(u16::MAX)) {
        b.extend_from_slice(&m.key_domain_id.0);
        b.extend_from_slice(&m.msk_id.0.to_be_bytes());
        b.extend_from_slice(m.msk.as_bytes());
        b.push(u8::from(m.last_mtk_id.is_some()));
        b.extend_from_slice(&m.last_mtk_id.map_or(0, |i| i.0).to_be_bytes());
        b.extend_from_slice(&m.order.to_be_bytes());
    }
    put_count(b, s.mtks.len());
    for t in s.mtks.iter().take(usize::from(u16::MAX)) {
        b.extend_from_slice(&t.key_domain_id.0);
        b.extend_from_slice(&t.msk_id.0.to_be_bytes());
        b.extend_from_slice(&t.mtk_id.0.to_be_bytes());
        b.extend_from_slice(t.mtk.as_bytes());
        match &t.salt {
            Some(salt) => {
                b.push(1);
                b.extend_from_slice(salt.as_bytes());
            }
            None => b.push(0),
        }
    }
    b.extend_from_slice(&s.next_order.to_be_bytes());
    body
}

/// A bounds-checked reader over the file bytes.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> core::result::Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn arr<const N: usize>(&mut self) -> core::result::Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> core::result::Result<u8, &'static str> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> core::result::Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.arr()?))
    }
    fn u32(&mut self) -> core::result::Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.arr()?))
    }
    fn u64(&mut self) -> core::result::Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.arr()?))
    }
    fn l8(&mut self) -> core::result::Result<&'a [u8], &'static str> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn l16(&mut self) -> core::result::Result<&'a [u8], &'static str> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn text(&mut self) -> core::result::Result<String, &'static str> {
        String::from_utf8(self.l8()?.to_vec()).map_err(|_| "text field is not UTF-8")
    }
}

fn decode(bytes: &[u8]) -> core::result::Result<Loaded, &'static str> {
    let mut r = Rd(bytes);
    let iccid = r.text()?;
    let iccid = match iccid.as_str() {
        "" => None,
        s if s.len() <= ICCID_MAX_LEN && s.bytes().all(|b| b.is_ascii_digit()) => Some(iccid),
        _ => return Err("ICCID field holds no ICCID"),
    };
    let mut muks = Vec::new();
    for _ in 0..r.u16()? {
        let idi = r.l16()?.to_vec();
        let idr = r.l16()?.to_vec();
        let muk = Muk::new(r.arr()?);
        let lifetime = r.text()?;
        let flags = r.u8()?;
        let ts = r.u64()?;
        muks.push(StoredMuk {
            idi,
            idr,
            muk,
            lifetime,
            ts_counter: (flags & 1 != 0).then_some(ts),
            last_used: flags & 2 != 0,
        });
    }
    let mut mrks = Vec::new();
    for _ in 0..r.u16()? {
        let idi = r.l16()?.to_vec();
        let idr = r.l16()?.to_vec();
        let mrk = gba::Mrk::new(r.arr()?);
        let lifetime = r.text()?;
        mrks.push(StoredMrk { idi, idr, mrk, lifetime });
    }
    let mut msks = Vec::new();
    for _ in 0..r.u16()? {
        let key_domain_id = KeyDomainId(r.arr()?);
        let msk_id = MskId(r.u32()?);
        let msk = Msk::new(r.arr()?);
        let has = r.u8()?;
        let last = r.u32()?;
        let order = r.u64()?;
        msks.push(StoredMsk {
            key_domain_id,
            msk_id,
            msk,
            last_mtk_id: (has != 0).then_some(MtkId(last)),
            order,
        });
    }
    let mut mtks = Vec::new();
    for _ in 0..r.u16()? {
        let key_domain_id = KeyDomainId(r.arr()?);
        let msk_id = MskId(r.u32()?);
        let mtk_id = MtkId(r.u32()?);
        let mtk = Mtk::new(r.arr()?);
        let salt = match r.u8()? {
            0 => None,
            _ => Some(MtkSalt::new(r.arr()?)),
        };
        mtks.push(StoredMtk { key_domain_id, msk_id, mtk_id, mtk, salt });
    }
    let next_order = r.u64()?;
    if !r.0.is_empty() {
        return Err("bytes after the body");
    }
    Ok(Loaded { iccid, muks, mrks, msks, mtks, next_order })
}

// ---------------------------------------------------------------------------------------------
// Power cuts

/// Fault injection for power-cut campaigns (`keysim tearing`): a hook called before each
/// [`WriteStep`] of every [`KeyStore::save`] on this thread. An error from the hook stops the save
/// there, as a power cut would. Not a stable API.
#[doc(hidden)]
pub mod fault {
    use std::cell::RefCell;
    use std::io;

    use super::WriteStep;

    /// A hook: called with each step before it runs.
    pub type Hook = Box<dyn FnMut(WriteStep) -> io::Result<()>>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Installs `hook` for the saves of this thread (or removes it with `None`); returns the one
    /// it replaces.
    pub fn set_hook(hook: Option<Hook>) -> Option<Hook> {
        HOOK.with(|h| std::mem::replace(&mut *h.borrow_mut(), hook))
    }

    pub(super) fn before_step(step: WriteStep) -> io::Result<()> {
        HOOK.with(|h| match h.try_borrow_mut() {
            Ok(mut hook) => hook.as_mut().map_or(Ok(()), |f| f(step)),
            Err(_) => Ok(()),
        })
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    /// The fault hook stops a save at each step in turn; the store read back is then the old or the
    /// new one, and the hook sees the steps in their documented order.
    #[test]
    fn a_save_cut_at_each_step_leaves_the_old_or_the_new_store() {
        use std::fs;
        use std::io;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.bin");
        {
            let mut store = KeyStore::open(&path).unwrap();
            store.on_card_inserted("8988211000000430010").unwrap();
        }
        let old = fs::read(&path).unwrap();
        let kd = KeyDomainId([0x00, 0xF1, 0x10]);
        let changed = || {
            let mut store = KeyStore::open(&path).unwrap();
            store.put_msk(kd, MskId(0x0001_0001), Msk::new([0x11; 16]), 2);
            store
        };
        let new = changed().encode().to_vec();
        for k in 0..WriteStep::ALL.len() {
            fs::write(&path, &old).unwrap();
            let store = changed();
            let mut steps = 0;
            fault::set_hook(Some(Box::new(move |step| {
                assert_eq!(step, WriteStep::ALL[steps], "steps in order");
                steps += 1;
                if steps > k { Err(io::Error::other("power cut")) } else { Ok(()) }
            })));
            let result = store.save();
            fault::set_hook(None);
            drop(store);
            assert!(result.is_err(), "cut before step {k}");
            let bytes = KeyStore::open(&path).unwrap().encode().to_vec();
            assert!(bytes == old || bytes == new, "cut before step {k}: neither old nor new");
            // Only a cut after the rename (before the directory's fsync) leaves the new store.
            assert_eq!(bytes == new, WriteStep::ALL[k] == WriteStep::SyncDir, "step {k}");
        }
        changed().save().unwrap();
        assert_eq!(KeyStore::open(&path).unwrap().encode().to_vec(), new);
    }
}

//! The persistent state of the standalone network (`keysim serve`): SQLite in a private, locked
//! directory, written ahead of the wire (TS 33.102 Annex C for SQN, TS 33.246 §6.3 for MSK IDs,
//! MTK IDs and the MIKEY replay counters of each MUK).
//!
//! Every counter that goes out in a message is committed (a durable SQLite transaction) before
//! the message is sent: after a crash at any point the next value is greater than any value a
//! peer has seen. The database runs in WAL mode with `synchronous=FULL`, so a commit has reached
//! the disk when it returns (with `NORMAL` a WAL commit could be lost to a power cut, and a lost
//! SQN or MTK ID commit is a reused one).
//!
//! The directory is `0700`, the database `0600`; `serve.lock` beside it holds an exclusive
//! lock for the life of the [`Store`] (a second server on the same directory is refused, naming
//! the holder's PID). A file that is not SQLite, or SQLite without our `meta` row of
//! [`STORE_MAGIC`] and [`STORE_VERSION`], or that fails `PRAGMA quick_check`, is refused; it is
//! never reset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use gba::{Ks, Rand, Sqn};
use mikey::mbms::{Msk, MskId};
use rusqlite::{Connection, OptionalExtension, params};
use wire::zn::GbaType;

/// The database file in the state directory.
pub const DB_FILE: &str = "keysim-serve.sqlite3";
/// The lock file in the state directory (its content: the holder's PID).
pub const LOCK_FILE: &str = "serve.lock";
/// The value of `meta.magic`: a database of another program is refused.
pub const STORE_MAGIC: &str = "keysim-serve-state";
/// The schema version written and the only one read.
pub const STORE_VERSION: i64 = 1;
/// Media frames reserved ahead per commit (5 s at 50 frames/s): the RTP sequence number of a
/// restarted BM-SC starts past the reserved block.
pub const FRAME_RESERVATION: u64 = 250;
/// The environment variable that makes [`Store::open`] skip the commits of counters (SQN, MSK
/// number, MTK ID, MIKEY counter). Exists only so the crash tests can show that they catch the
/// defect; never set it otherwise.
pub const SKIP_COUNTER_COMMIT_ENV: &str = "KEYSIM_SERVE_UNSAFE_SKIP_COUNTER_COMMIT";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File-system trouble with the state directory.
    #[error("state directory {path}: {what}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "state directory {path} is in use by another keysim serve ({holder}); stop it or give another --state-dir"
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
    },
    /// Not our database, or damaged.
    #[error("{path}: {reason}; the file is left as it is (move it away to start with an empty state)")]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// SQLite refused an operation.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A stored bootstrapping (TS 33.220 §4.5.2): the BSF keeps Ks under the B-TID.
#[derive(Debug, Clone)]
pub struct BootstrapRecord {
    /// B-TID.
    pub btid: String,
    /// IMPI.
    pub impi: String,
    /// RAND of the run.
    pub rand: Rand,
    /// Ks = CK ‖ IK.
    pub ks: Ks,
    /// GBA_U or GBA_ME.
    pub gba_type: GbaType,
    /// Creation, Unix seconds.
    pub created: u64,
    /// Expiry of Ks, Unix seconds.
    pub expires: u64,
}

/// A stored BM-SC registration of one B-TID (TS 33.246 §6.3.2.1), with the Zn answer its MUK
/// comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistrationRecord {
    /// B-TID (IDr of its MSK messages).
    pub btid: String,
    /// IMPI.
    pub impi: String,
    /// The UE's address (MSK messages go there).
    pub peer: std::net::IpAddr,
    /// Authenticated in the `-uicc` realm.
    pub uicc_based: bool,
    /// The User Service IDs.
    pub services: Vec<String>,
    /// The BSF's Zn answer (XML of [`wire::zn::ZnAnswer`]).
    #[serde(skip)]
    pub zn_answer: String,
    /// Key expiry, Unix seconds.
    pub expires: u64,
}

/// The stored keys and counters of one User Service.
pub struct ServiceRecord {
    /// The service.
    pub service_id: String,
    /// The last MSK number used (MSK ID = Key Group ‖ number).
    pub msk_number: u16,
    /// The MSKs held, oldest first (the current one last), at most two.
    pub msks: Vec<(MskId, Msk)>,
    /// The highest MTK ID committed under the current MSK.
    pub mtk_id: u32,
    /// Media frames reserved (the next frame number after a restart).
    pub frames_reserved: u64,
    /// Whether the service's media is switched on.
    pub media_on: bool,
}

impl std::fmt::Debug for ServiceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRecord")
            .field("service_id", &self.service_id)
            .field("msk_number", &self.msk_number)
            .field("msk_ids", &self.msks.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .field("mtk_id", &self.mtk_id)
            .field("frames_reserved", &self.frames_reserved)
            .finish_non_exhaustive()
    }
}

/// A KMS's ticket protection key, wiped on drop.
pub type KmsKey = zeroize::Zeroizing<[u8; 32]>;

/// The state store of `keysim serve`.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    skip_counter_commits: bool,
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, what, source }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sqn (impi TEXT PRIMARY KEY, sqn INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bootstrap (btid TEXT PRIMARY KEY, impi TEXT NOT NULL, rand BLOB NOT NULL,
    ks BLOB NOT NULL, gba_type TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS registration (btid TEXT PRIMARY KEY, impi TEXT NOT NULL, peer TEXT NOT NULL,
    uicc INTEGER NOT NULL, services TEXT NOT NULL, zn_answer TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS service (service_id TEXT PRIMARY KEY, msk_number INTEGER NOT NULL,
    msks BLOB NOT NULL, mtk_id INTEGER NOT NULL, frames_reserved INTEGER NOT NULL, media_on INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS muk_counter (btid TEXT PRIMARY KEY, counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kms_key (fqdn TEXT PRIMARY KEY, tpk BLOB NOT NULL, tpk_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kms_replay (fqdn TEXT NOT NULL, id BLOB NOT NULL, until INTEGER NOT NULL,
    PRIMARY KEY (fqdn, id));
";

impl Store {
    /// Opens (or creates) the store in `dir`: creates the directory `0700`, takes the lock, opens
    /// the database `0600` and checks it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir, "creating it"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(dir, "making it private (0700)"))?;
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path, "opening the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "PID unknown".to_owned(),
                    pid => format!("PID {pid}"),
                };
                return Err(StoreError::Locked { path: dir.to_owned(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path, "locking")(e)),
        }
        lock.set_len(0).map_err(io(&lock_path, "writing the PID"))?;
        write!(lock, "{}", std::process::id()).map_err(io(&lock_path, "writing the PID"))?;

        let path = dir.join(DB_FILE);
        let existed = path.exists();
        if !existed {
            // Created 0600 before SQLite opens it.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path, "creating the database"))?;
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&path, "making it private (0600)"))?;
        let invalid = |reason: String| StoreError::Invalid { path: path.clone(), reason };
        let conn = Connection::open(&path).map_err(|e| invalid(format!("cannot open as SQLite: {e}")))?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| invalid(format!("not a keysim serve state database ({e})")))?;
        if check != "ok" {
            return Err(invalid(format!("damaged (SQLite quick_check: {check})")));
        }
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| invalid(format!("not a keysim serve state database ({e})")))?;
        if tables > 0 {
            let magic: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'magic'", [], |r| r.get(0))
                .optional()
                .map_err(|_| invalid("a SQLite database of another program (no keysim meta table)".into()))?;
            if magic.as_deref() != Some(STORE_MAGIC) {
                return Err(invalid("a SQLite database of another program (no keysim magic)".into()));
            }
            let version: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| r.get(0))
                .optional()?;
            if version.as_deref() != Some(&STORE_VERSION.to_string()) {
                return Err(invalid(format!(
                    "schema version {} (this keysim reads version {STORE_VERSION})",
                    version.unwrap_or_else(|| "missing".into())
                )));
            }
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(invalid(format!("journal mode {mode}: WAL is needed")));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('magic', ?1), ('version', ?2)",
            params![STORE_MAGIC, STORE_VERSION.to_string()],
        )?;
        // The WAL and shared-memory files SQLite creates next to it: private too.
        for suffix in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&p, "making it private (0600)"))?;
            }
        }
        let skip_counter_commits = std::env::var_os(SKIP_COUNTER_COMMIT_ENV).is_some_and(|v| v == "1");
        if skip_counter_commits {
            tracing::warn!("{SKIP_COUNTER_COMMIT_ENV}=1: counters are NOT committed before they are sent");
        }
        Ok(Store { conn: Mutex::new(conn), path, skip_counter_commits, _lock: lock })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every write is one SQLite transaction: a panic elsewhere cannot leave half of one.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- BSF ------------------------------------------------------------------------------------

    /// Commits the HE's SQN of `impi` (before the challenge carrying it is sent).
    pub fn commit_sqn(&self, impi: &str, sqn: Sqn) -> Result<(), StoreError> {
        if self.skip_counter_commits {
            return Ok(());
        }
        self.conn().execute(
            "INSERT INTO sqn (impi, sqn) VALUES (?1, ?2) ON CONFLICT(impi) DO UPDATE SET sqn = excluded.sqn",
            params![impi, sqn.value() as i64],
        )?;
        Ok(())
    }

    /// The committed SQN of `impi`.
    pub fn sqn(&self, impi: &str) -> Result<Option<Sqn>, StoreError> {
        let v: Option<i64> =
            self.conn().query_row("SELECT sqn FROM sqn WHERE impi = ?1", [impi], |r| r.get(0)).optional()?;
        v.map(|v| Sqn::new(v as u64)).transpose().map_err(|_| StoreError::Invalid {
            path: self.path.clone(),
            reason: format!("SQN of {impi} out of range"),
        })
    }

    /// Every committed SQN, by IMPI.
    pub fn sqns(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let c = self.conn();
        let mut q = c.prepare("SELECT impi, sqn FROM sqn ORDER BY impi")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a bootstrapping (before the 200 OK naming its B-TID is sent).
    pub fn store_bootstrap(&self, b: &BootstrapRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO bootstrap (btid, impi, rand, ks, gba_type, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                b.btid,
                b.impi,
                &b.rand[..],
                &b.ks.expose()[..],
                b.gba_type.to_string(),
                b.created as i64,
                b.expires as i64
            ],
        )?;
        Ok(())
    }

    /// The stored bootstrappings that have not expired at `now`.
    pub fn bootstraps(&self, now: u64) -> Result<Vec<BootstrapRecord>, StoreError> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT btid, impi, rand, ks, gba_type, created, expires FROM bootstrap WHERE expires > ?1",
        )?;
        let rows = q.query_map([now as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                zeroize::Zeroizing::new(r.get::<_, Vec<u8>>(3)?),
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (btid, impi, rand, ks, gba_type, created, expires) = row?;
            let bad = |what: &str| StoreError::Invalid {
                path: self.path.clone(),
                reason: format!("bootstrap {btid}: bad {what}"),
            };
            out.push(BootstrapRecord {
                rand: rand.as_slice().try_into().map_err(|_| bad("rand"))?,
                ks: Ks::from_slice(&ks).map_err(|_| bad("ks"))?,
                gba_type: gba_type.parse().map_err(|_| bad("gba_type"))?,
                created: created as u64,
                expires: expires as u64,
                btid,
                impi,
            });
        }
        Ok(out)
    }

    // --- BM-SC ----------------------------------------------------------------------------------

    /// Commits a service's MSKs and MSK number after a rotation (before the MSK goes out); the
    /// MTK ID starts again under the new MSK.
    pub fn commit_msk(
        &self,
        service_id: &str,
        msk_number: u16,
        msks: &[(MskId, &Msk)],
    ) -> Result<(), StoreError> {
        let mut blob = zeroize::Zeroizing::new(Vec::with_capacity(msks.len() * 20));
        for (id, k) in msks {
            blob.extend_from_slice(&id.0.to_be_bytes());
            blob.extend_from_slice(k.as_bytes());
        }
        let number = if self.skip_counter_commits { 0 } else { i64::from(msk_number) };
        self.conn().execute(
            "INSERT INTO service (service_id, msk_number, msks, mtk_id, frames_reserved, media_on)
             VALUES (?1, ?2, ?3, 0, 0, 1)
             ON CONFLICT(service_id) DO UPDATE SET msk_number = excluded.msk_number,
             msks = excluded.msks, mtk_id = 0",
            params![service_id, number, &blob[..]],
        )?;
        Ok(())
    }

    /// Commits the MTK ID of an MTK message under the current MSK (before it goes out).
    pub fn commit_mtk_id(&self, service_id: &str, mtk_id: u32) -> Result<(), StoreError> {
        if self.skip_counter_commits {
            return Ok(());
        }
        self.conn().execute(
            "UPDATE service SET mtk_id = max(mtk_id, ?2) WHERE service_id = ?1",
            params![service_id, i64::from(mtk_id)],
        )?;
        Ok(())
    }

    /// Reserves media frames up to `frames` (before the first of them goes out).
    pub fn reserve_frames(&self, service_id: &str, frames: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE service SET frames_reserved = max(frames_reserved, ?2) WHERE service_id = ?1",
            params![service_id, frames as i64],
        )?;
        Ok(())
    }

    /// Switches a service's media on or off.
    pub fn set_media(&self, service_id: &str, on: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE service SET media_on = ?2 WHERE service_id = ?1",
            params![service_id, i64::from(on)],
        )?;
        Ok(())
    }

    /// A service's stored state.
    pub fn service(&self, service_id: &str) -> Result<Option<ServiceRecord>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT msk_number, msks, mtk_id, frames_reserved, media_on FROM service WHERE service_id = ?1",
                [service_id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        zeroize::Zeroizing::new(r.get::<_, Vec<u8>>(1)?),
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((msk_number, blob, mtk_id, frames, media_on)) = row else { return Ok(None) };
        let bad = |what: &str| StoreError::Invalid {
            path: self.path.clone(),
            reason: format!("service {service_id}: bad {what}"),
        };
        if blob.len() % 20 != 0 || blob.len() > 40 {
            return Err(bad("MSK list"));
        }
        let mut msks = Vec::new();
        for chunk in blob.chunks_exact(20) {
            let id = u32::from_be_bytes(
                chunk.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("MSK ID"))?,
            );
            let key = Msk::from_slice(chunk.get(4..).unwrap_or_default()).map_err(|_| bad("MSK"))?;
            msks.push((MskId(id), key));
        }
        Ok(Some(ServiceRecord {
            service_id: service_id.to_owned(),
            msk_number: u16::try_from(msk_number).map_err(|_| bad("MSK number"))?,
            msks,
            mtk_id: u32::try_from(mtk_id).map_err(|_| bad("MTK ID"))?,
            frames_reserved: frames as u64,
            media_on: media_on != 0,
        }))
    }

    /// Commits the MIKEY replay counter of the MUK of `btid` (before the message goes out).
    pub fn commit_muk_counter(&self, btid: &str, counter: u32) -> Result<(), StoreError> {
        if self.skip_counter_commits {
            return Ok(());
        }
        self.conn().execute(
            "INSERT INTO muk_counter (btid, counter) VALUES (?1, ?2)
             ON CONFLICT(btid) DO UPDATE SET counter = max(counter, excluded.counter)",
            params![btid, i64::from(counter)],
        )?;
        Ok(())
    }

    /// Every MUK counter, by B-TID.
    pub fn muk_counters(&self) -> Result<Vec<(String, u32)>, StoreError> {
        let c = self.conn();
        let mut q = c.prepare("SELECT btid, counter FROM muk_counter ORDER BY btid")?;
        let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (b, c) = row?;
            out.push((b, u32::try_from(c).unwrap_or(u32::MAX)));
        }
        Ok(out)
    }

    /// Replaces the registrations of one IMPI by `records` in one transaction (a new B-TID of
    /// the IMPI may have taken over an older one's).
    pub fn replace_registrations(
        &self,
        impi: &str,
        records: &[RegistrationRecord],
    ) -> Result<(), StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM registration WHERE impi = ?1", [impi])?;
        for r in records {
            tx.execute(
                "INSERT OR REPLACE INTO registration (btid, impi, peer, uicc, services, zn_answer, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.btid,
                    r.impi,
                    r.peer.to_string(),
                    i64::from(r.uicc_based),
                    serde_json::to_string(&r.services).unwrap_or_default(),
                    r.zn_answer,
                    r.expires as i64
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes the registrations of `btid`.
    pub fn remove_registration(&self, btid: &str) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM registration WHERE btid = ?1", [btid])?;
        Ok(())
    }

    /// Every stored registration.
    pub fn registrations(&self) -> Result<Vec<RegistrationRecord>, StoreError> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT btid, impi, peer, uicc, services, zn_answer, expires FROM registration ORDER BY btid",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (btid, impi, peer, uicc, services, zn_answer, expires) = row?;
            let bad = |what: &str| StoreError::Invalid {
                path: self.path.clone(),
                reason: format!("registration {btid}: bad {what}"),
            };
            out.push(RegistrationRecord {
                peer: peer.parse().map_err(|_| bad("peer address"))?,
                services: serde_json::from_str(&services).map_err(|_| bad("service list"))?,
                uicc_based: uicc != 0,
                expires: expires as u64,
                btid,
                impi,
                zn_answer,
            });
        }
        Ok(out)
    }
}

impl Store {
    // --- KMS ------------------------------------------------------------------------------------

    /// The TPK and its name of the KMS `fqdn`.
    pub fn kms_key(&self, fqdn: &str) -> Result<Option<(KmsKey, String)>, StoreError> {
        let row = self
            .conn()
            .query_row("SELECT tpk, tpk_id FROM kms_key WHERE fqdn = ?1", [fqdn], |r| {
                Ok((zeroize::Zeroizing::new(r.get::<_, Vec<u8>>(0)?), r.get::<_, String>(1)?))
            })
            .optional()?;
        let Some((blob, id)) = row else { return Ok(None) };
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        if blob.len() != 32 {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                reason: format!("KMS {fqdn}: bad TPK"),
            });
        }
        key.copy_from_slice(&blob);
        Ok(Some((key, id)))
    }

    /// Keeps the TPK of the KMS `fqdn` (once, at its first start).
    pub fn store_kms_key(&self, fqdn: &str, tpk: &[u8; 32], tpk_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO kms_key (fqdn, tpk, tpk_id) VALUES (?1, ?2, ?3)",
            params![fqdn, &tpk[..], tpk_id],
        )?;
        Ok(())
    }

    /// Records an authenticated request of the KMS `fqdn` in its replay cache until `until`
    /// (before it is answered), dropping entries that ended before `now`.
    pub fn record_kms_replay(
        &self,
        fqdn: &str,
        id: &[u8; 32],
        until: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM kms_replay WHERE fqdn = ?1 AND until < ?2", params![fqdn, now as i64])?;
        tx.execute(
            "INSERT OR REPLACE INTO kms_replay (fqdn, id, until) VALUES (?1, ?2, ?3)",
            params![fqdn, &id[..], until as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The live replay-cache entries of the KMS `fqdn`.
    pub fn kms_replays(&self, fqdn: &str, now: u64) -> Result<Vec<([u8; 32], u64)>, StoreError> {
        let c = self.conn();
        let mut q = c.prepare("SELECT id, until FROM kms_replay WHERE fqdn = ?1 AND until >= ?2")?;
        let rows =
            q.query_map(params![fqdn, now as i64], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, until) = row?;
            let id: [u8; 32] = id.as_slice().try_into().map_err(|_| StoreError::Invalid {
                path: self.path.clone(),
                reason: format!("KMS {fqdn}: bad replay-cache entry"),
            })?;
            out.push((id, until as u64));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_second_opener_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked { .. })));
        s.commit_sqn("a@b", Sqn::new(0x40).unwrap()).unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.sqn("a@b").unwrap().map(|q| q.value()), Some(0x40));
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        drop(s);

        let foreign = tempfile::tempdir().unwrap();
        std::fs::write(foreign.path().join(DB_FILE), b"this is not a database at all, not even close....")
            .unwrap();
        let e = Store::open(foreign.path()).unwrap_err();
        assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
        assert_eq!(
            std::fs::read(foreign.path().join(DB_FILE)).unwrap(),
            b"this is not a database at all, not even close...."
        );

        let other = tempfile::tempdir().unwrap();
        let c = Connection::open(other.path().join(DB_FILE)).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
        drop(c);
        let e = Store::open(other.path()).unwrap_err();
        assert!(e.to_string().contains("another program"), "{e}");
    }
}

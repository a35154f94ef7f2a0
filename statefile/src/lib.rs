//! Private, locked, self-checking, crash-safe state files: every file keysim keeps between runs
//! (the emulated card's NVM image, the ME key store) is read and written through [`StateFile`].
//!
//! * **One writer at a time.** [`StateFile::open`] takes an exclusive `flock(2)` on a companion lock
//!   file, `.NAME.lock` beside the file, *before* it reads the file, and holds it until the
//!   [`StateFile`] is dropped. A whole load–change–store therefore never interleaves with another
//!   process's: no PIN try is refunded and no acknowledged write is lost. A process that finds the
//!   lock taken waits for it (up to [`DEFAULT_LOCK_WAIT`], logging once that it waits) and then
//!   fails with [`Error::Locked`], naming the holder's PID.
//! * **Private.** The file, its lock and its temporary file are created `0600`, and a file found
//!   with wider permissions is narrowed to `0600` when it is opened.
//! * **Crash-safe.** A store writes the fixed temporary `.NAME.tmp` in the same directory, syncs
//!   it, renames it over the file and syncs the directory: a crash leaves the old or the new
//!   content, never a mix. A temporary left behind by a crash (or a `.NAME.tmpPID` file of older
//!   versions) is removed by the next open, under the lock.
//! * **Self-checking.** The content is sealed in an envelope: magic, format version, length and a
//!   SHA-256 over all of it. A file that is foreign, of another version, truncated, longer than
//!   its length field or corrupted is refused with [`Error::Invalid`] and never overwritten.
//! * **Symbolic links are followed**: the lock, the temporary file and the rename act beside the
//!   link's target, so the target is what gets updated. A dangling link is refused.
//!
//! Envelope (integers big-endian):
//!
//! ```text
//! magic [8] | format version u16 | reserved u16 (0) | payload length u32 | payload
//! | SHA-256 of everything before it [32]
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bytes before the payload: magic, version, reserved, payload length.
pub const HEADER_LEN: usize = 16;
/// Bytes of the SHA-256 after the payload.
pub const CHECKSUM_LEN: usize = 32;
/// Longest payload a state file may carry (the envelope refuses larger length fields before it
/// allocates anything).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// How long [`StateFile::open`] waits for a lock held by another process.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);
/// Permissions of every file this crate creates.
pub const PRIVATE_MODE: u32 = 0o600;

/// What kind of state a file holds: its magic, the format version written and read, and a name
/// for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// First eight bytes of the file.
    pub magic: [u8; 8],
    /// Format version of the payload, written and the only one read.
    pub version: u16,
    /// What the file is, for messages ("card-state file").
    pub what: &'static str,
    /// The length of the bare, unsealed files older versions wrote, if any: such a file is
    /// refused with a hint to re-create it.
    pub legacy_len: Option<u64>,
}

const LEGACY_HINT: &str = "; it looks like a bare image of an older keysim, which wrote no header: \
    move it away and let keysim create the file anew from the profile";

/// Why a file's content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The path names a directory or another non-regular file.
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    /// The path is a symbolic link whose target does not exist.
    #[error("it is a symbolic link to {0}, which does not exist")]
    DanglingLink(PathBuf),
    /// The file does not start with the format's magic.
    #[error("it is not a keysim {what} (its first bytes are not {magic:?}){hint}")]
    Foreign {
        /// The format's name.
        what: &'static str,
        /// The expected magic, as text.
        magic: String,
        /// A hint about what the file may be instead.
        hint: &'static str,
    },
    /// The file has another format version.
    #[error("it has format version {found}, and this keysim reads version {supported} only")]
    Version {
        /// The version in the file.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The file is shorter than its header and checksum, or than its length field says.
    #[error("it is truncated ({len} bytes, {expected} expected)")]
    Truncated {
        /// The file's length.
        len: u64,
        /// The length its header announces (or the minimum).
        expected: u64,
    },
    /// The file is longer than its length field says.
    #[error("it has {extra} bytes after its checksum")]
    TrailingBytes {
        /// Bytes past the end of the envelope.
        extra: u64,
    },
    /// The length field is beyond any state this crate writes.
    #[error("its length field ({0} bytes) is beyond any keysim state")]
    Oversized(u64),
    /// The reserved field is not zero.
    #[error("its reserved header field is {0:#06x}, not 0")]
    Reserved(u16),
    /// The SHA-256 does not match the content.
    #[error("its checksum does not match its content (the file is corrupted)")]
    Checksum,
    /// The payload decoded by the caller is not a valid state of its kind.
    #[error("{0}")]
    Content(String),
}

/// Everything that can go wrong with a state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("{what} {path}: {op}: {source}")]
    Io {
        /// What the file is.
        what: &'static str,
        /// The path involved (the file, its lock or its temporary).
        path: PathBuf,
        /// The operation that failed.
        op: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "{what} {path} is in use by another process{holder} (waited {}s for its lock {lock})",
        waited.as_secs()
    )]
    Locked {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// ", PID n" when the holder wrote its PID.
        holder: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// The file is not a valid state file of the expected format. It was left untouched.
    #[error("{what} {path} is refused: {reason}; the file was left untouched")]
    Invalid {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: Invalid,
    },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The steps of a store, at which a power cut can be simulated with [`StateFile::store_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Before the temporary file is created.
    CreateTemp,
    /// After the first half of the bytes is written to the temporary file.
    WriteHalf,
    /// Before the temporary file is synced.
    SyncTemp,
    /// Before the temporary file is renamed over the file.
    Rename,
    /// After the rename, before the directory is synced.
    SyncDir,
}

impl WriteStep {
    /// Every step, in order.
    pub const ALL: [WriteStep; 5] = [
        WriteStep::CreateTemp,
        WriteStep::WriteHalf,
        WriteStep::SyncTemp,
        WriteStep::Rename,
        WriteStep::SyncDir,
    ];
}

/// A state file opened for one load–change–store, holding its lock until dropped.
#[derive(Debug)]
pub struct StateFile {
    format: Format,
    /// The path as given.
    given: PathBuf,
    /// The file itself (a symbolic link's target).
    path: PathBuf,
    dir: PathBuf,
    temporary: PathBuf,
    lock_path: PathBuf,
    lock: File,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        held::release(&self.lock);
    }
}

/// The content of a file that existed when it was opened.
pub type Payload = Zeroizing<Vec<u8>>;

impl StateFile {
    /// Locks the state file at `path` (waiting up to [`DEFAULT_LOCK_WAIT`]), removes temporaries
    /// left by crashes, and reads it: `Ok((file, None))` when it does not exist yet, the payload
    /// when it exists and passes every check, [`Error::Invalid`] otherwise (the file untouched).
    pub fn open(path: &Path, format: Format) -> Result<(StateFile, Option<Payload>)> {
        Self::open_waiting(path, format, DEFAULT_LOCK_WAIT)
    }

    /// [`StateFile::open`] waiting at most `wait` for the lock.
    pub fn open_waiting(path: &Path, format: Format, wait: Duration) -> Result<(StateFile, Option<Payload>)> {
        let what = format.what;
        let invalid = |reason| Error::Invalid { what, path: path.to_owned(), reason };
        let target = resolve(path).map_err(|e| match e {
            Resolve::Invalid(reason) => invalid(reason),
            Resolve::Io(source) => {
                Error::Io { what, path: path.to_owned(), op: "resolving the path", source }
            }
        })?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| invalid(Invalid::NotAFile("a path without a file name")))?
            .to_owned();
        let hidden = |suffix: &str| {
            let mut n = std::ffi::OsString::from(".");
            n.push(&name);
            n.push(suffix);
            dir.join(n)
        };
        let lock_path = hidden(".lock");
        let temporary = hidden(".tmp");
        let lock = lock(&lock_path, what, &target, wait)?;
        let file =
            StateFile { format, given: path.to_owned(), path: target, dir, temporary, lock_path, lock };
        file.remove_temporaries();
        let payload = file.read()?;
        Ok((file, payload))
    }

    /// Reads the file again under the lock this handle holds (after a simulated power cycle, say):
    /// `None` when it does not exist, the payload when it passes every check.
    pub fn read(&self) -> Result<Option<Payload>> {
        read_checked(&self.given, &self.path, self.format, true)
    }

    /// Reads the state file at `path` as it is now, without taking its lock or removing anything:
    /// for looking at a file another process (or another part of this one) holds. Since every
    /// store replaces the file by an atomic rename, the content is the old or the new state.
    pub fn peek(path: &Path, format: Format) -> Result<Option<Payload>> {
        let what = format.what;
        let target = resolve(path).map_err(|e| match e {
            Resolve::Invalid(reason) => Error::Invalid { what, path: path.to_owned(), reason },
            Resolve::Io(source) => {
                Error::Io { what, path: path.to_owned(), op: "resolving the path", source }
            }
        })?;
        read_checked(path, &target, format, false)
    }

    /// The file (a symbolic link's target).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as it was given to [`StateFile::open`].
    pub fn given_path(&self) -> &Path {
        &self.given
    }

    /// The companion lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// An [`Error::Invalid`] for this file with a reason the caller found in the payload.
    pub fn refuse(&self, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: self.format.what,
            path: self.given.clone(),
            reason: Invalid::Content(reason.into()),
        }
    }

    /// Replaces the file's content by `payload`, atomically (see the crate documentation).
    pub fn store(&self, payload: &[u8]) -> Result<()> {
        self.store_with(payload, |_| Ok(())).map_err(|source| Error::Io {
            what: self.format.what,
            path: self.given.clone(),
            op: "writing",
            source,
        })
    }

    /// [`StateFile::store`] with `before` called at each [`WriteStep`]. An error from `before` stops
    /// the store right there, as a power cut would (the temporary file is left behind for the next
    /// open to remove), and is returned. A real I/O error removes the temporary file.
    pub fn store_with(
        &self,
        payload: &[u8],
        mut before: impl FnMut(WriteStep) -> io::Result<()>,
    ) -> io::Result<()> {
        let bytes = seal(&self.format, payload);
        before(WriteStep::CreateTemp)?;
        let mut cut = None;
        let mut step = |s, cut: &mut Option<io::Error>| match before(s) {
            Ok(()) => true,
            Err(e) => {
                *cut = Some(e);
                false
            }
        };
        let result = (|| {
            let mut f = private_file(&self.temporary, true)?;
            let (first, second) = bytes.split_at(bytes.len() / 2);
            f.write_all(first)?;
            if !step(WriteStep::WriteHalf, &mut cut) {
                return Ok(());
            }
            f.write_all(second)?;
            if !step(WriteStep::SyncTemp, &mut cut) {
                return Ok(());
            }
            f.sync_all()?;
            drop(f);
            if !step(WriteStep::Rename, &mut cut) {
                return Ok(());
            }
            fs::rename(&self.temporary, &self.path)?;
            if !step(WriteStep::SyncDir, &mut cut) {
                return Ok(());
            }
            File::open(&self.dir)?.sync_all()
        })();
        if let Some(e) = cut {
            return Err(e);
        }
        if result.is_err() {
            let _ = fs::remove_file(&self.temporary);
        }
        result
    }

    /// Removes the temporary file and the `.NAME.tmpPID` files of older versions.
    fn remove_temporaries(&self) {
        let Some(tmp_name) = self.temporary.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            return;
        };
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = name == tmp_name
                || name
                    .strip_prefix(&tmp_name)
                    .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::debug!(file = %entry.path().display(), "removed a temporary left by a crash")
                    }
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a stale temporary")
                    }
                }
            }
        }
    }
}

/// Reads and checks the file at `target` (named `given` in messages); narrows the permissions of a
/// sound file when `narrow`.
fn read_checked(given: &Path, target: &Path, format: Format, narrow: bool) -> Result<Option<Payload>> {
    let what = format.what;
    let invalid = |reason| Error::Invalid { what, path: given.to_owned(), reason };
    let io_err = |op| move |source| Error::Io { what, path: given.to_owned(), op, source };
    let mut f = match File::open(target) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { what, path: given.to_owned(), op: "opening", source }),
    };
    let meta = f.metadata().map_err(io_err("reading its metadata"))?;
    if !meta.is_file() {
        return Err(invalid(Invalid::NotAFile(kind_of(&meta))));
    }
    let limit = (HEADER_LEN + MAX_PAYLOAD + CHECKSUM_LEN) as u64;
    if meta.len() > limit {
        return Err(invalid(Invalid::Oversized(meta.len())));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    f.read_to_end(&mut bytes).map_err(io_err("reading"))?;
    let payload = open_envelope(&format, &bytes).map_err(|reason| {
        invalid(match reason {
            Invalid::Foreign { what, magic, hint: "" } if Some(meta.len()) == format.legacy_len => {
                Invalid::Foreign { what, magic, hint: LEGACY_HINT }
            }
            other => other,
        })
    })?;
    // Only a file that is ours is touched: one created by older versions with the umask's
    // permissions is narrowed now.
    if narrow && meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %target.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "{what} was readable by other users: narrowing it to 0600"
        );
        fs::set_permissions(target, fs::Permissions::from_mode(PRIVATE_MODE))
            .map_err(io_err("narrowing its permissions"))?;
    }
    Ok(Some(Zeroizing::new(payload.to_vec())))
}

/// The lock files this process holds, by device and inode, with the thread holding each: a thread
/// that opens a state file it already holds gets an error at once instead of waiting for itself.
mod held {
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    static HELD: Mutex<BTreeMap<(u64, u64), ThreadId>> = Mutex::new(BTreeMap::new());

    fn key(lock: &File) -> Option<(u64, u64)> {
        lock.metadata().ok().map(|m| (m.dev(), m.ino()))
    }

    pub(super) fn by_this_thread(lock: &File) -> bool {
        let me = std::thread::current().id();
        key(lock).is_some_and(|k| HELD.lock().is_ok_and(|h| h.get(&k) == Some(&me)))
    }

    pub(super) fn acquire(lock: &File) {
        if let (Some(k), Ok(mut h)) = (key(lock), HELD.lock()) {
            h.insert(k, std::thread::current().id());
        }
    }

    pub(super) fn release(lock: &File) {
        if let (Some(k), Ok(mut h)) = (key(lock), HELD.lock()) {
            h.remove(&k);
        }
    }
}

/// The file bytes of `payload` in `format`'s envelope.
pub fn seal(format: &Format, payload: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len() + CHECKSUM_LEN));
    out.extend_from_slice(&format.magic);
    out.extend_from_slice(&format.version.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    // Payloads come from our own encoders, far below 4 GiB; saturate rather than wrap.
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(payload);
    let digest = Sha256::digest(&out[..]);
    out.extend_from_slice(&digest);
    out
}

/// The payload of `bytes` if they are a sound envelope of `format`.
pub fn open_envelope<'a>(format: &Format, bytes: &'a [u8]) -> Result<&'a [u8], Invalid> {
    let len = bytes.len() as u64;
    let magic = bytes.get(..8).unwrap_or(bytes);
    if magic != format.magic {
        // Say what the file may be: an unversioned image of older versions, or nothing at all.
        if magic.len() < 8 && format.magic.starts_with(magic) {
            return Err(Invalid::Truncated { len, expected: (HEADER_LEN + CHECKSUM_LEN) as u64 });
        }
        let hint = if bytes.iter().all(|&b| b == 0) || bytes.iter().all(|&b| b == 0xFF) {
            " (it is all zeros or all FF)"
        } else {
            ""
        };
        return Err(Invalid::Foreign {
            what: format.what,
            magic: String::from_utf8_lossy(&format.magic).into_owned(),
            hint,
        });
    }
    let (Some(version), Some(reserved), Some(length)) = (
        bytes.get(8..10).map(|b| u16::from_be_bytes([b[0], b[1]])),
        bytes.get(10..12).map(|b| u16::from_be_bytes([b[0], b[1]])),
        bytes.get(12..16).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
    ) else {
        return Err(Invalid::Truncated { len, expected: (HEADER_LEN + CHECKSUM_LEN) as u64 });
    };
    if version != format.version {
        return Err(Invalid::Version { found: version, supported: format.version });
    }
    if reserved != 0 {
        return Err(Invalid::Reserved(reserved));
    }
    let length = length as usize;
    if length > MAX_PAYLOAD {
        return Err(Invalid::Oversized(length as u64));
    }
    let end = HEADER_LEN + length + CHECKSUM_LEN;
    if bytes.len() < end {
        return Err(Invalid::Truncated { len, expected: end as u64 });
    }
    if bytes.len() > end {
        return Err(Invalid::TrailingBytes { extra: (bytes.len() - end) as u64 });
    }
    let (body, checksum) = bytes.split_at(HEADER_LEN + length);
    let digest = Sha256::digest(body);
    if !bool::from(digest.as_slice().ct_eq(checksum)) {
        return Err(Invalid::Checksum);
    }
    Ok(&body[HEADER_LEN..])
}

enum Resolve {
    Invalid(Invalid),
    Io(io::Error),
}

/// The file a path names: a symbolic link's final target (which must exist), else the path.
fn resolve(path: &Path) -> Result<PathBuf, Resolve> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(target) => {
                let meta = fs::metadata(&target).map_err(Resolve::Io)?;
                if meta.is_file() {
                    Ok(target)
                } else {
                    Err(Resolve::Invalid(Invalid::NotAFile(kind_of(&meta))))
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let to = fs::read_link(path).map_err(Resolve::Io)?;
                Err(Resolve::Invalid(Invalid::DanglingLink(to)))
            }
            Err(e) => Err(Resolve::Io(e)),
        },
        Ok(meta) if !meta.is_file() => Err(Resolve::Invalid(Invalid::NotAFile(kind_of(&meta)))),
        Ok(_) => Ok(path.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_owned()),
        Err(e) => Err(Resolve::Io(e)),
    }
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else if meta.file_type().is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// Opens (creating) `path` for writing with `0600` permissions, also when it existed with others.
/// `O_NOFOLLOW`: a lock or temporary path planted as a symbolic link is refused, not followed.
fn private_file(path: &Path, truncate: bool) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(PRIVATE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if f.metadata()?.permissions().mode() & 0o777 != PRIVATE_MODE {
        f.set_permissions(fs::Permissions::from_mode(PRIVATE_MODE))?;
    }
    Ok(f)
}

/// Takes the exclusive lock on `lock_path`, waiting up to `wait`; records this process's PID in it.
fn lock(lock_path: &Path, what: &'static str, file: &Path, wait: Duration) -> Result<File> {
    let io_err = |op| move |source| Error::Io { what, path: lock_path.to_owned(), op, source };
    let mut lock = private_file(lock_path, false).map_err(io_err("opening its lock file"))?;
    let start = Instant::now();
    if held::by_this_thread(&lock) {
        // flock(2) would make this thread wait for itself.
        return Err(Error::Locked {
            what,
            path: file.to_owned(),
            lock: lock_path.to_owned(),
            holder: ", this very thread (it is open twice)".into(),
            waited: Duration::ZERO,
        });
    }
    let mut pause = Duration::from_millis(1);
    let mut told = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= wait {
                    let mut pid = String::new();
                    let _ = lock.read_to_string(&mut pid);
                    let pid = pid.trim();
                    return Err(Error::Locked {
                        what,
                        path: file.to_owned(),
                        lock: lock_path.to_owned(),
                        holder: if pid.is_empty() { String::new() } else { format!(", PID {pid}") },
                        waited: start.elapsed(),
                    });
                }
                if !told && start.elapsed() >= Duration::from_millis(500) {
                    tracing::info!(file = %file.display(), "{what} is in use by another process: waiting for it");
                    told = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(io_err("locking")(e)),
        }
    }
    held::acquire(&lock);
    // The holder's PID, for the message another process gives when it waits in vain.
    let _ =
        lock.set_len(0).and_then(|()| lock.rewind()).and_then(|()| writeln!(lock, "{}", std::process::id()));
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Format = Format { magic: *b"KSIMTEST", version: 3, what: "test state", legacy_len: None };

    #[test]
    fn seal_then_open() {
        let sealed = seal(&F, b"payload");
        assert_eq!(sealed.len(), HEADER_LEN + 7 + CHECKSUM_LEN);
        assert_eq!(&sealed[..8], b"KSIMTEST");
        assert_eq!(&sealed[8..16], [0, 3, 0, 0, 0, 0, 0, 7]);
        // The checksum is SHA-256 of the header and payload, computed here independently.
        let mut h = Sha256::new();
        h.update(b"KSIMTEST");
        h.update([0, 3, 0, 0, 0, 0, 0, 7]);
        h.update(b"payload");
        assert_eq!(&sealed[23..], h.finalize().as_slice());
        assert_eq!(open_envelope(&F, &sealed).unwrap(), b"payload");
    }

    #[test]
    fn every_defect_is_refused() {
        let good = seal(&F, b"some state");
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.to_vec();
                bad[at] ^= 1 << bit;
                assert!(open_envelope(&F, &bad).is_err(), "bit {bit} of byte {at} flipped");
            }
        }
        for len in 0..good.len() {
            assert!(open_envelope(&F, &good[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(open_envelope(&F, &longer), Err(Invalid::TrailingBytes { extra: 1 }));
        let other = Format { version: 4, ..F };
        assert_eq!(open_envelope(&other, &good), Err(Invalid::Version { found: 3, supported: 4 }));
        assert!(matches!(open_envelope(&F, &[0u8; 100]), Err(Invalid::Foreign { .. })));
    }
}

//! State files on a real file system: permissions, locks between threads, temporaries left by
//! crashes, symbolic links, refused content left untouched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use statefile::{Error, Format, Invalid, StateFile, WriteStep};

const F: Format = Format { magic: *b"KSIMTEST", version: 1, what: "test state", legacy_len: Some(5) };

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn created_private_and_kept_private_on_every_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let (file, none) = StateFile::open(&path, F).unwrap();
    assert!(none.is_none());
    file.store(b"first").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join(".state.bin.lock")), 0o600);
    // A rewrite replaces the file by a new one: still 0600, also after someone widened the old one.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    file.store(b"second").unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(file);
    // A sound file found with wider permissions is narrowed when opened.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    let (_file, payload) = StateFile::open(&path, F).unwrap();
    assert_eq!(payload.unwrap().as_slice(), b"second");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn refused_content_is_left_untouched_even_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    for (bytes, what) in [
        (vec![0u8; 100], "zeros"),
        (vec![0xFF; 100], "FF"),
        (b"KSIMTEST".to_vec(), "header only"),
        (b"hello".to_vec(), "a legacy-sized file"),
    ] {
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = StateFile::open(&path, F).err().unwrap_or_else(|| panic!("{what} accepted"));
        assert!(matches!(err, Error::Invalid { .. }), "{what}: {err}");
        assert!(err.to_string().contains("left untouched"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{what}");
        assert_eq!(mode(&path), 0o644, "{what}");
    }
    fs::write(&path, b"hello").unwrap();
    let err = StateFile::open(&path, F).err().unwrap().to_string();
    assert!(err.contains("bare image of an older keysim"), "{err}");
}

#[test]
fn temporaries_left_by_crashes_are_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let (file, _) = StateFile::open(&path, F).unwrap();
    file.store(b"old").unwrap();
    // A cut after half the bytes leaves the temporary behind, and the old content in place.
    let cut = file.store_with(b"new content", |s| {
        if s == WriteStep::SyncTemp { Err(std::io::Error::other("power cut")) } else { Ok(()) }
    });
    assert!(cut.is_err());
    drop(file);
    // Older versions named their temporaries after the PID.
    fs::write(dir.path().join(".state.bin.tmp4242"), b"K and OPc").unwrap();
    fs::write(dir.path().join("unrelated.tmp4242"), b"not ours").unwrap();
    assert_eq!(
        names(dir.path()),
        [".state.bin.lock", ".state.bin.tmp", ".state.bin.tmp4242", "state.bin", "unrelated.tmp4242"]
    );
    let (_file, payload) = StateFile::open(&path, F).unwrap();
    assert_eq!(payload.unwrap().as_slice(), b"old");
    assert_eq!(names(dir.path()), [".state.bin.lock", "state.bin", "unrelated.tmp4242"]);
}

#[test]
fn a_planted_temporary_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let (file, _) = StateFile::open(&path, F).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".state.bin.tmp")).unwrap();
    assert!(file.store(b"state").is_err());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_symbolic_link_is_followed_and_stays_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("state.bin");
    let link = dir.path().join("link.bin");
    {
        let (file, _) = StateFile::open(&target, F).unwrap();
        file.store(b"one").unwrap();
    }
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (file, payload) = StateFile::open(&link, F).unwrap();
    assert_eq!(payload.unwrap().as_slice(), b"one");
    assert_eq!(file.path(), fs::canonicalize(&target).unwrap());
    file.store(b"two").unwrap();
    drop(file);
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let (_, payload) = StateFile::open(&target, F).unwrap();
    assert_eq!(payload.unwrap().as_slice(), b"two");
    // The lock lives beside the target, so the link and the target share it.
    assert!(real_dir.join(".state.bin.lock").exists());
    assert!(!dir.path().join(".link.bin.lock").exists());
}

#[test]
fn dangling_links_directories_and_special_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let err = StateFile::open(&dangling, F).err().unwrap();
    assert!(matches!(err, Error::Invalid { reason: Invalid::DanglingLink(_), .. }), "{err}");
    let err = StateFile::open(dir.path(), F).err().unwrap();
    assert!(matches!(err, Error::Invalid { reason: Invalid::NotAFile("a directory"), .. }), "{err}");
    let err = StateFile::open(Path::new("/dev/null"), F).err().unwrap();
    assert!(matches!(err, Error::Invalid { reason: Invalid::NotAFile(_), .. }), "{err}");
}

#[test]
fn a_second_holder_waits_for_the_lock_then_sees_the_first_ones_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let (first, _) = StateFile::open(&path, F).unwrap();
    first.store(b"0").unwrap();
    let (tx, rx) = mpsc::channel();
    let p = path.clone();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        let (file, payload) = StateFile::open(&p, F).unwrap();
        tx.send(()).unwrap();
        (start.elapsed(), payload.unwrap().to_vec(), file)
    });
    // The waiter cannot get in while the first holder changes the file.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    first.store(b"1").unwrap();
    drop(first);
    let (waited, seen, _file) = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(300));
    assert_eq!(seen, b"1", "the second holder reads what the first one stored");
}

#[test]
fn a_lock_not_released_in_time_is_named_with_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.bin");
    let (_first, _) = StateFile::open(&path, F).unwrap();
    let p = path.clone();
    let err = std::thread::spawn(move || StateFile::open_waiting(&p, F, Duration::from_millis(50)).err())
        .join()
        .unwrap()
        .expect("the lock is held");
    let text = err.to_string();
    assert!(matches!(err, Error::Locked { .. }), "{text}");
    assert!(text.contains(&format!("PID {}", std::process::id())), "{text}");
    // The same thread opening it twice is told at once instead of waiting for itself.
    let start = Instant::now();
    let err = StateFile::open(&path, F).err().unwrap();
    assert!(err.to_string().contains("open twice"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

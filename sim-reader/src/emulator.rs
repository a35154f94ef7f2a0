//! The in-process card: the `uicc-applet` UICC (TS 102 221, TS 31.102, TS 31.103) behind the
//! [`Reader`] trait, personalized from a [`CardProfile`], its NVM optionally kept in a card-state
//! file that is rewritten atomically after every command that changed it.

use std::cell::Cell;
use std::path::Path;

use statefile::StateFile;
use zeroize::Zeroizing;

use uicc_applet::{Nvm, NvmError, RESPONSE_MAX, Transport, Uicc};

use crate::profile::CardProfile;
use crate::{Error, Protocol, Reader, Result};

/// Size of the card's NVM image in bytes (the size of a card-state file).
pub use uicc_applet::NVM_SIZE;

/// The reader name the emulator reports.
pub const EMULATOR_NAME: &str = "keysim emulated UICC";

/// The card's NVM as a byte image in memory, remembering whether a write changed it.
pub struct ImageNvm {
    bytes: Zeroizing<Vec<u8>>,
    dirty: Cell<bool>,
}

impl ImageNvm {
    /// A blank (erased, all `FF`) store of `size` bytes.
    pub fn blank(size: usize) -> Self {
        ImageNvm { bytes: Zeroizing::new(vec![0xFF; size]), dirty: Cell::new(false) }
    }

    /// A store holding `image`.
    pub fn from_image(image: Vec<u8>) -> Self {
        ImageNvm { bytes: Zeroizing::new(image), dirty: Cell::new(false) }
    }

    /// The raw image.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether a write changed the image since the last [`ImageNvm::mark_clean`].
    pub fn is_dirty(&self) -> bool {
        self.dirty.get()
    }

    /// Forget earlier changes (after the image was saved).
    pub fn mark_clean(&self) {
        self.dirty.set(false);
    }
}

impl Nvm for ImageNvm {
    fn capacity(&self) -> usize {
        self.bytes.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        let end = offset.checked_add(buf.len()).ok_or(NvmError::OutOfRange)?;
        buf.copy_from_slice(self.bytes.get(offset..end).ok_or(NvmError::OutOfRange)?);
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), NvmError> {
        let end = offset.checked_add(data.len()).ok_or(NvmError::OutOfRange)?;
        let target = self.bytes.get_mut(offset..end).ok_or(NvmError::OutOfRange)?;
        if target != data {
            target.copy_from_slice(data);
            self.dirty.set(true);
        }
        Ok(())
    }
}

enum Slot {
    Powered(Box<Uicc<ImageNvm>>),
    Unpowered(ImageNvm),
    /// Only while moving between the two states above.
    Moving,
}

/// The card-state file format: the NVM image, sealed by [`statefile`] (magic, version, SHA-256).
pub const CARD_STATE_FORMAT: statefile::Format = statefile::Format {
    magic: *b"KSIMCARD",
    version: 1,
    what: "card-state file",
    legacy_len: Some(NVM_SIZE as u64),
};

/// The emulated UICC as a reader with its card always inserted.
pub struct Emulator {
    slot: Slot,
    protocol: Protocol,
    /// The card-state file, locked for as long as the emulator lives.
    state: Option<StateFile>,
}

impl Emulator {
    /// A card personalized from `profile`, held in memory only. The card is powered on.
    pub fn new(profile: &CardProfile) -> Result<Self> {
        Self::open(profile, None)
    }

    /// A card whose NVM lives in `state_file`: loaded from it when the file exists (the profile is
    /// then not used: the card keeps its own state), else personalized from `profile` on a blank
    /// NVM and saved to a new file. Without a file, the card lives in memory. The card is powered on,
    /// with T=1.
    ///
    /// The file is locked until the emulator is dropped, so concurrent processes on one file take
    /// turns (see [`statefile`]); a file that is not a sound card-state file is refused and left
    /// untouched.
    pub fn open(profile: &CardProfile, state_file: Option<&Path>) -> Result<Self> {
        let personalized = || -> Result<ImageNvm> {
            let mut nvm = ImageNvm::blank(NVM_SIZE);
            let impu = profile.impu_refs();
            Uicc::<ImageNvm>::personalize(&mut nvm, &profile.personalization(&impu)).map_err(nvm_error)?;
            Ok(nvm)
        };
        let (state, nvm) = match state_file {
            None => (None, personalized()?),
            Some(path) => {
                let (file, payload) = StateFile::open(path, CARD_STATE_FORMAT)?;
                let nvm = match payload {
                    Some(image) => load_image(&file, image)?,
                    None => {
                        let nvm = personalized()?;
                        file.store(nvm.as_bytes())?;
                        nvm
                    }
                };
                (Some(file), nvm)
            }
        };
        nvm.mark_clean();
        let mut emulator = Emulator { slot: Slot::Unpowered(nvm), protocol: Protocol::T1, state };
        emulator.power_on()?;
        Ok(emulator)
    }

    /// A card running on a given NVM image (for example a versioned fixture), in memory only.
    pub fn from_image(image: Vec<u8>) -> Result<Self> {
        let mut emulator = Emulator {
            slot: Slot::Unpowered(ImageNvm::from_image(image)),
            protocol: Protocol::T1,
            state: None,
        };
        emulator.power_on()?;
        Ok(emulator)
    }

    /// The same card speaking `protocol` (T=0: case-4 data behind `61 xx`).
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.set_protocol(protocol);
        self
    }

    /// Choose the transmission protocol.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        if let Slot::Powered(card) = &mut self.slot {
            card.set_transport(transport(protocol));
        }
    }

    /// The card-state file (a symbolic link's target), if any.
    pub fn state_file(&self) -> Option<&Path> {
        self.state.as_ref().map(StateFile::path)
    }

    /// The card's answer-to-reset.
    pub fn atr(&self) -> &'static [u8] {
        uicc_applet::ATR
    }

    /// The current NVM image.
    pub fn nvm_image(&self) -> &[u8] {
        match &self.slot {
            Slot::Powered(card) => card.nvm().as_bytes(),
            Slot::Unpowered(nvm) => nvm.as_bytes(),
            Slot::Moving => &[],
        }
    }

    fn take_nvm(&mut self) -> ImageNvm {
        match std::mem::replace(&mut self.slot, Slot::Moving) {
            Slot::Powered(card) => card.into_nvm(),
            Slot::Unpowered(nvm) => nvm,
            // Unreachable: every method puts a state back before returning.
            Slot::Moving => ImageNvm::blank(NVM_SIZE),
        }
    }

    fn save_if_changed(&mut self) -> Result<()> {
        let nvm = match &self.slot {
            Slot::Powered(card) => card.nvm(),
            Slot::Unpowered(nvm) => nvm,
            Slot::Moving => return Ok(()),
        };
        if nvm.is_dirty() {
            if let Some(file) = &self.state {
                file.store(nvm.as_bytes())?;
            }
            nvm.mark_clean();
        }
        Ok(())
    }
}

impl Reader for Emulator {
    fn name(&self) -> &str {
        EMULATOR_NAME
    }

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Cold reset: the card is (re)started from its NVM, recovering any interrupted transaction.
    fn power_on(&mut self) -> Result<Vec<u8>> {
        let nvm = self.take_nvm();
        let mut card = Box::new(Uicc::power_on(nvm));
        card.set_transport(transport(self.protocol));
        self.slot = Slot::Powered(card);
        // Power-on recovery may have rolled a transaction forward or back.
        self.save_if_changed()?;
        Ok(uicc_applet::ATR.to_vec())
    }

    fn reset(&mut self) -> Result<Vec<u8>> {
        match &mut self.slot {
            Slot::Powered(card) => {
                card.reset();
                card.set_transport(transport(self.protocol));
                self.save_if_changed()?;
                Ok(uicc_applet::ATR.to_vec())
            }
            _ => self.power_on(),
        }
    }

    fn power_off(&mut self) -> Result<()> {
        let nvm = self.take_nvm();
        self.slot = Slot::Unpowered(nvm);
        self.save_if_changed()
    }

    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let Slot::Powered(card) = &mut self.slot else {
            return Err(Error::NotPowered { reader: EMULATOR_NAME.to_owned() });
        };
        let mut response = [0u8; RESPONSE_MAX];
        let n = card.process(command, &mut response).min(response.len());
        let answer = response[..n].to_vec();
        self.save_if_changed()?;
        Ok(answer)
    }
}

fn transport(protocol: Protocol) -> Transport {
    match protocol {
        Protocol::T0 => Transport::T0,
        Protocol::T1 => Transport::T1,
    }
}

fn nvm_error(e: NvmError) -> Error {
    Error::Nvm(match e {
        NvmError::OutOfRange => "personalization does not fit the NVM",
        NvmError::PowerLost => "power lost during personalization",
    })
}

/// The NVM held by a card-state file: an image of the card's size whose header names the card's
/// layout version (a file of an older layout is refused, not reinterpreted).
fn load_image(file: &StateFile, image: statefile::Payload) -> Result<ImageNvm> {
    if image.len() != NVM_SIZE {
        return Err(file
            .refuse(format!(
                "it holds an NVM image of {} bytes, but this card's NVM has {NVM_SIZE}",
                image.len()
            ))
            .into());
    }
    let nvm = ImageNvm::from_image(image.to_vec());
    if !uicc_applet::is_personalized(&nvm) {
        return Err(file
            .refuse(format!(
                "its NVM image is not a personalized card of NVM layout version {}",
                uicc_applet::LAYOUT_VERSION
            ))
            .into());
    }
    Ok(nvm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Session;
    use std::fs;

    #[test]
    fn image_nvm_bounds_and_dirty_flag() {
        let mut nvm = ImageNvm::blank(16);
        let mut buf = [0u8; 4];
        assert_eq!(nvm.read(14, &mut buf), Err(NvmError::OutOfRange));
        assert_eq!(nvm.read(usize::MAX, &mut buf), Err(NvmError::OutOfRange));
        assert_eq!(nvm.write(13, &[1, 2, 3, 4]), Err(NvmError::OutOfRange));
        assert!(!nvm.is_dirty());
        nvm.write(0, &[0xFF, 0xFF]).unwrap();
        assert!(!nvm.is_dirty(), "writing the same bytes changes nothing");
        nvm.write(12, &[1, 2, 3, 4]).unwrap();
        assert!(nvm.is_dirty());
        nvm.read(12, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        nvm.mark_clean();
        assert!(!nvm.is_dirty());
    }

    #[test]
    fn state_file_created_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.nvm");
        let profile = CardProfile::default();
        let first = Emulator::open(&profile, Some(&path)).unwrap();
        let file = fs::read(&path).unwrap();
        let image = statefile::open_envelope(&CARD_STATE_FORMAT, &file).unwrap().to_vec();
        assert_eq!(image.len(), NVM_SIZE);
        assert_eq!(image, first.nvm_image());
        drop(first);
        // A second open reads the file (a different profile is not applied).
        let mut other = CardProfile::default().to_fields();
        other.imsi = "001019999999999".into();
        let other = CardProfile::try_from(other).unwrap();
        let second = Emulator::open(&other, Some(&path)).unwrap();
        assert_eq!(second.nvm_image(), image.as_slice());
        // No temporary file is left behind: the file and its lock only.
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [std::ffi::OsString::from(".card.nvm.lock"), "card.nvm".into()]);
    }

    #[test]
    fn a_sealed_image_of_another_size_or_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.nvm");
        fs::write(&path, statefile::seal(&CARD_STATE_FORMAT, b"not a card")).unwrap();
        let err = Emulator::open(&CardProfile::default(), Some(&path)).err().unwrap();
        assert!(err.to_string().contains("NVM image of 10 bytes"), "{err}");
        // A blank (unpersonalized) image of the right size.
        let blank = statefile::seal(&CARD_STATE_FORMAT, &[0xFF; NVM_SIZE]);
        fs::write(&path, &blank).unwrap();
        let err = Emulator::open(&CardProfile::default(), Some(&path)).err().unwrap();
        assert!(err.to_string().contains("not a personalized card of NVM layout version"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), blank.as_slice(), "the file is left alone");
    }

    #[test]
    fn powered_off_card_refuses_commands() {
        let mut e = Emulator::new(&CardProfile::default()).unwrap();
        e.power_off().unwrap();
        assert!(matches!(e.transmit(&[0x00, 0xF2, 0x00, 0x00]), Err(Error::NotPowered { .. })));
        assert_eq!(e.power_on().unwrap(), uicc_applet::ATR);
        assert!(e.transmit(&[0x00, 0xF2, 0x00, 0x00]).unwrap().len() >= 2);
    }

    #[test]
    fn any_command_gets_a_status_word() {
        let mut e = Emulator::new(&CardProfile::default()).unwrap();
        for cmd in [&[][..], &[0x00], &[0x00, 0xA4, 0x00], &[0xFF; 300][..]] {
            let r = e.transmit(cmd).unwrap();
            assert!(r.len() >= 2 && r.len() <= RESPONSE_MAX, "{cmd:02X?} -> {r:02X?}");
        }
        let _ = Session::new(e);
    }
}

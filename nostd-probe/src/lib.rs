//! Links the card crates into a `no_std` static library with no global allocator.
#![no_std]

use uicc_applet::{Nvm, RamNvm, Uicc};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Runs one APDU through a freshly powered card and the APDU codec, so that every card crate's
/// code is linked.
///
/// # Safety
/// `apdu` must point to `apdu_len` readable bytes and `out` to `out_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_entry(apdu: *const u8, apdu_len: usize, out: *mut u8, out_len: usize) -> usize {
    // SAFETY: the caller guarantees both buffers.
    let (apdu, out) =
        unsafe { (core::slice::from_raw_parts(apdu, apdu_len), core::slice::from_raw_parts_mut(out, out_len)) };
    let parsed = apdu::Command::parse(apdu).map(|c| c.ins).unwrap_or(0);
    let framed = uicc_vocab::authenticate::parse_mbms(apdu).is_ok();
    let mut card = Uicc::power_on(RamNvm::<{ uicc_applet::NVM_SIZE }>::new());
    let n = card.process(apdu, out);
    n + parsed as usize + framed as usize + card.nvm().capacity()
}
